"""What the reader reads of a data set: the token ids of every split, and the layer that embeds them.

    inputs = model_inputs(config, dataset, ranks)
    model = build_model(config.model, inputs.vocab_size, dataset.num_classes, embed=inputs.embed)
    inputs.ids["train"]   # per document, what model(ids) takes (0 is padding)

Two footings, chosen by ``[model.backbone]``:

- **from scratch** (no backbone): a byte-level BPE tokenizer trained on the training split
  (:mod:`qattn.tokenizer`), ids into embeddings the model trains;
- **a pretrained encoder** (:mod:`qattn.backbone`): its own tokenizer, and its token features projected to
  ``embed_dim``. Frozen (the default), the features are computed once and cached (:mod:`qattn.features`), and
  a document's ids name its rows of the cache; with ``trainable_layers`` the encoder runs in the loop and the
  ids are its token ids (plus one).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tokenizers import Tokenizer

from qattn import backbone as encoders
from qattn.config import ExperimentConfig
from qattn.data import TextDataset
from qattn.distributed import Ranks
from qattn.features import CachedSplit, FeatureTable, cache_key, cached_split, texts_digest
from qattn.model import FeatureInput
from qattn.tokenizer import build_tokenizer, encode

SPLITS = ("train", "dev", "test")


@dataclass
class ModelInputs:
    ids: dict[str, list[list[int]]]  # split -> per document, the ids the model reads
    vocab_size: int  # of the trained embeddings (a backbone's vocabulary otherwise: not read)
    tokenizer: Tokenizer  # saved with checkpoints: the BPE tokenizer, or the encoder's
    embed: FeatureInput | None = None  # None: embeddings trained from scratch
    params: dict[str, str] = field(default_factory=dict)  # what MLflow records about the encoder
    tokens: Callable[[str, int], list[str]] | None = None  # (split, document) -> its tokens, for attention maps
    source: encoders.Source | None = None  # the encoder read, if any

    def token_labels(self, split: str, doc: int, count: int) -> list[str]:
        """The first ``count`` tokens of a document, as text (attention-map labels)."""
        if self.tokens is not None:
            return self.tokens(split, doc)[:count]
        return [self.tokenizer.decode([i]) for i in self.ids[split][doc][:count]]


def model_inputs(config: ExperimentConfig, dataset: TextDataset, ranks: Ranks = Ranks()) -> ModelInputs:
    """The footing ``config`` asks for, over the three splits of ``dataset``."""
    if config.model.backbone is None:
        # One tokenizer for all ranks: rank 0 trains (or loads) it, the others receive it.
        text = build_tokenizer(dataset.train.texts, config.tokenizer).to_str() if ranks.main else None
        tokenizer = Tokenizer.from_str(ranks.from_main(text))
        ids = {name: encode(tokenizer, getattr(dataset, name).texts, config.model.max_length) for name in SPLITS}
        return ModelInputs(ids, tokenizer.get_vocab_size(), tokenizer)
    return backbone_inputs(config, dataset, ranks)


def saved_inputs(config: ExperimentConfig, dataset: TextDataset, tokenizer: str) -> ModelInputs:
    """The inputs of a saved model: the BPE ``tokenizer`` it was trained with (as text), or its encoder
    (located and checked by hash again; frozen features come from the cache)."""
    if config.model.backbone is not None:
        return backbone_inputs(config, dataset, Ranks())
    bpe = Tokenizer.from_str(tokenizer)
    ids = {name: encode(bpe, getattr(dataset, name).texts, config.model.max_length) for name in SPLITS}
    return ModelInputs(ids, bpe.get_vocab_size(), bpe)


@dataclass
class EncodedData:
    """A data set read by a pretrained encoder: its tokens per split, and (frozen) their cached features."""

    source: encoders.Source
    tokenizer: object  # the encoder's transformers tokenizer
    tokens: dict[str, list[list[int]]]
    cached: dict[str, CachedSplit]

    def params(self) -> dict[str, str]:
        folders = {f"backbone.cache.{name}": split.folder.name for name, split in self.cached.items()}
        return {**self.source.params(), **folders}


def encoded_data(config: ExperimentConfig, dataset: TextDataset, ranks: Ranks = Ranks(), *,
                 cache: bool = True) -> EncodedData:
    """Tokens of every split by the configured encoder, and with ``cache`` their features from the cache
    (built first where missing; the encoder is loaded only then)."""
    options, model = config.model.backbone, config.model
    source = encoders.locate(options)
    tokenizer = encoders.load_tokenizer(source)
    tokens = {name: encoders.token_ids(tokenizer, getattr(dataset, name).texts, model.max_length) for name in SPLITS}
    cached: dict[str, CachedSplit] = {}
    if cache:
        settings = {
            "weights_sha256": source.sha256, "config_sha256": source.config_sha256, "layer": options.layer,
            "max_length": model.max_length,
            "chunk_size": model.chunk_size, "dtype": options.dtype,
            "tokenizer": encoders.tokenizer_fingerprint(tokenizer),
        }
        encoder = functools.cache(lambda: encoders.load_encoder(source, options, model.chunk_size))  # loaded once, if needed
        for name in SPLITS:
            split = getattr(dataset, name)
            folder = Path(options.cache_dir) / cache_key(texts_digest(split.hashes), name, settings)
            meta = {"data": dataset.name, "split": name, "encoder": options.name, "revision": source.revision, **settings}
            cached[name] = cached_split(encoder, tokens[name], model.chunk_size, folder, meta, dtype=options.dtype,
                                        batch_size=options.batch_size, ranks=ranks, label=f"{dataset.name} {name}")
    return EncodedData(source, tokenizer, tokens, cached)


def backbone_inputs(config: ExperimentConfig, dataset: TextDataset, ranks: Ranks) -> ModelInputs:
    options, embed_dim = config.model.backbone, config.model.embed_dim
    frozen = options.trainable_layers == 0
    data = encoded_data(config, dataset, ranks, cache=frozen)
    hf = data.tokenizer
    tokenizer = Tokenizer.from_str(hf.backend_tokenizer.to_str())

    def tokens(split: str, doc: int) -> list[str]:
        return hf.convert_ids_to_tokens(data.tokens[split][doc])

    if frozen:
        table = FeatureTable([data.cached[name] for name in SPLITS])
        ids = {name: table.ids(k) for k, name in enumerate(SPLITS)}
        embed = FeatureInput(table, table.hidden, embed_dim)
    else:  # the encoder in the loop, its top blocks trained: ids are its token ids, shifted past padding
        encoder = encoders.load_encoder(data.source, options, config.model.chunk_size)
        ids = {name: [[t + 1 for t in doc] for doc in data.tokens[name]] for name in SPLITS}
        embed = FeatureInput(encoder, encoder.hidden, embed_dim)
    return ModelInputs(ids, tokenizer.get_vocab_size(), tokenizer, embed, data.params(), tokens, data.source)
