"""A byte-level BPE tokenizer trained locally on the training split (no hub download).

Byte-level BPE covers any Unicode text (CJK, emoji, accents) without unknown tokens, and decodes
back to exactly the (normalised) input. Trained tokenizers are cached on disk under a key made of
the training texts and the settings, so a second run with the same data and settings loads it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from qattn.config import TokenizerConfig

PAD = "[PAD]"


def cache_key(texts: list[str], config: TokenizerConfig) -> str:
    digest = hashlib.sha256()
    settings = {"vocab_size": config.vocab_size, "min_frequency": config.min_frequency, "lowercase": config.lowercase}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for text in texts:
        digest.update(hashlib.sha256(text.encode("utf-8")).digest())
    return digest.hexdigest()[:24]


def build_tokenizer(texts: list[str], config: TokenizerConfig) -> Tokenizer:
    """Train (or load from the cache) a tokenizer on ``texts``; ``[PAD]`` has id 0."""
    path = Path(config.cache_dir) / f"bpe-{cache_key(texts, config)}.json"
    if path.is_file():
        return Tokenizer.from_file(str(path))
    tokenizer = Tokenizer(models.BPE())
    steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if config.lowercase else [])
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size,
        min_frequency=config.min_frequency,
        special_tokens=[PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tokenizer.save(str(tmp))
    os.replace(tmp, path)  # a parallel run never reads a half-written file
    return tokenizer


def encode(tokenizer: Tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids per text, truncated to ``max_length`` (batched in the library's own threads)."""
    return [encoding.ids[:max_length] for encoding in tokenizer.encode_batch(texts)]
