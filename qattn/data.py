"""Text-classification data: the shared sets, a user's JSONL/CSV files, and a synthetic long-text task.

Every loader returns a :class:`TextDataset` with train, dev and test splits of ``(text, label)``
pairs and the label names. Bad data stops with a :class:`DataError` naming the file and line.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qattn.config import DataConfig, SyntheticConfig

DEFAULT_DATA_DIR = Path("../shared/data")


class DataError(ValueError):
    """Data that cannot be used as it is; the message names the file and line."""


@dataclass(frozen=True)
class Split:
    texts: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: list[int]) -> Split:
        return Split([self.texts[i] for i in indices], [self.labels[i] for i in indices])


@dataclass(frozen=True)
class TextDataset:
    name: str
    label_names: list[str]
    train: Split
    dev: Split
    test: Split

    @property
    def num_classes(self) -> int:
        return len(self.label_names)


def load_dataset(config: DataConfig) -> TextDataset:
    """The data set a config names, with a dev split (carved from train if needed) and subsampling."""
    if config.source == "synthetic":
        dataset = synthetic_dataset(config.synthetic, seed=config.seed)
    elif config.source == "shared":
        dataset = load_shared(data_root(config) / config.name, config)
    else:
        dataset = load_files(config)
    return subsample(dataset, config)


def data_root(config: DataConfig) -> Path:
    root = Path(config.data_dir or os.environ.get("QATTN_DATA_DIR") or DEFAULT_DATA_DIR)
    if not root.is_dir():
        raise DataError(
            f"shared data directory {root} not found (working directory {Path.cwd()}); "
            "set data.data_dir or the QATTN_DATA_DIR environment variable"
        )
    return root


# -- reading records --------------------------------------------------------------------------------


def read_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` from a JSONL or CSV file, optionally gzipped."""
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as err:
        raise DataError(f"{path}: cannot read it ({err})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[err.start]:02x}); re-encode the file as UTF-8") from None
    suffixes = [s for s in path.suffixes if s != ".gz"]
    kind = suffixes[-1] if suffixes else ""
    if kind == ".jsonl":
        records = read_jsonl(path, text)
    elif kind == ".csv":
        records = read_csv(path, text)
    else:
        raise DataError(f"{path}: unknown format {kind or '(no suffix)'}; use .jsonl or .csv (optionally .gz)")
    empty = True
    for record in records:
        empty = False
        yield record
    if empty:
        raise DataError(f"{path} is empty: it holds no documents")


def read_jsonl(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(text.split("\n"), start=1):  # not splitlines: JSON strings may hold U+2028
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{number}: not valid JSON ({err.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{number}: expected a JSON object per line, got {type(record).__name__}")
        yield number, record


def read_csv(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    for record in reader:
        if None in record:
            raise DataError(f"{path}:{reader.line_num}: more fields than the header has ({len(reader.fieldnames)})")
        yield reader.line_num, record


def field(path: Path, number: int, record: dict[str, Any], name: str) -> Any:
    if name not in record or record[name] is None:
        raise DataError(f"{path}:{number}: missing field {name!r} (fields: {', '.join(map(str, record))})")
    return record[name]


def document_text(path: Path, number: int, record: dict[str, Any], name: str) -> str:
    text = field(path, number, record, name)
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{path}:{number}: field {name!r} must be non-empty text, got {text!r:.40}")
    return text


# -- the shared layout ------------------------------------------------------------------------------


def load_shared(folder: Path, config: DataConfig) -> TextDataset:
    """``<folder>/dataset.json`` plus ``train``/``test`` (and optional ``dev``) ``.jsonl.gz`` splits."""
    card_path = folder / "dataset.json"
    if not card_path.is_file():
        available = sorted(p.name for p in folder.parent.iterdir() if (p / "dataset.json").is_file())
        raise DataError(f"no data set {folder.name!r} in {folder.parent} (no {card_path.name}); available: {', '.join(available)}")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
        label_names = [str(name) for name in card["label_names"]]
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{card_path}: not a data set card with a label_names list ({err!r})") from None

    def split(name: str) -> Split:
        path = folder / f"{name}.jsonl.gz"
        texts, labels = [], []
        for number, record in read_records(path):
            texts.append(document_text(path, number, record, "text"))
            label = field(path, number, record, "label")
            if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(label_names):
                raise DataError(f"{path}:{number}: label {label!r} out of range 0..{len(label_names) - 1} ({card_path})")
            labels.append(label)
        return Split(texts, labels)

    train, test = split("train"), split("test")
    dev = split("dev") if (folder / "dev.jsonl.gz").is_file() else None
    return finish(card.get("name", folder.name), label_names, train, dev, test, config)


# -- a user's own files ------------------------------------------------------------------------------


def load_files(config: DataConfig) -> TextDataset:
    """JSONL or CSV files with ``text_field`` and ``label_field``; labels may be names or integers."""
    raw = {name: read_labelled(Path(path), config) for name, path in
           (("train", config.train_file), ("dev", config.dev_file), ("test", config.test_file)) if path}
    train_path, train_rows = raw["train"]
    names = sorted({label for _, _, label in train_rows}, key=lambda v: (isinstance(v, str), v))
    index = {label: i for i, label in enumerate(names)}
    label_names = [str(name) for name in names]

    def to_split(path: Path, rows: list[tuple[int, str, Any]]) -> Split:
        for number, _, label in rows:
            if label not in index:
                raise DataError(
                    f"{path}:{number}: label {label!r} does not occur in the training file {train_path} "
                    f"(its classes: {', '.join(label_names)}); the splits' classes must match"
                )
        return Split([text for _, text, _ in rows], [index[label] for _, _, label in rows])

    if len(label_names) < 2:
        raise DataError(f"{train_path}: only one class ({label_names[0]}); a classifier needs at least two")
    splits = {name: to_split(*value) for name, value in raw.items()}
    return finish(config.name, label_names, splits["train"], splits.get("dev"), splits["test"], config)


def read_labelled(path: Path, config: DataConfig) -> tuple[Path, list[tuple[int, str, Any]]]:
    rows = []
    for number, record in read_records(path):
        text = document_text(path, number, record, config.text_field)
        label = field(path, number, record, config.label_field)
        if isinstance(label, str) and label.strip().lstrip("-").isdecimal():
            label = int(label)  # CSV gives every field as text
        if not isinstance(label, (int, str)) or isinstance(label, bool):
            raise DataError(f"{path}:{number}: label must be an integer or a name, got {label!r}")
        rows.append((number, text, label))
    return path, rows


# -- shared finishing steps --------------------------------------------------------------------------


def finish(name: str, label_names: list[str], train: Split, dev: Split | None, test: Split, config: DataConfig) -> TextDataset:
    """Carve a dev split from train when there is none; check the splits' classes agree."""
    if dev is None:
        train, dev = stratified_split(train, config.dev_fraction, config.seed)
    for split_name, split in (("train", train), ("dev", dev), ("test", test)):
        if not len(split):
            raise DataError(f"{name}: the {split_name} split is empty; give more documents (or a dev_file)")
    seen = set(train.labels)
    for split_name, split in (("dev", dev), ("test", test)):
        missing = sorted(set(split.labels) - seen)
        if missing:
            names = ", ".join(label_names[i] for i in missing)
            raise DataError(f"{name}: classes {names} occur in {split_name} but not in train; the splits' classes must match")
    return TextDataset(name, label_names, train, dev, test)


def stratified_split(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Hold out ``fraction`` of each class (at least one document of classes with two or more)."""
    rng = random.Random(seed)
    held, kept = [], []
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(split.labels):
        by_class.setdefault(label, []).append(i)
    for indices in by_class.values():
        rng.shuffle(indices)
        n_held = max(1, round(fraction * len(indices))) if len(indices) > 1 else 0
        held += indices[:n_held]
        kept += indices[n_held:]
    return split.subset(sorted(kept)), split.subset(sorted(held))


def subsample(dataset: TextDataset, config: DataConfig) -> TextDataset:
    def cut(split: Split, limit: int | None, salt: int) -> Split:
        if limit is None or len(split) <= limit:
            return split
        return split.subset(sorted(random.Random(config.seed * 1000 + salt).sample(range(len(split)), limit)))

    return TextDataset(
        dataset.name,
        dataset.label_names,
        cut(dataset.train, config.max_train_docs, 1),
        cut(dataset.dev, config.max_dev_docs, 2),
        cut(dataset.test, config.max_test_docs, 3),
    )


# -- synthetic long documents -------------------------------------------------------------------------

SYMBOLS = ["red", "green", "blue", "gold", "violet", "orange", "silver", "black", "white", "amber", "teal", "coral"]


def synthetic_dataset(config: SyntheticConfig, seed: int) -> TextDataset:
    """Long documents whose label is a relation between distant words.

    Filler words, plus two colour words in the first quarter of the document and two in the last
    quarter. Exactly one colour occurs in both places; the label is that colour. No window of the
    document decides the label on its own: the model must bring together words hundreds of
    positions apart, which the hierarchical reader does by attention across chunks. (Colours
    occur nowhere else, so a bag-of-words counter would find the repeated one too: the task tests
    reach over long documents, not word order.)
    """
    rng = random.Random(seed)
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    filler = sorted({"".join(rng.choices(syllables, k=rng.randint(2, 3))) for _ in range(config.vocab * 2)})[: config.vocab]
    colours = SYMBOLS[: config.symbols]

    def document() -> tuple[str, int]:
        length = rng.randint(config.min_words, config.max_words)
        words = [rng.choice(filler) for _ in range(length)]
        shared, early, late = rng.sample(range(len(colours)), 3)
        quarter = length // 4
        for position, colour in zip(rng.sample(range(quarter), 2), (shared, early)):
            words[position] = colours[colour]
        for position, colour in zip(rng.sample(range(length - quarter, length), 2), (shared, late)):
            words[position] = colours[colour]
        return " ".join(words), shared

    def split(n: int) -> Split:
        docs = [document() for _ in range(n)]
        return Split([text for text, _ in docs], [label for _, label in docs])

    return TextDataset("synthetic", colours, split(config.train_docs), split(config.dev_docs), split(config.test_docs))
