"""Text-classification data: the shared sets, a user's JSONL/CSV files, and a synthetic long-text task.

Every loader returns a :class:`TextDataset` with train, dev and test splits of ``(text, label)``
pairs and the label names. Bad data stops with a :class:`DataError` naming the file and line;
documents without text are skipped and counted instead when ``data.on_empty = "skip"``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field as dataclass_field
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
    skipped_empty: dict[str, int] = dataclass_field(default_factory=dict)
    """Documents without text skipped per file's split (``{"train": 36, "test": 4}``; a dev split carved
    from train counts under train), with ``data.on_empty = "skip"``. Empty when none were skipped."""

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
            f"shared data directory {root.absolute()} not found; "
            "set data.data_dir or the QATTN_DATA_DIR environment variable"
        )
    return root


# -- reading records --------------------------------------------------------------------------------


def read_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` from a JSONL or CSV file, optionally gzipped."""
    if path.is_dir():
        raise DataError(f"{path.absolute()} is a folder; name the .jsonl or .csv file (optionally .gz) inside it")
    if not path.is_file():
        raise DataError(f"{path.absolute()} does not exist")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as err:
        raise DataError(f"{path}: cannot read it ({err})") from None
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark (as spreadsheet programs write) is not part of the text
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


def field(path: Path, number: int, record: dict[str, Any], name: str, nullable: bool = False) -> Any:
    if name not in record:
        raise DataError(f"{path}:{number}: missing field {name!r} (fields: {', '.join(map(str, record))})")
    if record[name] is None and not nullable:
        raise DataError(f"{path}:{number}: field {name!r} is null; give it a value")
    return record[name]


def document_text(path: Path, number: int, record: dict[str, Any], name: str, on_empty: str) -> str | None:
    """The document's text; None for an empty one (null, or only white space) when ``on_empty`` is "skip"."""
    text = field(path, number, record, name, nullable=True)
    if text is None or (isinstance(text, str) and not text.strip()):
        if on_empty == "skip":
            return None
        raise DataError(
            f"{path}:{number}: empty document (field {name!r} is {'null' if text is None else repr(text):.40}); "
            'remove it, or set data.on_empty = "skip" to skip such documents and count them'
        )
    if not isinstance(text, str):
        raise DataError(f"{path}:{number}: field {name!r} must be text, got {text!r:.40}")
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

    skipped: dict[str, int] = {}

    def split(name: str) -> Split:
        path = folder / f"{name}.jsonl.gz"
        texts, labels = [], []
        for number, record in read_records(path):
            text = document_text(path, number, record, "text", config.on_empty)
            if text is None:
                skipped[name] = skipped.get(name, 0) + 1
                continue
            texts.append(text)
            label = field(path, number, record, "label")
            if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(label_names):
                raise DataError(f"{path}:{number}: label {label!r} out of range 0..{len(label_names) - 1} ({card_path})")
            labels.append(label)
        return Split(texts, labels)

    train, test = split("train"), split("test")
    dev = split("dev") if (folder / "dev.jsonl.gz").is_file() else None
    return finish(card.get("name", folder.name), label_names, train, dev, test, config, skipped)


# -- a user's own files ------------------------------------------------------------------------------


def load_files(config: DataConfig) -> TextDataset:
    """JSONL or CSV files with ``text_field`` and ``label_field``; labels are names or integers (not both)."""
    raw = {name: read_labelled(Path(path), config) for name, path in
           (("train", config.train_file), ("dev", config.dev_file), ("test", config.test_file)) if path}
    skipped = {name: count for name, (_, _, count) in raw.items() if count}
    raw = {name: (path, rows) for name, (path, rows, _) in raw.items()}
    check_label_kinds(raw.values())
    train_path, train_rows = raw["train"]
    if not train_rows:
        raise DataError(f"{train_path}: all {skipped.get('train', 0)} documents are empty; nothing to train on")
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
    return finish(config.name, label_names, splits["train"], splits.get("dev"), splits["test"], config, skipped)


def read_labelled(path: Path, config: DataConfig) -> tuple[Path, list[tuple[int, str, Any]], int]:
    """``(path, [(line, text, label)], empty documents skipped)``."""
    rows, skipped = [], 0
    for number, record in read_records(path):
        text = document_text(path, number, record, config.text_field, config.on_empty)
        if text is None:
            skipped += 1
            continue
        label = field(path, number, record, config.label_field)
        if isinstance(label, str) and label.strip().lstrip("-").isdecimal():
            label = int(label)  # CSV gives every field as text
        if not isinstance(label, (int, str)) or isinstance(label, bool):
            raise DataError(f"{path}:{number}: label must be an integer or a name, got {label!r}")
        rows.append((number, text, label))
    return path, rows, skipped


def check_label_kinds(files: Iterable[tuple[Path, list[tuple[int, str, Any]]]]) -> None:
    """Labels are all numbers or all names: a mix (``1`` here, ``"pos"`` there) would become extra classes."""
    first: dict[type, str] = {}
    for path, rows in files:
        for number, _, label in rows:
            first.setdefault(type(label), f"{path}:{number} has {label!r}")
    if len(first) > 1:
        raise DataError(
            f"labels mix integers and names ({first[int]}, {first[str]}); "
            "use class numbers everywhere or class names everywhere"
        )


# -- shared finishing steps --------------------------------------------------------------------------


def finish(
    name: str, label_names: list[str], train: Split, dev: Split | None, test: Split, config: DataConfig,
    skipped_empty: dict[str, int],
) -> TextDataset:
    """Carve a dev split from train when there is none; check the splits' classes agree."""
    if dev is None:
        train, dev = stratified_split(train, config.dev_fraction, config.seed)
    for split_name, split in (("train", train), ("dev", dev), ("test", test)):
        if not len(split):
            empty = f" ({skipped_empty[split_name]} empty documents skipped)" if skipped_empty.get(split_name) else ""
            raise DataError(f"{name}: the {split_name} split is empty{empty}; give more documents (or a dev_file)")
    seen = set(train.labels)
    for split_name, split in (("dev", dev), ("test", test)):
        missing = sorted(set(split.labels) - seen)
        if missing:
            names = ", ".join(label_names[i] for i in missing)
            raise DataError(f"{name}: classes {names} occur in {split_name} but not in train; the splits' classes must match")
    return TextDataset(name, label_names, train, dev, test, skipped_empty)


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
        dataset.skipped_empty,
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
