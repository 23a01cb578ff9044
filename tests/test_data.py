"""Data loaders against fixture files written here (and the shared sets when present); bad data is named."""

import gzip
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
