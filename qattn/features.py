"""A frozen encoder's token features, computed once per split and read from disk afterwards.

    cached = cached_split(encoder, tokens, key, folder)    # builds the entry if it is not there yet
    cached.features[cached.offsets[i]:cached.offsets[i + 1]]   # document i's token features (rows, hidden)

An entry is a folder ``<model.backbone.cache_dir>/<key>/`` holding ``features.npy`` (every token of the split,
window-encoded, as float16 or float32, read memory-mapped), ``offsets.npy`` (where each document's rows start)
and ``meta.json`` (what went into the key, readable). The key (:func:`cache_key`) is a hash of the split's
document texts in order, the split's name, the encoder's weights hash, the layer read, the tokenizer's full
definition, ``max_length``, ``chunk_size``, the dtype and the entry format: a change to any of them is another
entry, never an old one reused.

An entry is built in ``<key>.partial/`` and renamed into place when complete, so no reader ever opens a
partial one. The build goes in blocks of documents, each flushed to disk before it is recorded as done: a
build killed at any point (SIGKILL included) resumes from its last recorded block and ends with the features
an uninterrupted build gives. Under torchrun each rank encodes its own blocks into the same file; rank 0
renames the entry once all are done. A progress bar shows documents/s and the time left.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from qattn.data import notice
from qattn.distributed import Ranks

FORMAT = 1  # of an entry's files: part of every key
BLOCK = 64  # documents per recorded step of a build


@dataclass
class CachedSplit:
    """One split's features: document ``i`` has rows ``offsets[i]:offsets[i + 1]`` of ``features``."""

    features: np.ndarray  # (tokens, hidden), memory-mapped
    offsets: np.ndarray  # (documents + 1,)
    folder: Path

    def pooled(self) -> np.ndarray:
        """Each document's mean token feature (float32; zeros for a document without tokens)."""
        out = np.zeros((len(self.offsets) - 1, self.features.shape[1]), dtype=np.float32)
        for i, (start, end) in enumerate(zip(self.offsets[:-1], self.offsets[1:])):
            if end > start:
                out[i] = self.features[start:end].astype(np.float32).mean(0)
        return out


def cache_key(texts_digest: str, split: str, settings: dict) -> str:
    """The entry of a split: its texts (``texts_digest``, :func:`texts_digest`), its name, and ``settings``
    (encoder weights hash, layer, tokenizer, max_length, chunk_size, dtype)."""
    payload = {"format": FORMAT, "split": split, "texts": texts_digest, **settings}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def texts_digest(hashes: list[str]) -> str:
    """One hash of a split's documents in order, from their text hashes (:attr:`qattn.data.Split.hashes`)."""
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def cached_split(encoder: Callable[[], Any], tokens: list[list[int]], chunk_size: int, folder: Path, meta: dict, *,
                 dtype: str, batch_size: int, ranks: Ranks = Ranks(), label: str = "features") -> CachedSplit:
    """The entry at ``folder`` (a path ending in its key), built first when it is not there (or damaged): every
    document's ``tokens`` cut into windows of ``chunk_size``, each encoded on its own by ``encoder()`` (a
    :class:`~qattn.backbone.WindowEncoder`, loaded only when something is built), on ``ranks.device``."""
    if (folder / "meta.json").is_file() and (problem := damage(folder)):
        if ranks.main:
            notice(f"the cached features in {folder} are damaged ({problem}); building them again")
            shutil.rmtree(folder)
        ranks.barrier()
    if not (folder / "meta.json").is_file():
        partial = folder.with_name(folder.name + ".partial")
        with build_lock(folder, ranks):
            if not (folder / "meta.json").is_file():
                build(encoder(), tokens, chunk_size, partial, dtype, batch_size, ranks, label)
                if ranks.main:
                    (partial / "meta.json").write_text(json.dumps({**meta, "documents": len(tokens)}, indent=1))
                    for progress in partial.glob("progress-*.json"):
                        progress.unlink()
                    os.replace(partial, folder)
        ranks.barrier()
    return CachedSplit(np.load(folder / "features.npy", mmap_mode="r"), np.load(folder / "offsets.npy"), folder)


def damage(folder: Path) -> str | None:
    """What is wrong with a complete entry (a file deleted or cut short since it was built), or None."""
    try:
        offsets = np.load(folder / "offsets.npy")
        features = np.load(folder / "features.npy", mmap_mode="r")
    except (OSError, ValueError, EOFError) as err:  # missing, cut short, not an array
        return f"{type(err).__name__}: {str(err)[:120]}"
    if features.ndim != 2 or len(features) < offsets[-1]:
        return f"features.npy holds {len(features)} rows, the documents {int(offsets[-1])}"
    return None


@contextmanager
def build_lock(folder: Path, ranks: Ranks) -> Iterator[None]:
    """One build of an entry at a time on this machine (a second process waits, then finds it built); under
    torchrun rank 0 holds it for all ranks."""
    with open(lock_path(folder), "a") if ranks.main else nullcontext() as handle:
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        ranks.barrier()
        yield
        ranks.barrier()


def lock_path(folder: Path) -> Path:
    folder.parent.mkdir(parents=True, exist_ok=True)
    return folder.with_name(folder.name + ".lock")


def build(encoder, tokens: list[list[int]], chunk_size: int, partial: Path, dtype: str, batch_size: int,
          ranks: Ranks, label: str) -> None:
    """Fill ``partial``'s ``features.npy`` block by block, resuming from the blocks recorded as done."""
    lengths = np.array([len(doc) for doc in tokens], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    hidden = encoder.hidden
    path = partial / "features.npy"
    if ranks.main:
        partial.mkdir(parents=True, exist_ok=True)
        fresh = not path.is_file() or not (partial / "offsets.npy").is_file() or not np.array_equal(
            np.load(partial / "offsets.npy"), offsets)
        if fresh:  # nothing usable of an earlier build: start the file afresh
            for old in partial.glob("progress-*.json"):
                old.unlink()
            np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(max(int(offsets[-1]), 1), hidden)).flush()
            np.save(partial / "offsets.npy", offsets)
    ranks.barrier()
    features = np.load(path, mmap_mode="r+")
    blocks = range(0, len(tokens), BLOCK)
    done = recorded_blocks(partial)
    mine = [start for k, start in enumerate(blocks) if k % ranks.world_size == ranks.rank and start not in done]
    record = partial / f"progress-{ranks.rank}-of-{ranks.world_size}.json"
    finished = json.loads(record.read_text()) if record.is_file() else []  # this rank's record so far
    encoder.to(ranks.device).eval()
    todo_docs = sum(min(BLOCK, len(tokens) - start) for start in mine)
    with tqdm(total=todo_docs, unit="doc", desc=f"encoding {label}", disable=not ranks.main or todo_docs == 0,
              mininterval=2.0, dynamic_ncols=True) as bar:
        for start in mine:
            docs = range(start, min(start + BLOCK, len(tokens)))
            for rows, values in encode_block(encoder, tokens, docs, offsets, chunk_size, batch_size, ranks.device):
                features[rows] = values.astype(dtype)
            features.flush()
            finished.append(start)
            write_atomically(record, json.dumps(finished))
            bar.update(len(docs))
    del features
    ranks.barrier()
    missing = set(blocks) - recorded_blocks(partial)
    ranks.barrier()  # every rank has read the records before rank 0 removes them with the partial folder
    if missing:  # a rank failed to record a block: never rename an incomplete entry into place
        raise RuntimeError(f"the features build in {partial} lacks {len(missing)} blocks; run again to finish it")


def recorded_blocks(partial: Path) -> set[int]:
    """Blocks some build (any rank, any world size) recorded as flushed."""
    done: set[int] = set()
    for record in partial.glob("progress-*.json"):
        try:
            done |= set(json.loads(record.read_text()))
        except (json.JSONDecodeError, OSError):
            continue  # cannot happen with atomic writes; such a record counts as nothing done
    return done


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@torch.no_grad()
def encode_block(encoder, tokens: list[list[int]], docs: range, offsets: np.ndarray, chunk_size: int,
                 batch_size: int, device: torch.device):
    """(feature rows, their values) of the windows of ``docs``: windows of one length go together, so no
    window is padded and each one's features do not depend on the others in its batch."""
    by_length = defaultdict(list)  # window length -> (first feature row, token ids)
    for doc in docs:
        ids = tokens[doc]
        for start in range(0, len(ids), chunk_size):
            window = ids[start:start + chunk_size]
            by_length[len(window)].append((int(offsets[doc]) + start, window))
    for length, windows in by_length.items():
        for at in range(0, len(windows), batch_size):
            batch = windows[at:at + batch_size]
            ids = torch.tensor([window for _, window in batch], dtype=torch.long, device=device) + 1
            values = encoder(ids).float().cpu().numpy()
            rows = np.concatenate([np.arange(first, first + length) for first, _ in batch])
            yield rows, values.reshape(-1, values.shape[-1])


class FeatureTable:
    """Cached splits as one lookup: row ids ``1..`` name the tokens of the splits in turn, 0 is padding.

    The reader's input (:class:`qattn.model.FeatureInput`) calls it with a batch of row ids, ``(N, T)``, and gets
    their features as float32, ``(N, T, hidden)``; a split's documents hold the row ids :meth:`ids` gives.
    """

    def __init__(self, splits: list[CachedSplit]) -> None:
        self.parts = [split.features for split in splits]
        self.starts = np.cumsum([1] + [len(part) for part in self.parts])  # row id of each part's first row
        self.offsets = [split.offsets for split in splits]
        self.hidden = self.parts[0].shape[1]

    def ids(self, part: int) -> list[list[int]]:
        """The row ids of each document of split number ``part``."""
        base, offsets = int(self.starts[part]), self.offsets[part]
        return [list(range(base + int(a), base + int(b))) for a, b in zip(offsets[:-1], offsets[1:])]

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        flat = ids.reshape(-1).cpu().numpy()
        out = np.zeros((len(flat), self.hidden), dtype=np.float32)
        which = np.searchsorted(self.starts, flat, side="right") - 1
        for k, part in enumerate(self.parts):
            hit = (which == k) & (flat > 0)
            if hit.any():
                out[hit] = part[flat[hit] - self.starts[k]]
        return torch.from_numpy(out).view(*ids.shape, self.hidden).to(ids.device)
