"""A tokenizer trained locally on the training split (no hub download), of one of three kinds.

- ``bpe`` (the default): byte-level BPE covers any Unicode text (CJK, emoji, accents) without unknown
  tokens, and decodes back to exactly the (normalised) input.
- ``words``: one token per white-space separated word, the vocabulary the training split's words (the rest
  ``[UNK]``): ListOps' operators, digits and closing brackets, one token each, as LRA's pipeline feeds them
  since March 2021 (it renames ``]`` to ``X`` and drops the parentheses before its tokenizer).
- ``alphanumeric``: runs of letters, digits and ``_``, everything else dropped, as LRA's first release fed
  ListOps (``tfds.deprecated.text.Tokenizer()``, whose default keeps alphanumeric tokens only): there the
  closing brackets vanish, and with them where an operation ends.

Trained tokenizers are cached on disk under a key made of the training texts and the settings, so a second
run with the same data and settings loads it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from qattn.config import TokenizerConfig

PAD = "[PAD]"
UNK = "[UNK]"


def cache_key(texts: list[str], config: TokenizerConfig) -> str:
    digest = hashlib.sha256()
    settings = {"vocab_size": config.vocab_size, "min_frequency": config.min_frequency, "lowercase": config.lowercase}
    if config.kind != "bpe":  # the key of a BPE tokenizer stays what it was before there were other kinds
        settings["kind"] = config.kind
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for text in texts:
        digest.update(hashlib.sha256(text.encode("utf-8")).digest())
    return digest.hexdigest()[:24]


def build_tokenizer(texts: list[str], config: TokenizerConfig) -> Tokenizer:
    """Train (or load from the cache) a tokenizer on ``texts``; ``[PAD]`` has id 0."""
    path = Path(config.cache_dir) / f"{config.kind}-{cache_key(texts, config)}.json"
    if path.is_file():
        return Tokenizer.from_file(str(path))
    tokenizer, trainer = (byte_level if config.kind == "bpe" else word_level)(config)
    steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if config.lowercase else [])
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tokenizer.save(str(tmp))
    os.replace(tmp, path)  # a parallel run never reads a half-written file
    return tokenizer


def byte_level(config: TokenizerConfig) -> tuple[Tokenizer, trainers.Trainer]:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size,
        min_frequency=config.min_frequency,
        special_tokens=[PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    return tokenizer, trainer


def word_level(config: TokenizerConfig) -> tuple[Tokenizer, trainers.Trainer]:
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    tokenizer.pre_tokenizer = (pre_tokenizers.WhitespaceSplit() if config.kind == "words"
                               else pre_tokenizers.Split(Regex(r"\W+"), behavior="removed"))
    trainer = trainers.WordLevelTrainer(vocab_size=config.vocab_size, min_frequency=config.min_frequency,
                                        special_tokens=[PAD, UNK], show_progress=False)
    return tokenizer, trainer


def encode(tokenizer: Tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids per text, truncated to ``max_length`` (batched in the library's own threads)."""
    return [encoding.ids[:max_length] for encoding in tokenizer.encode_batch(texts)]
