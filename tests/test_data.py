"""Data loaders against fixture files written here (and the shared sets when present); bad data is named."""

import gzip
import hashlib
import json
import re
from pathlib import Path

import pytest

from qattn.config import DataConfig, SyntheticConfig
from qattn.data import SYMBOLS, DataError, load_dataset

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def write_jsonl(path: Path, rows, gz=False):
    text = "".join(json.dumps(row) + "\n" for row in rows)
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


def review_files(tiny: list[str], folder: Path) -> tuple[list[dict], Path, Path, list[str]]:
    """48 review rows, the first 40 as ``train.jsonl`` and the rest as ``test.jsonl`` under ``folder``, and the
    ``tiny`` overrides that read them."""
    rows = review_rows(48)
    train = write_jsonl(folder / "train.jsonl", rows[:40])
    test = write_jsonl(folder / "test.jsonl", rows[40:])
    return rows, train, test, [*tiny, "data.source=files", f"data.train_file={train}", f"data.test_file={test}"]


def docs(labels, field="label"):
    return [{"text": f"document {i} about {label}", field: label} for i, label in enumerate(labels)]


def files_config(tmp_path, train, test, dev=None, **kwargs):
    return DataConfig(source="files", name="mine", train_file=str(train), test_file=str(test),
                      dev_file=str(dev) if dev else None, **kwargs)


def test_user_jsonl_with_named_labels_and_carved_dev(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", docs(["pos", "neg"] * 20))
    test = write_jsonl(tmp_path / "test.jsonl.gz", docs(["neg", "pos"]), gz=True)
    data = load_dataset(files_config(tmp_path, train, test, dev_fraction=0.25))
    assert data.label_names == ["neg", "pos"] and data.num_classes == 2
    assert (len(data.train), len(data.dev), len(data.test)) == (30, 10, 2)
    assert sorted(data.dev.labels) == [0] * 5 + [1] * 5  # stratified
    assert set(data.train.texts).isdisjoint(data.dev.texts)
    again = load_dataset(files_config(tmp_path, train, test, dev_fraction=0.25))
    assert again.dev.texts == data.dev.texts  # by seed


def test_user_csv_with_custom_columns_and_integer_labels(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text('body,stars\n"a long, quoted\nreview",1\nshort one,2\nthird,1\nfourth,2\n', encoding="utf-8")
    test = tmp_path / "test.csv"
    test.write_text("body,stars\nx,2\n", encoding="utf-8")
    data = load_dataset(files_config(tmp_path, train, test, dev=test, text_field="body", label_field="stars"))
    assert data.label_names == ["1", "2"]
    assert data.train.texts[0] == "a long, quoted\nreview" and data.train.labels == [0, 1, 0, 1]


def test_subsampling_is_seeded(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", docs(["a", "b"] * 50))
    test = write_jsonl(tmp_path / "test.jsonl", docs(["a", "b"] * 10))
    config = files_config(tmp_path, train, test, max_train_docs=20, max_dev_docs=5, max_test_docs=5)
    first, second = load_dataset(config), load_dataset(config)
    assert (len(first.train), len(first.dev), len(first.test)) == (20, 5, 5)
    assert first.train.texts == second.train.texts


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"train.jsonl is empty: it holds no documents"),
        (b'{"text": "ok", "label": "a"}\n{"text": "no label"}\n', r"train.jsonl:2: missing field 'label' \(fields: text\)"),
        (b'{"text": "ok", "label": "a"}\n{"text": "ok", "label": "a"\n', r"train.jsonl:2: not valid JSON"),
        (b'{"text": "ok", "label": "a"}\n{"text": "caf\xe9", "label": "b"}\n', r"train.jsonl:2: not UTF-8 text \(byte 0xe9\)"),
        (b'{"text": "", "label": "a"}\n', r"train.jsonl:1: empty document \(field 'text' is ''\); remove it, or set data.on_empty = \"skip\""),
        (b'{"text": "x", "label": "a"}\n{"text": "y", "label": null}\n', r"train.jsonl:2: field 'label' is null; give it a value"),
        (b'{"text": 7, "label": "a"}\n', r"train.jsonl:1: field 'text' must be text, got 7"),
        (b'{"text": "x", "label": 1.5}\n', r"train.jsonl:1: label must be an integer or a name, got 1.5"),
        (b'["text", "label"]\n', r"train.jsonl:1: expected a JSON object per line, got list"),
        (b'{"text": "x", "label": "a"}\n{"text": "y", "label": "a"}\n', r"only one class \(a\)"),
    ],
)
def test_bad_user_files_name_file_and_line(tmp_path, content, message):
    train = tmp_path / "train.jsonl"
    train.write_bytes(content)
    test = write_jsonl(tmp_path / "test.jsonl", docs(["a", "b"]))
    with pytest.raises(DataError, match=message):
        load_dataset(files_config(tmp_path, train, test))


@pytest.mark.parametrize("name", ["train.csv", "train.jsonl"])
def test_a_byte_order_mark_is_not_part_of_the_first_field(tmp_path, name):
    train = tmp_path / name
    if name.endswith(".csv"):
        train.write_text("text,label\nfirst doc,a\nsecond doc,b\n", encoding="utf-8-sig")  # as Excel saves CSV
    else:
        train.write_bytes("\ufeff".encode() + write_jsonl(tmp_path / "plain.jsonl", docs(["a", "b"])).read_bytes())
    data = load_dataset(files_config(tmp_path, train, train, dev=train))
    assert data.label_names == ["a", "b"] and not data.train.texts[0].startswith("\ufeff")


def test_labels_mixing_numbers_and_names_are_refused_with_an_example_of_each(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", docs(["neg", "pos"] * 3))
    test = write_jsonl(tmp_path / "test.jsonl", docs(["neg", 1]))
    with pytest.raises(DataError, match=r"labels mix integers and names \(.*test.jsonl:2 has 1, .*train.jsonl:1 has 'neg'\)"):
        load_dataset(files_config(tmp_path, train, test))


def test_empty_documents_are_skipped_and_counted_per_split_when_asked(tmp_path):
    rows = docs(["a", "b"] * 10)
    rows[3]["text"], rows[7]["text"], rows[8]["text"] = "", " \n", None
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    test = tmp_path / "test.csv"
    test.write_text("text,label\nx,a\n,b\ny,b\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train.jsonl:4: empty document .*data.on_empty = \"skip\""):
        load_dataset(files_config(tmp_path, train, test))
    data = load_dataset(files_config(tmp_path, train, test, on_empty="skip"))
    assert data.skipped_empty == {"train": 3, "test": 1}
    assert len(data.train) + len(data.dev) == 17 and data.test.texts == ["x", "y"]
    assert all(text.strip() for text in data.train.texts + data.dev.texts)
    assert load_dataset(files_config(tmp_path, train, test, on_empty="skip", max_train_docs=5)).skipped_empty["train"] == 3


def test_a_file_of_empty_documents_says_so(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [{"text": "", "label": "a"}] * 3)
    with pytest.raises(DataError, match=r"train.jsonl: all 3 documents are empty"):
        load_dataset(files_config(tmp_path, train, train, on_empty="skip"))


def test_classes_must_match_across_splits(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", docs(["neg", "pos"] * 5))
    test = write_jsonl(tmp_path / "test.jsonl", docs(["neg", "neutral"]))
    with pytest.raises(DataError, match=r"test.jsonl:2: label 'neutral' does not occur in the training file .*classes must match"):
        load_dataset(files_config(tmp_path, train, test))


def test_csv_row_with_extra_fields_is_named(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text("text,label\nfine,a\nbroken,b,extra\n")
    with pytest.raises(DataError, match=r"train.csv:3: more fields than the header has \(2\)"):
        load_dataset(files_config(tmp_path, train, train))


def test_a_folder_given_as_a_file_is_named_as_a_folder(tmp_path):
    (tmp_path / "corpus").mkdir()
    test = write_jsonl(tmp_path / "test.jsonl", docs(["a", "b"]))
    with pytest.raises(DataError, match=r"corpus is a folder; name the .jsonl or .csv file"):
        load_dataset(files_config(tmp_path, tmp_path / "corpus", test))


def test_a_missing_relative_file_is_named_by_its_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = DataConfig(source="files", train_file="data/train.jsonl", test_file="data/test.jsonl")
    with pytest.raises(DataError, match=f"^{re.escape(str(tmp_path / 'data' / 'train.jsonl'))} does not exist$"):
        load_dataset(config)


def test_unknown_format_and_missing_file(tmp_path):
    odd = tmp_path / "train.parquet"
    odd.write_text("x")
    with pytest.raises(DataError, match=r"unknown format .parquet; use .jsonl or .csv"):
        load_dataset(files_config(tmp_path, odd, odd))
    with pytest.raises(DataError, match=r"nope.jsonl does not exist"):
        load_dataset(files_config(tmp_path, tmp_path / "nope.jsonl", odd))


def shared_layout(root: Path, name="tiny", train_labels=(0, 1, 2, 0, 1, 2), test_labels=(0, 1), classes=3, dev=None):
    folder = root / name
    folder.mkdir(parents=True)
    card = {"name": name, "num_classes": classes, "label_names": [f"c{i}" for i in range(classes)]}
    (folder / "dataset.json").write_text(json.dumps(card))
    write_jsonl(folder / "train.jsonl.gz", docs(train_labels), gz=True)
    write_jsonl(folder / "test.jsonl.gz", docs(test_labels), gz=True)
    if dev:
        write_jsonl(folder / "dev.jsonl.gz", docs(dev), gz=True)
    return root


def test_shared_layout_with_and_without_dev(tmp_path):
    root = shared_layout(tmp_path, dev=(0, 1, 2))
    data = load_dataset(DataConfig(source="shared", name="tiny", data_dir=str(root)))
    assert data.label_names == ["c0", "c1", "c2"] and (len(data.train), len(data.dev)) == (6, 3)
    root2 = shared_layout(tmp_path / "other")
    data = load_dataset(DataConfig(source="shared", name="tiny", data_dir=str(root2), dev_fraction=0.3))
    assert (len(data.train), len(data.dev)) == (3, 3)


def test_shared_layout_errors(tmp_path, monkeypatch):
    root = shared_layout(tmp_path, train_labels=(0, 1, 3))
    with pytest.raises(DataError, match=r"tiny/train.jsonl.gz:3: label 3 out of range 0..2"):
        load_dataset(DataConfig(source="shared", name="tiny", data_dir=str(root)))
    with pytest.raises(DataError, match=r"no data set 'imbd' in .*; available: tiny"):
        load_dataset(DataConfig(source="shared", name="imbd", data_dir=str(root)))
    with pytest.raises(DataError, match=r"shared data directory .*nowhere not found.*QATTN_DATA_DIR"):
        load_dataset(DataConfig(source="shared", name="tiny", data_dir=str(tmp_path / "nowhere")))
    monkeypatch.setenv("QATTN_DATA_DIR", str(root))
    mismatched = shared_layout(tmp_path / "m", train_labels=(0, 0, 1, 1), test_labels=(2,))
    with pytest.raises(DataError, match=r"classes c2 occur in test but not in train"):
        load_dataset(DataConfig(source="shared", name="tiny", data_dir=str(mismatched)))


def test_synthetic_task_is_seeded_and_its_label_relates_distant_words():
    config = SyntheticConfig(train_docs=60, dev_docs=10, test_docs=10, min_words=40, max_words=80, symbols=5)
    data = load_dataset(DataConfig(source="synthetic", synthetic=config, seed=3))
    assert load_dataset(DataConfig(source="synthetic", synthetic=config, seed=3)).train.texts == data.train.texts
    assert load_dataset(DataConfig(source="synthetic", synthetic=config, seed=4)).train.texts != data.train.texts
    assert data.label_names == SYMBOLS[:5]
    for text, label in zip(data.train.texts, data.train.labels):
        words = text.split()
        assert 40 <= len(words) <= 80
        quarter = len(words) // 4
        colour = {i: w for i, w in enumerate(words) if w in SYMBOLS}
        early = {w for i, w in colour.items() if i < quarter}
        late = {w for i, w in colour.items() if i >= len(words) - quarter}
        assert len(colour) == 4 and len(early) == 2 and len(late) == 2
        assert early & late == {SYMBOLS[label]}
    assert set(data.train.labels) == set(range(5))


@pytest.mark.skipif(not (SHARED / "bbc").is_dir(), reason="../shared/data/bbc is not present on this machine")
def test_real_shared_set_loads():
    data = load_dataset(DataConfig(source="shared", name="bbc", data_dir=str(SHARED)))
    assert data.num_classes == 5 and len(data.test) == 444
    assert len(data.train) + len(data.dev) == 1781


def test_unreadable_inputs_are_named(tmp_path):
    corrupt = tmp_path / "train.jsonl.gz"
    corrupt.write_bytes(b"not gzip at all")
    test = write_jsonl(tmp_path / "test.jsonl", docs(["a", "b"]))
    with pytest.raises(DataError, match=r"train.jsonl.gz: cannot read it"):
        load_dataset(files_config(tmp_path, corrupt, test))
    one_each = write_jsonl(tmp_path / "one.jsonl", docs(["a", "b"]))
    with pytest.raises(DataError, match=r"the dev split is empty"):
        load_dataset(files_config(tmp_path, one_each, test))
    card = tmp_path / "shared" / "broken"
    card.mkdir(parents=True)
    (card / "dataset.json").write_text('{"name": "broken"}')
    with pytest.raises(DataError, match=r"dataset.json: not a data set card with a label_names list"):
        load_dataset(DataConfig(source="shared", name="broken", data_dir=str(tmp_path / "shared")))


def test_a_run_says_how_many_empty_documents_it_skipped_and_logs_them(tiny, tmp_path, capsys):
    import mlflow

    from qattn.config import load_config
    from qattn.experiment import run_experiment
    from tests.conftest import QUICKSTART

    words = [f"w{i}" for i in range(400)]
    rows = [{"text": " ".join(words[(7 * i) % 380 : (7 * i) % 380 + 20]), "label": ["pos", "neg"][i % 2]} for i in range(48)]
    train = write_jsonl(tmp_path / "reviews_train.jsonl", [*rows[:40], {"text": "", "label": "pos"}, {"text": " ", "label": "neg"}])
    test = write_jsonl(tmp_path / "reviews_test.jsonl", [*rows[40:], {"text": None, "label": "pos"}])
    config = load_config(QUICKSTART, [*tiny, "data.source=files", f"data.train_file={train}", f"data.test_file={test}",
                                      "data.on_empty=skip", "train.epochs=1"])
    result = run_experiment(config)
    assert "skipped 3 empty documents (2 in train, 1 in test): data.on_empty = 'skip'" in capsys.readouterr().err
    params = mlflow.get_run(result.run_id).data.params
    assert result.run_name.startswith("reviews-")  # named after the training file
    assert [params[f"data.skipped_empty.{split}"] for split in ("train", "dev", "test")] == ["2", "0", "1"]


# -- identity by content, document ids, overlap between splits ------------------------------------------


def test_documents_carry_ids_from_their_record_else_none(tmp_path):
    """A document without an id field has none (paired tests know it by its text), whatever its line."""
    from qattn.data import Split

    root = shared_layout(tmp_path)
    rows = [{**row, "id": f"tiny-{i}"} for i, row in enumerate(docs((0, 1)))]
    write_jsonl(root / "tiny" / "test.jsonl.gz", rows, gz=True)
    data = load_dataset(DataConfig(source="shared", name="tiny", data_dir=str(root)))
    assert data.test.ids == ["tiny-0", "tiny-1"] and data.train.ids + data.dev.ids == [None] * 6
    assert data.overlap["duplicate_ids"] == 0  # documents without an id are no duplicates of each other
    assert Split(["a", "b"], [0, 1]).ids == [None, None] and Split(["a", "b"], [0, 1]).subset([1]).ids == [None]
    synthetic = load_dataset(DataConfig(synthetic=SyntheticConfig(train_docs=10, dev_docs=10, test_docs=10, min_words=40, max_words=60)))
    assert synthetic.test.ids == [f"test-{i}" for i in range(10)]


def test_a_data_set_is_identified_by_its_content_not_its_path(tmp_path):
    from qattn.data import data_hashes

    train = write_jsonl(tmp_path / "train.jsonl", docs(["pos", "neg"] * 20))
    test = write_jsonl(tmp_path / "test.jsonl", docs(["neg", "pos"]))
    config = files_config(tmp_path, train, test)
    before = load_dataset(config).hashes
    assert before == data_hashes(config) and set(before) == {"train", "test"} and len(before["train"]) == 16
    (tmp_path / "copy").mkdir()
    copy = write_jsonl(tmp_path / "copy" / "train.jsonl", docs(["pos", "neg"] * 20))
    assert data_hashes(files_config(tmp_path, copy, test)) == before  # the same bytes elsewhere: the same data
    write_jsonl(train, docs(["neg", "pos"] * 20))  # the same path, the labels changed
    after = data_hashes(config)
    assert after["train"] != before["train"] and after["test"] == before["test"]
    root = shared_layout(tmp_path / "shared", dev=(0, 1, 2))
    assert set(data_hashes(DataConfig(source="shared", name="tiny", data_dir=str(root)))) == {"card", "train", "dev", "test"}
    synthetic = DataConfig(synthetic=SyntheticConfig(train_docs=10, dev_docs=10, test_docs=10, min_words=40, max_words=60))
    assert data_hashes(synthetic) == load_dataset(synthetic).hashes != data_hashes(synthetic.model_copy(update={"seed": 1}))


def test_test_documents_that_are_training_documents_warn_stop_or_are_dropped(tmp_path, capsys):
    rows = docs(["pos", "neg"] * 20)
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    seen = [*rows[:6], {"text": "  " + rows[6]["text"] + "\n", "label": "pos"}]  # white space around a text: the same text
    test = write_jsonl(tmp_path / "test.jsonl", [*seen, {"text": "new one", "label": "pos"}, {"text": "new two", "label": "neg"}])
    dev = write_jsonl(tmp_path / "dev.jsonl", [{"text": f"held out {i}", "label": label} for i, label in enumerate(["pos", "neg"])])
    data = load_dataset(files_config(tmp_path, train, test, dev))  # warn, the default
    assert data.overlap == {"test_in_train": 7, "dev_in_train": 0, "test_in_dev": 0, "duplicate_ids": 0, "dropped": 0}
    assert len(data.test) == 9
    assert "qattn: mine: 7 of 9 test documents are also in train (the same text); data.on_overlap" in capsys.readouterr().err
    with pytest.raises(DataError, match=r"mine: 7 of 9 test documents are also in train .*Remove them from the test split \(and dev\), "
                                        r"or set data.on_overlap = \"drop\""):
        load_dataset(files_config(tmp_path, train, test, dev, on_overlap="error"))
    dropped = load_dataset(files_config(tmp_path, train, test, dev, on_overlap="drop"))
    assert dropped.test.texts == ["new one", "new two"] and dropped.test.ids == [None, None]
    assert dropped.overlap["dropped"] == 7 and dropped.overlap["test_in_train"] == 7
    all_seen = write_jsonl(tmp_path / "seen.jsonl", rows[:30])  # the test file of 30 training documents
    with pytest.raises(DataError, match=r"the test split is empty \(30 documents dropped: also in train or dev\); "
                                        r"give it documents that are not in train or dev"):
        load_dataset(files_config(tmp_path, train, all_seen, dev, on_overlap="drop"))


def test_dev_overlap_and_duplicate_ids_are_counted(tmp_path, capsys):
    root = shared_layout(tmp_path, dev=(0, 1, 2))  # docs() gives dev the texts of train's first three documents
    data = load_dataset(DataConfig(source="shared", name="tiny", data_dir=str(root)))
    assert (data.overlap["dev_in_train"], data.overlap["test_in_train"], data.overlap["test_in_dev"]) == (3, 2, 2)
    rows = docs((0, 1, 2, 0, 1, 2))
    write_jsonl(root / "tiny" / "train.jsonl.gz", [{**row, "id": "same"} for row in rows], gz=True)
    (root / "tiny" / "dev.jsonl.gz").unlink()
    carved = load_dataset(DataConfig(source="shared", name="tiny", data_dir=str(root)))  # dev carved from train
    assert carved.overlap["dev_in_train"] == 0 and carved.overlap["duplicate_ids"] == 4
    assert "4 duplicate document ids within a split (train 2, dev 2)" in capsys.readouterr().err


@pytest.mark.skipif(not (SHARED / "bbc").is_dir(), reason="../shared/data/bbc is not present on this machine")
def test_shared_overlap_counts_are_the_documented_ones():
    data = load_dataset(DataConfig(source="shared", name="bbc", data_dir=str(SHARED)))
    table = (Path(__file__).resolve().parents[1] / "docs" / "data.md").read_text()
    counts = data.overlap
    assert f"| bbc | {counts['test_in_train']} | {counts['dev_in_train']} | {counts['test_in_dev']} |" in table


# -- data identity in runs, grids and reports ------------------------------------------------------------


def review_rows(count: int, start: int = 0) -> list[dict]:
    """Documents of 20 words out of 400, labels alternating pos / neg: a bag of words learns them in a second."""
    words = [f"w{i}" for i in range(400)]
    return [{"text": " ".join(words[(7 * i) % 380: (7 * i) % 380 + 20]), "label": ["pos", "neg"][i % 2]}
            for i in range(start, start + count)]


def test_a_run_logs_its_data_hashes_and_overlap(tiny, tmp_path):
    import mlflow

    from qattn.config import load_config
    from qattn.experiment import run_experiment
    from tests.conftest import QUICKSTART

    rows = review_rows(40)
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    test = write_jsonl(tmp_path / "test.jsonl", rows[:30])  # the test file of 30 training documents
    config = load_config(QUICKSTART, [*tiny, "data.source=files", f"data.train_file={train}", f"data.test_file={test}",
                                      "model.attention=nbsvm", "model.bow.c_grid=[1.0]"])
    params = mlflow.get_run(run_experiment(config).run_id).data.params
    assert params["data.sha256.train"] == hashlib.sha256(train.read_bytes()).hexdigest()[:16]
    assert params["data.sha256.test"] == hashlib.sha256(test.read_bytes()).hexdigest()[:16]
    assert int(params["data.overlap.test_in_train"]) + int(params["data.overlap.test_in_dev"]) == 30


def test_grids_on_a_file_whose_labels_changed_neither_resume_nor_share_a_report(tiny, tmp_path):
    from qattn.config import load_config
    from qattn.grid import run_grid
    from qattn.report import ReportError, write_report
    from tests.conftest import QUICKSTART

    rows, train, test, files = review_files(tiny, tmp_path)
    base = [*files, "model.bow.c_grid=[1.0]", "compare.seeds=[0]"]
    nbsvm = load_config(QUICKSTART, [*base, "compare.kinds=['nbsvm']"])
    first, _ = run_grid(nbsvm, "first", echo=lambda line: None)
    write_jsonl(train, [{**row, "label": {"pos": "neg", "neg": "pos"}[row["label"]]} for row in rows[:40]])  # same path
    with pytest.raises(DataError, match=rf"grid parent run {first} was run on other data: train "
                                        r"\(data.sha256.train\) was [0-9a-f]{16}, is now [0-9a-f]{16}"):
        run_grid(nbsvm, "first again", echo=lambda line: None)
    second, _ = run_grid(load_config(QUICKSTART, [*base, "compare.kinds=['tfidf-lr']"]), "second", echo=lambda line: None)
    with pytest.raises(ReportError, match=r"trained on different data:\n  - train \(data.sha256.train\): [0-9a-f]{16} "
                                          rf"in grid {first}; [0-9a-f]{{16}} in grid {second}"):
        write_report([first, second], tmp_path / "results")
    assert not (tmp_path / "results").exists()


def test_resume_refuses_data_that_changed_since_the_checkpoint(tiny, tmp_path):
    from qattn.config import load_config
    from qattn.experiment import run_experiment
    from tests.conftest import QUICKSTART

    rows, train, test, files = review_files(tiny, tmp_path)
    config = load_config(QUICKSTART, [*files, "train.epochs=1", "model.attention=classical"])
    result = run_experiment(config)
    write_jsonl(test, rows[40:46])
    with pytest.raises(DataError, match=rf"MLflow run {result.run_id} \(checkpoint .*\) was run on other data: test \(data.sha256.test\) "
                                        r"was [0-9a-f]{16}, is now [0-9a-f]{16}.*--restart"):
        run_experiment(config, resume=True)


def test_a_grid_in_another_experiment_does_not_adopt_a_cell_trained_on_other_data(tiny, tmp_path):
    """The refusal above says: run the grid on the new data in another experiment (and output folder). Doing
    that with the same output folder finds the old data's checkpoint where the cell's folder is (a folder's
    name is its config's hash): it is named, not adopted as this grid's."""
    from qattn.config import load_config
    from qattn.experiment import ExperimentError
    from qattn.grid import run_grid
    from tests.conftest import QUICKSTART

    rows, train, test, files = review_files(tiny, tmp_path)
    base = [*files, "compare.seeds=[0]", "compare.kinds=['dot']", "train.epochs=1"]
    first, _ = run_grid(load_config(QUICKSTART, base), "first", echo=lambda line: None)
    write_jsonl(train, [{**row, "label": {"pos": "neg", "neg": "pos"}[row["label"]]} for row in rows[:40]])
    elsewhere = load_config(QUICKSTART, [*base, "tracking.experiment=relabelled"])
    with pytest.raises(ExperimentError, match=r"the checkpoint in .* a cell of this grid under parent run "
                                              rf"{first}\) was run on other data: train"):
        run_grid(elsewhere, "second", echo=lambda line: None)


def test_evaluate_on_data_changed_since_training_says_the_figures_are_not_the_runs(tiny, tmp_path):
    from click.testing import CliRunner

    from qattn.cli import main
    from qattn.config import load_config
    from qattn.experiment import run_experiment
    from tests.conftest import QUICKSTART

    rows, train, test, files = review_files(tiny, tmp_path)
    config = load_config(QUICKSTART, [*files, "train.epochs=1", "model.attention=classical"])
    run_id = run_experiment(config).run_id
    uri = ["--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    unchanged = CliRunner().invoke(main, ["evaluate", run_id, *uri])
    assert unchanged.exit_code == 0 and "other data" not in unchanged.stderr, unchanged.output
    before = hashlib.sha256(test.read_bytes()).hexdigest()[:16]
    write_jsonl(test, [{**rows[40], "label": "neg" if rows[40]["label"] == "pos" else "pos"}, *rows[41:]])
    now = hashlib.sha256(test.read_bytes()).hexdigest()[:16]
    best = next((tmp_path / "runs").glob("*/best.pt"))
    for target in (run_id, str(best)):
        changed = CliRunner().invoke(main, ["evaluate", target, *uri])
        assert changed.exit_code == 0 and "accuracy" in changed.stdout, changed.output
        assert re.search(rf"{re.escape(target)}.* was trained and tested on other data: test \(data.sha256.test\) was "
                         rf"{before}, is now {now}.*the data as it is now, not the data the run was trained", changed.stderr), changed.stderr


def test_grids_on_copies_of_the_same_files_at_two_paths_share_a_report(tiny, tmp_path):
    from qattn.config import load_config
    from qattn.grid import run_grid
    from qattn.report import write_report
    from tests.conftest import QUICKSTART

    rows = review_rows(48)
    grids = []
    for copy, kind in (("one", "nbsvm"), ("two", "tfidf-lr")):
        (tmp_path / copy).mkdir()
        train = write_jsonl(tmp_path / copy / "train.jsonl", rows[:40])
        test = write_jsonl(tmp_path / copy / "test.jsonl", rows[40:])
        config = load_config(QUICKSTART, [*tiny, "data.source=files", f"data.train_file={train}",
                                          f"data.test_file={test}", "model.bow.c_grid=[1.0]", "compare.seeds=[0]",
                                          f"compare.kinds=['{kind}']"])
        grids.append(run_grid(config, copy, echo=lambda line: None)[0])
    report = write_report(grids, tmp_path / "results").read_text()
    assert "NBSVM" in report and "TF-IDF" in report, report[:600]
