"""Text-classification data: the shared sets, a user's JSONL/CSV files, and two generated tasks (long
documents whose label joins distant words, and ListOps).

Every loader returns a :class:`TextDataset` with train, dev and test splits of ``(text, label)``
pairs, each document's id (the record's ``id`` field, else None: known by its text), the label names,
and the data's identity by content (:func:`data_hashes`: sha256 of its files' bytes, so the same path
with other contents is other data). Bad data stops with a :class:`DataError` naming the file and line;
documents without text are skipped and counted instead when ``data.on_empty = "skip"``. Documents
that occur in two splits (the same text, :func:`text_hash`) are counted and warned of on stderr, or
stop the load, or are dropped from dev and test (``data.on_overlap``).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import gzip
import hashlib
import io
import json
import os
import random
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from functools import cached_property
from pathlib import Path
from typing import Any

from qattn.config import DataConfig, ListOpsConfig, SyntheticConfig

DEFAULT_DATA_DIR = Path("../shared/data")
HASH_PARAM = "data.sha256."  # MLflow params: the content hash of each data file (data.sha256.train, ...)
OVERLAP_PARAM = "data.overlap."  # MLflow params: the counts of TextDataset.overlap
HASH_LENGTH = 16  # hex digits kept of a sha256: 64 bits, no accidental collision among any data sets


class DataError(ValueError):
    """Data that cannot be used as it is; the message names the file and line."""


def text_hash(text: str) -> str:
    """A document's identity: the sha256 of its UTF-8 text without white space at either end (as a copy
    pasted into another file may gain), :data:`HASH_LENGTH` hex digits."""
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()[:HASH_LENGTH]


@dataclass(frozen=True)
class Split:
    texts: list[str]
    labels: list[int]
    ids: list[str | None] = dataclass_field(default_factory=list)
    """Each document's id: the record's ``id`` field (``test-N`` for generated documents), else None: such a
    document is known by its text alone (paired tests match it by :func:`text_hash`, whatever its line or
    file format); all None when not given."""

    def __post_init__(self) -> None:
        if not self.ids:
            object.__setattr__(self, "ids", [None] * len(self.texts))

    def __len__(self) -> int:
        return len(self.texts)

    @cached_property
    def hashes(self) -> list[str]:
        """Each document's :func:`text_hash`."""
        return [text_hash(text) for text in self.texts]

    def subset(self, indices: list[int]) -> Split:
        return Split(*([values[i] for i in indices] for values in (self.texts, self.labels, self.ids)))


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
    overlap: dict[str, int] = dataclass_field(default_factory=dict)
    """Documents in two splits, by :func:`text_hash` (``test_in_train``, ``dev_in_train``, ``test_in_dev``),
    ids occurring twice within a split (``duplicate_ids``), and documents ``dropped`` from dev and test
    (``data.on_overlap = "drop"``); counted before subsampling (:func:`check_overlap`)."""
    hashes: dict[str, str] = dataclass_field(default_factory=dict)
    """The data's identity by content (:func:`data_hashes`)."""

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def params(self) -> dict[str, str | int]:
        """The MLflow params of its identity and overlap: ``data.sha256.<file>`` and ``data.overlap.<count>``."""
        return {**hash_params(self.hashes), **{f"{OVERLAP_PARAM}{key}": count for key, count in self.overlap.items()}}


def load_dataset(config: DataConfig) -> TextDataset:
    """The data set a config names, with a dev split (carved from train if needed), its overlap between
    splits checked (:func:`check_overlap`), its content hashes, and subsampling."""
    if config.source in GENERATED:
        dataset = generated_dataset(config)
        hashes = generated_hashes(dataset)
    else:
        shared = config.source == "shared"
        dataset = load_shared(data_root(config) / config.name, config) if shared else load_files(config)
        hashes = data_hashes(config)
    return subsample(dataclasses.replace(dataset, hashes=hashes), config)


# -- identity by content -------------------------------------------------------------------------------


def data_hashes(config: DataConfig) -> dict[str, str]:
    """What the data is, whatever its path: the sha256 (:data:`HASH_LENGTH` hex digits) of each file's bytes,
    ``train``, ``test`` and ``dev`` if there is one (a shared set's split files, and its ``card``,
    dataset.json); for generated documents, of their texts and labels per split (:func:`generated_hashes`).
    Recorded with every run (:meth:`TextDataset.params`), compared by ``--resume``, a grid and a report."""
    if config.source in GENERATED:
        return generated_hashes(generated_dataset(config))
    if config.source == "shared":
        folder = data_root(config) / config.name
        files = {"card": folder / "dataset.json"}
        files.update({name: folder / f"{name}.jsonl.gz" for name in ("train", "dev", "test")})
    else:
        files = {name: Path(path) for name, path in
                 (("train", config.train_file), ("dev", config.dev_file), ("test", config.test_file)) if path}
    return {name: file_hash(path) for name, path in files.items() if path.is_file()}


def file_hash(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:HASH_LENGTH]
    except OSError as err:
        raise DataError(f"{path}: cannot read it ({err})") from None


def generated_hashes(dataset: TextDataset) -> dict[str, str]:
    """Generated documents have no file: the hash of each split's texts and labels stands for it."""
    return {name: hashlib.sha256(json.dumps([split.texts, split.labels]).encode()).hexdigest()[:HASH_LENGTH]
            for name, split in (("train", dataset.train), ("dev", dataset.dev), ("test", dataset.test))}


def hash_params(hashes: dict[str, str]) -> dict[str, str]:
    return {f"{HASH_PARAM}{name}": value for name, value in hashes.items()}


def check_unchanged(recorded: dict[str, str], hashes: dict[str, str], what: str, fix: str) -> None:
    """Refuse to continue ``what`` (a run, a grid) on data other than the data it recorded: ``recorded`` (its
    MLflow params) and the current :func:`data_hashes` differ. A run recorded before qattn hashed its data
    holds no hashes, and is not checked."""
    before = {key.removeprefix(HASH_PARAM): value for key, value in recorded.items() if key.startswith(HASH_PARAM)}
    if changed := data_changes(before, hashes):
        raise DataError(f"{what} was run on other data: {changed}. Continuing would mix two data sets; "
                        f"restore the data it was run on, or {fix}")


def data_changes(before: dict[str, str], hashes: dict[str, str]) -> str:
    """Each file whose hash in ``before`` (recorded with a run, a checkpoint) is not its hash in ``hashes`` (the
    data now), with both hashes; "" when none differs, or when nothing was recorded (runs and checkpoints
    made before qattn hashed its data are not checked)."""
    if not before:
        return ""
    return "; ".join(f"{name} ({HASH_PARAM}{name}) was {before.get(name, 'absent')}, is now {hashes.get(name, 'absent')}"
                     for name in sorted(set(before) | set(hashes)) if before.get(name) != hashes.get(name))


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


def document_id(record: dict[str, Any]) -> str | None:
    """The record's ``id`` field (the shared sets have one), else None: what pairs two runs' answers on a test
    document, with its :func:`text_hash`. Not the line number: the same documents reordered, or converted
    to CSV (whose lines count the header), are the same documents."""
    value = record.get("id")
    return None if value is None or value == "" else str(value)


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
        texts, labels, ids = [], [], []
        for number, record in read_records(path):
            text = document_text(path, number, record, "text", config.on_empty)
            if text is None:
                skipped[name] = skipped.get(name, 0) + 1
                continue
            texts.append(text)
            ids.append(document_id(record))
            label = field(path, number, record, "label")
            if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(label_names):
                raise DataError(f"{path}:{number}: label {label!r} out of range 0..{len(label_names) - 1} ({card_path})")
            labels.append(label)
        return Split(texts, labels, ids)

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
    names = sorted({label for _, _, label, _ in train_rows}, key=lambda v: (isinstance(v, str), v))
    index = {label: i for i, label in enumerate(names)}
    label_names = [str(name) for name in names]

    def to_split(path: Path, rows: list[tuple[int, str, Any, str | None]]) -> Split:
        for number, _, label, _ in rows:
            if label not in index:
                raise DataError(
                    f"{path}:{number}: label {label!r} does not occur in the training file {train_path} "
                    f"(its classes: {', '.join(label_names)}); the splits' classes must match"
                )
        return Split([row[1] for row in rows], [index[row[2]] for row in rows], [row[3] for row in rows])

    if len(label_names) < 2:
        raise DataError(f"{train_path}: only one class ({label_names[0]}); a classifier needs at least two")
    splits = {name: to_split(*value) for name, value in raw.items()}
    return finish(config.name, label_names, splits["train"], splits.get("dev"), splits["test"], config, skipped)


def read_labelled(path: Path, config: DataConfig) -> tuple[Path, list[tuple[int, str, Any, str | None]], int]:
    """``(path, [(line, text, label, id)], empty documents skipped)``."""
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
        rows.append((number, text, label, document_id(record)))
    return path, rows, skipped


def check_label_kinds(files: Iterable[tuple[Path, list[tuple[int, str, Any, str | None]]]]) -> None:
    """Labels are all numbers or all names: a mix (``1`` here, ``"pos"`` there) would become extra classes."""
    first: dict[type, str] = {}
    for path, rows in files:
        for number, _, label, _ in rows:
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
    """Carve a dev split from train when there is none; count (and drop) documents in two splits; check the
    splits' classes agree."""
    if dev is None:
        train, dev = stratified_split(train, config.dev_fraction, config.seed)
    dev, test, overlap, dropped = check_overlap(name, train, dev, test, config.on_overlap)
    for split_name, split in (("train", train), ("dev", dev), ("test", test)):
        if not len(split):
            empty = f" ({skipped_empty[split_name]} empty documents skipped)" if skipped_empty.get(split_name) else ""
            fix = "give more documents (or a dev_file)"
            if dropped.get(split_name):
                where = "train" if split_name == "dev" else "train or dev"
                empty = f" ({dropped[split_name]} documents dropped: also in {where})"
                fix = f"give it documents that are not in {where} (data.on_overlap = \"drop\" drops the others)"
            raise DataError(f"{name}: the {split_name} split is empty{empty}; {fix}")
    seen = set(train.labels)
    for split_name, split in (("dev", dev), ("test", test)):
        missing = sorted(set(split.labels) - seen)
        if missing:
            names = ", ".join(label_names[i] for i in missing)
            raise DataError(f"{name}: classes {names} occur in {split_name} but not in train; the splits' classes must match")
    return TextDataset(name, label_names, train, dev, test, skipped_empty, overlap)


def check_overlap(name: str, train: Split, dev: Split, test: Split, on_overlap: str
                  ) -> tuple[Split, Split, dict[str, int], dict[str, int]]:
    """Documents of dev or test whose text (:func:`text_hash`) is a training document's, test documents in
    dev, and ids occurring twice within a split (documents without one aside), counted
    (:attr:`TextDataset.overlap`). ``on_overlap``:
    "warn" (a notice on stderr), "error" (a :class:`DataError` with the counts and the fix), or "drop"
    (such documents leave dev and test). Returns dev, test, the counts and the documents dropped per split.
    A dev split carved from train overlaps it only where train holds one text twice. Duplicate ids are
    only said: paired tests tell such documents apart by their text."""
    in_train, in_dev = set(train.hashes), set(dev.hashes)
    seen_dev = [h in in_train for h in dev.hashes]
    seen_test = [h in in_train or h in in_dev for h in test.hashes]
    counts = {
        "test_in_train": sum(h in in_train for h in test.hashes),
        "dev_in_train": sum(seen_dev),
        "test_in_dev": sum(h in in_dev for h in test.hashes),
    }
    sizes = {"test_in_train": len(test), "dev_in_train": len(dev), "test_in_dev": len(test)}
    found = [f"{count} of {sizes[key]} {key.replace('_in_', ' documents are also in ')}"
             for key, count in counts.items() if count]
    if found and on_overlap == "error":
        raise DataError(
            f"{name}: {', '.join(found)} (the same text): a model tested on documents it trained on scores too high. "
            'Remove them from the test split (and dev), or set data.on_overlap = "drop" to drop them (counted), '
            'or "warn" to go on'
        )
    dropped = {}
    if found and on_overlap == "drop":
        dropped = {"dev": sum(seen_dev), "test": sum(seen_test)}
        dev = dev.subset([i for i, seen in enumerate(seen_dev) if not seen])
        test = test.subset([i for i, seen in enumerate(seen_test) if not seen])
        notice(f"{name}: {', '.join(found)} (the same text); dropped {sum(dropped.values())} documents from dev and "
               'test (data.on_overlap = "drop")')
    elif found:
        notice(f"{name}: {', '.join(found)} (the same text); data.on_overlap = \"warn\" (\"drop\" drops them from "
               'dev and test, "error" stops)')
    duplicates = {split_name: sum(n - 1 for document, n in Counter(split.ids).items() if document is not None)
                  for split_name, split in (("train", train), ("dev", dev), ("test", test))}
    if sum(duplicates.values()):
        where = ", ".join(f"{split_name} {count}" for split_name, count in duplicates.items() if count)
        notice(f"{name}: {sum(duplicates.values())} duplicate document ids within a split ({where})")
    return dev, test, {**counts, "duplicate_ids": sum(duplicates.values()), "dropped": sum(dropped.values())}, dropped


def notice(message: str) -> None:
    """A warning on stderr, ``qattn: <message>``: qattn's one way to give them (``qattn.tracking.notice`` is this
    function; it lives here because this module imports no MLflow)."""
    print(f"qattn: {message}", file=sys.stderr, flush=True)


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
    """Seeded subsamples of the splits (``data.max_*_docs``); the training split must keep two classes or
    more (:func:`check_two_classes`), whatever kind of model reads it."""

    def cut(split: Split, limit: int | None, salt: int) -> Split:
        if limit is None or len(split) <= limit:
            return split
        return split.subset(sorted(random.Random(config.seed * 1000 + salt).sample(range(len(split)), limit)))

    train = cut(dataset.train, config.max_train_docs, 1)
    check_two_classes(dataset, train, config)
    return dataclasses.replace(
        dataset,
        train=train,
        dev=cut(dataset.dev, config.max_dev_docs, 2),
        test=cut(dataset.test, config.max_test_docs, 3),
    )


def check_two_classes(dataset: TextDataset, train: Split, config: DataConfig) -> None:
    """A classifier trained on one class learns nothing (and scikit-learn's refuse to fit): a DataError naming
    the class, the counts and the fix, raised while loading, before any run starts. ``train`` is
    ``dataset.train`` after the ``data.max_train_docs`` cut."""
    if len(set(train.labels)) != 1:
        return
    names, full = dataset.label_names, dataset.train
    one = f"{names[train.labels[0]]}: {len(train)} document{'' if len(train) == 1 else 's'}"
    classes = sorted(set(full.labels))
    if len(classes) > 1:  # the cut left one
        before = ", ".join(f"{names[c]} {full.labels.count(c)}" for c in classes)
        raise DataError(
            f"{dataset.name}: data.max_train_docs = {config.max_train_docs} leaves the training split one class "
            f"({one}; of the {len(full)} before the cut: {before}); a classifier needs two or more: raise "
            "data.max_train_docs (or change data.seed)"
        )
    raise DataError(
        f"{dataset.name}: the training split holds one class only ({one}); a classifier needs two or more: "
        "give it documents of another class"
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

    def split(name: str, n: int) -> Split:
        docs = [document() for _ in range(n)]
        return Split([text for text, _ in docs], [label for _, label in docs], [f"{name}-{i}" for i in range(n)])

    sizes = {"train": config.train_docs, "dev": config.dev_docs, "test": config.test_docs}
    return TextDataset("synthetic", colours, *(split(name, n) for name, n in sizes.items()))


# -- ListOps (Long Range Arena) -----------------------------------------------------------------------

LISTOPS_OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
LISTOPS_END = "]"
LISTOPS_VALUE_P = 0.25  # LRA's VALUE_P: below max_depth, a node is an operator with this probability


ListOpsTree = int | tuple[str, list["ListOpsTree"]]  # a digit, or (operator, operands)


def listops_tree(rng: random.Random, depth: int, max_depth: int, max_args: int) -> tuple[ListOpsTree, int]:
    """One expression, by the rules of LRA's ``generate_tree`` (lra_benchmarks/data/listops.py), drawing
    from ``rng`` in the same order: ``(tree, length)``, the tree a digit or ``(operator, [operands])``,
    its length the number of tokens written without parentheses (operators, digits, closing brackets)."""
    if depth < max_depth and rng.random() <= LISTOPS_VALUE_P:
        length, operands = 2, []
        for _ in range(rng.randint(2, max_args)):
            operand, size = listops_tree(rng, depth + 1, max_depth, max_args)
            operands.append(operand)
            length += size
        return (rng.choice(LISTOPS_OPERATORS), operands), length
    return rng.choice(range(10)), 1


def listops_text(tree: ListOpsTree) -> str:
    """``[MAX 2 9 [MIN 4 7 ] 0 ]``: LRA's Source without its parentheses (LRA's pipeline drops them), so each
    white-space separated word is one token."""
    if isinstance(tree, int):
        return str(tree)
    operator, operands = tree
    return " ".join([operator, *(listops_text(operand) for operand in operands), LISTOPS_END])


def listops_value(tree: ListOpsTree) -> int:
    """The expression's value, as LRA's ``to_value`` computes it: MED is ``int(np.median(...))`` (the mean of the
    middle two, rounded toward zero), SM the sum mod 10."""
    if isinstance(tree, int):
        return tree
    operator, operands = tree
    values = [listops_value(operand) for operand in operands]
    if operator == "[MIN":
        return min(values)
    if operator == "[MAX":
        return max(values)
    if operator == "[SM":
        return sum(values) % 10
    middle = sorted(values)
    half = len(middle) // 2
    return middle[half] if len(middle) % 2 else (middle[half - 1] + middle[half]) // 2


def listops_dataset(config: ListOpsConfig, seed: int) -> TextDataset:
    """ListOps (Tay et al. 2021, arXiv 2011.04006): nested MIN, MAX, MED and SM (sum mod 10) over digits; the
    label is the value, 10 classes. As LRA's generator: trees of depth up to ``max_depth`` and ``max_args``
    operands, kept when their length lies strictly between ``min_length`` and ``max_length``, every sequence
    unique across the splits, drawn until the three splits are full and then cut in order into train, dev
    and test. Seeded (LRA's script is not: its sets are one draw). Only the sizes' defaults differ from
    LRA's (:class:`~qattn.config.ListOpsConfig`): shorter sequences and fewer of them, so a grid fits a
    2-core machine."""
    rng = random.Random(seed)
    total = config.train_docs + config.dev_docs + config.test_docs
    drawn: dict[str, int] = {}
    attempts = 0
    while len(drawn) < total:
        attempts += 1
        if attempts > 1000 * total:
            raise DataError(
                f"listops: {len(drawn)} of {total} unique sequences of length {config.min_length + 1}-"
                f"{config.max_length - 1} after {attempts - 1:,} draws; widen data.listops.min_length/max_length "
                "or raise max_depth and max_args"
            )
        tree, length = listops_tree(rng, 1, config.max_depth, config.max_args)
        if config.min_length < length < config.max_length:
            drawn.setdefault(listops_text(tree), listops_value(tree))
    documents = list(drawn.items())
    bounds = {"train": (0, config.train_docs), "dev": (config.train_docs, config.train_docs + config.dev_docs),
              "test": (config.train_docs + config.dev_docs, total)}

    def split(name: str) -> Split:
        start, end = bounds[name]
        chosen = documents[start:end]
        return Split([text for text, _ in chosen], [label for _, label in chosen],
                     [f"{name}-{i}" for i in range(len(chosen))])

    return TextDataset("listops", [str(value) for value in range(10)], split("train"), split("dev"), split("test"))


@functools.lru_cache(maxsize=4)
def cached_listops(settings: str, seed: int) -> TextDataset:
    """Generating takes seconds (most trees fall outside the length bounds); a run asks for its data twice
    (the splits, their hashes) and a grid once per cell."""
    return listops_dataset(ListOpsConfig.model_validate_json(settings), seed)


GENERATED = {
    "synthetic": lambda config: synthetic_dataset(config.synthetic, seed=config.seed),
    "listops": lambda config: fresh(cached_listops(config.listops.model_dump_json(), config.seed)),
}
"""The generated tasks by ``data.source``: no files, their identity is their texts' hash (:func:`generated_hashes`)."""


def fresh(dataset: TextDataset) -> TextDataset:
    """A copy whose lists no other caller holds (the cache keeps its own)."""
    return dataclasses.replace(dataset, **{name: getattr(dataset, name).subset(range(len(getattr(dataset, name))))
                                           for name in ("train", "dev", "test")})


def generated_dataset(config: DataConfig) -> TextDataset:
    return GENERATED[config.source](config)
