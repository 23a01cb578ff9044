"""The baseline ladder: bag-of-words kinds, uniform attention, classical heads at the quantum width,
the paired statistics and a report that holds them all."""

import json
import math
import re
from pathlib import Path

import mlflow
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from click.testing import CliRunner
from sklearn.svm import LinearSVC

from qattn.attention import ClassicalMultiheadAttention
from qattn.baselines import NBSVM, make_model
from qattn.cli import main
from qattn.config import BagOfWordsConfig, DataConfig, load_config
from qattn.experiment import ExperimentError, run_experiment
from qattn.grid import cells
from qattn.stats import bootstrap_difference, mcnemar, seed_difference
from qattn.tracking import PREDICTIONS

QUICKSTART = Path(__file__).resolve().parents[1] / "experiments" / "quickstart.toml"


# -- bag of words ---------------------------------------------------------------------------------------


def test_nbsvm_is_wang_and_mannings_recipe():
    """r from smoothed binarised counts, a linear SVM on x * r, weights interpolated with their mean magnitude."""
    counts = sp.csr_matrix(np.array([[2, 1, 0, 0], [1, 0, 0, 1], [0, 0, 3, 1], [0, 1, 1, 0], [1, 1, 0, 0], [0, 0, 1, 1]]))
    y = np.array([1, 1, 0, 0, 1, 0])
    model = NBSVM(C=1.0, beta=0.25).fit(counts, y)
    x = (counts.toarray() > 0).astype(float)
    p, q = 1 + x[y == 1].sum(0), 1 + x[y == 0].sum(0)  # alpha = 1
    r = np.log(p / p.sum()) - np.log(q / q.sum())
    svm = LinearSVC(C=1.0, max_iter=5000).fit(x * r, y == 1)
    w = svm.coef_.ravel()
    expected = x @ (r * (0.75 * np.abs(w).mean() + 0.25 * w)) + svm.intercept_[0]
    np.testing.assert_allclose(model.decision_function(counts), expected, rtol=1e-6)
    assert model.predict(counts).tolist() == y.tolist()


def test_bag_of_words_kinds_separate_three_topics():
    texts = [f"{word} {word} filler text number {i}" for i, word in enumerate(["alpha", "beta", "gamma"] * 8)]
    labels = [0, 1, 2] * 8
    for kind in ("tfidf-lr", "nbsvm"):
        model = make_model(kind, BagOfWordsConfig(), C=10.0).fit(texts, labels)
        assert model.predict(["gamma gamma", "alpha text", "beta"]).tolist() == [2, 0, 1], kind


@pytest.mark.parametrize("kind", ["tfidf-lr", "nbsvm"])
def test_a_bag_of_words_run_is_an_mlflow_run_with_predictions(tiny, kind):
    config = load_config(QUICKSTART, [*tiny, f"model.attention={kind}", "model.bow.c_grid=[0.1, 10.0]"])
    result = run_experiment(config)
    assert result.run_name == f"synthetic-{kind}-s0"
    run = mlflow.get_run(result.run_id)
    assert run.data.metrics["test/accuracy"] == pytest.approx(result.test.accuracy)
    assert run.data.metrics["bow/C"] in (0.1, 10.0) and run.data.params["model.attention"] == kind
    answers = json.loads(Path(mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path=PREDICTIONS)).read_text())
    assert len(answers["labels"]) == 16 and np.mean(np.equal(answers["labels"], answers["predictions"])) == result.test.accuracy
    searched = mlflow.MlflowClient().get_metric_history(result.run_id, "search/dev_macro_f1")
    chosen = max(searched, key=lambda m: (m.value, -m.step))  # the first of equals
    assert run.data.metrics["dev/macro_f1"] == chosen.value and [m.step for m in searched] == [1, 2]
    with pytest.raises(ExperimentError, match="keeps no checkpoint"):
        run_experiment(config, resume=True)


def train_cli(overrides: list[str]):
    return CliRunner().invoke(main, ["train", str(QUICKSTART), *[a for o in overrides for a in ("--set", o)]])


def runs_and_run_folders(tmp_path: Path) -> tuple[list, list[Path]]:
    """Every run in the tiny store (if it was made), and every folder under its ``train.output_dir``."""
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()] if (tmp_path / "mlflow.db").exists() else []
    runs = client.search_runs(experiments) if experiments else []
    return runs, [p for p in (tmp_path / "runs").glob("*") if p.is_dir()]


@pytest.mark.parametrize("kind, min_df", [("tfidf-lr", 60), ("nbsvm", 1000)])  # above every n-gram's count; above all
def test_a_min_df_that_keeps_no_ngram_is_named_before_any_run_starts(tiny, tmp_path, kind, min_df):
    out = train_cli([*tiny, f"model.attention={kind}", f"model.bow.min_df={min_df}"])
    assert out.exit_code == 1 and out.output.count("Error") == 1 and out.output.endswith(
        f"\nError: model.bow.min_df = {min_df} keeps no word n-gram: none occurs in {min_df} or more of the 64 "
        "training documents (the most frequent in 50); set model.bow.min_df to 50 or less\n"
    ), out.output
    assert runs_and_run_folders(tmp_path) == ([], [])  # no FAILED run, no folder


@pytest.mark.parametrize("kind", ["tfidf-lr", "classical"])
def test_a_training_subsample_of_one_class_is_refused_before_any_run_starts(tiny, tmp_path, kind):
    out = train_cli([*tiny, f"model.attention={kind}", "data.max_train_docs=1"])
    assert out.exit_code == 1 and out.output.count("Error") == 1, out.output
    assert re.search(
        r"\nError: synthetic: data.max_train_docs = 1 leaves the training split one class \((\w+): 1 document; of the "
        r"64 before the cut: (\w+ \d+, ){5}\w+ \d+\); a classifier needs two or more: raise data.max_train_docs "
        r"\(or change data.seed\)\n\Z", out.output,
    ), out.output
    assert runs_and_run_folders(tmp_path) == ([], [])


def test_training_data_of_one_class_and_documents_without_a_word_are_named(tmp_path):
    from qattn.baselines import select_and_fit
    from qattn.data import DataError, Split, load_dataset
    from tests.test_data import docs, write_jsonl

    folder = tmp_path / "shared" / "positive"
    folder.mkdir(parents=True)
    (folder / "dataset.json").write_text('{"label_names": ["neg", "pos"]}')
    for split in ("train", "dev", "test"):
        write_jsonl(folder / f"{split}.jsonl.gz", docs([1, 1, 1]), gz=True)
    with pytest.raises(DataError, match=r"^positive: the training split holds one class only \(pos: 3 documents\); a "
                                        "classifier needs two or more: give it documents of another class$"):
        load_dataset(DataConfig(source="shared", name="positive", data_dir=str(tmp_path / "shared")))

    letters = Split(["a b", "c d"], [0, 1])  # scikit-learn counts words of two letters or more
    with pytest.raises(DataError, match=r"^the 2 training documents hold no word model.bow.token_pattern \(.*\) matches"):
        select_and_fit("tfidf-lr", BagOfWordsConfig(), letters, letters, 2)


def test_a_bag_of_words_run_says_how_many_empty_documents_it_skipped_and_logs_them(tiny, tmp_path, capsys):
    from tests.test_data import write_jsonl

    rows = [{"text": f"{['good', 'bad'][i % 2]} film number {i}", "label": ["pos", "neg"][i % 2]} for i in range(24)]
    empty = [{"text": "", "label": "pos"}, {"text": " ", "label": "neg"}]
    train = write_jsonl(tmp_path / "reviews_train.jsonl", [*rows[:20], *empty])
    test = write_jsonl(tmp_path / "reviews_test.jsonl", [*rows[20:], {"text": None, "label": "pos"}])
    config = load_config(QUICKSTART, [*tiny, "model.attention=tfidf-lr", "data.source=files",
                                      f"data.train_file={train}", f"data.test_file={test}", "data.on_empty=skip"])
    result = run_experiment(config)
    assert "skipped 3 empty documents (2 in train, 1 in test): data.on_empty = 'skip'" in capsys.readouterr().err
    params = mlflow.get_run(result.run_id).data.params
    assert [params[f"data.skipped_empty.{split}"] for split in ("train", "dev", "test")] == ["2", "0", "1"]


# -- uniform attention and classical heads at the quantum width -----------------------------------------


def test_uniform_attention_weighs_every_unmasked_key_the_same():
    attention = ClassicalMultiheadAttention(8, 2, kernel="uniform")
    x = torch.randn(3, 5, 8)
    padding = torch.tensor([[False] * 5, [False, False, False, True, True], [False, True, False, True, True]])
    out, weights = attention(x, x, x, key_padding_mask=padding, average_attn_weights=False)
    allowed = (~padding).float()
    expected = (allowed / allowed.sum(-1, keepdim=True))[:, None, None, :].expand(3, 2, 5, 5)
    assert torch.equal(weights, expected)  # exactly: the softmax of equal scores
    values = attention.v_proj(x).view(3, 5, 2, 4)  # the output is the masked mean of the values
    mean = torch.einsum("bs,bshd->bhd", expected[:, 0, 0], values).reshape(3, 1, 8)
    torch.testing.assert_close(out, attention.out_proj(mean).expand(3, 5, 8))


def test_dot_narrow_cells_are_classical_heads_at_the_qubit_count():
    config = load_config(QUICKSTART, ["compare.kinds=['dot', 'dot-narrow', 'uniform', 'nbsvm']", "compare.n_qubits=[2, 3]",
                                      "compare.seeds=[0]"])
    grid = cells(config)
    assert [(cell.kind, cell.n_qubits) for cell in grid] == [
        ("dot", None), ("dot-narrow", 2), ("dot-narrow", 3), ("uniform", None), ("nbsvm", None)]
    narrow = grid[2].config(config).model
    assert narrow.attention == "classical" and narrow.qk_dim == 3
    layer = ClassicalMultiheadAttention(32, 2, qk_dim=3)
    assert layer.q_proj.out_features == layer.k_proj.out_features == 6 and layer.v_proj.out_features == 32
    assert [cell.config(config).model.attention for cell in grid] == ["classical", "classical", "classical", "uniform", "nbsvm"]


# -- statistics -----------------------------------------------------------------------------------------


def test_statistics_agree_with_hand_computed_examples():
    # differences 1, 2, 3: mean 2, sd 1, t(0.975, 2 dof) = 4.302653; 2 +- 4.302653 / sqrt(3)
    difference = seed_difference([0.9, 0.8, 0.7], [-0.1, -1.2, -2.3])
    half = 4.302653 / math.sqrt(3)
    assert (difference.mean, difference.low, difference.high) == pytest.approx((2, 2 - half, 2 + half), abs=1e-6)
    assert seed_difference([0.9, 0.8], [0.7, 0.6]).low == pytest.approx(0.2)  # the same difference on every seed
    assert seed_difference([0.9], [0.8]) is None
    # five documents only A gets right, one only B: exact two-sided p = 2 * P(X <= 1 | n=6) = 2 * 7 / 64
    a = [True] * 5 + [False] + [True] * 3 + [False] * 2
    b = [False] * 5 + [True] + [True] * 3 + [False] * 2
    test = mcnemar(a, b)
    assert (test.a_only, test.b_only, test.p_value) == (5, 1, pytest.approx(14 / 64))
    boot = bootstrap_difference(a, b)
    assert boot.mean == pytest.approx(4 / 11) and boot.low < 4 / 11 < boot.high and boot.high <= 9 / 11
    assert mcnemar(a, a).p_value == 1.0 and bootstrap_difference(a, a).high == 0.0


# -- a report with the ladder ---------------------------------------------------------------------------


def test_a_grid_with_the_ladder_reports_every_rung_and_every_pair(tiny, tmp_path):
    overrides = [*tiny, "compare.kinds=['dot', 'dot-narrow', 'uniform', 'tfidf-lr', 'nbsvm']", "compare.seeds=[0, 1]",
                 "train.epochs=1", "model.bow.c_grid=[1.0]", "tracking.attention_maps=0"]
    runner = CliRunner()
    out = runner.invoke(main, ["compare", str(QUICKSTART), *[f"--set={o}" for o in overrides]])
    assert out.exit_code == 0, out.output
    results = tmp_path / "results"
    out = runner.invoke(main, ["report", "quickstart", "--results", str(results)])
    assert out.exit_code == 0, out.output
    report = (results / "quickstart.md").read_text()
    rows = ["TF-IDF + logistic regression", "NBSVM (Wang & Manning)", "uniform attention (no scores)",
            "classical dot, 2 features per head", "classical dot"]
    positions = [report.index(f"| {row} | 2 |") for row in rows]
    assert positions == sorted(positions)  # the ladder from the bottom
    client = mlflow.MlflowClient()
    runs = {run.info.run_name: run for run in client.search_runs([client.get_experiment_by_name("quickstart").experiment_id])}

    def right(name):
        answers = json.loads(Path(client.download_artifacts(runs[name].info.run_id, PREDICTIONS, str(tmp_path))).read_text())
        return np.equal(answers["labels"], answers["predictions"])

    a, b = right("synthetic-nbsvm-s0"), right("synthetic-classical-dot-h2-s0")
    test = mcnemar(a, b)
    accuracy = lambda name: runs[name].data.metrics["test/accuracy"]  # noqa: E731
    differences = [accuracy(f"synthetic-nbsvm-s{s}") - accuracy(f"synthetic-classical-dot-h2-s{s}") for s in (0, 1)]
    line = next(line for line in report.splitlines() if line.startswith("| NBSVM (Wang & Manning) | classical dot | 2 |"))
    assert f"| {100 * np.mean(differences):+.2f} |" in line and f"| 0 | {test.a_only} / {test.b_only} | {test.p_value:.3g} |" in line
    assert len([line for line in report.splitlines() if line.startswith("| ") and " | 2 | " in line]) >= 10  # 5 rows, 10 pairs
    out = runner.invoke(main, ["paired", runs["synthetic-nbsvm-s0"].info.run_id, runs["synthetic-classical-dot-h2-s0"].info.run_id])
    assert out.exit_code == 0 and f"only A / only B gets right: {test.a_only} / {test.b_only}; McNemar exact p {test.p_value:.3g}" in out.output


@pytest.mark.parametrize("override, message", [
    ("model.bow.c_grid=[1.0, 0]", "model.bow.c_grid: every C in c_grid must be positive, got [1.0, 0.0]"),
    ("model.bow.ngrams=4", "model.bow.ngrams: Input should be less than or equal to 3"),
    ("model.qk_dim=0", "model.qk_dim: Input should be greater than or equal to 1"),
    ("model.attention=bow", "model.attention: unknown attention kind 'bow'; valid attention kinds: annealing, classical, nbsvm, none, probe, quantum, tfidf-lr, uniform"),
])
def test_bad_baseline_settings_are_named(override, message):
    from qattn.config import ConfigError

    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_config(QUICKSTART, [override])


def test_baseline_settings_leave_other_kinds_identities_alone():
    from qattn.identity import grid_id

    base = load_config(QUICKSTART)
    assert grid_id(load_config(QUICKSTART, ["model.bow.ngrams=3"])) == grid_id(base)  # only bag-of-words kinds read it
    nbsvm = load_config(QUICKSTART, ["model.attention=nbsvm"])
    assert grid_id(load_config(QUICKSTART, ["model.attention=nbsvm", "model.bow.ngrams=3"])) != grid_id(nbsvm)
    with_nbsvm = load_config(QUICKSTART, ["compare.kinds=['dot', 'nbsvm']"])  # a grid holding a kind that reads it
    assert grid_id(load_config(QUICKSTART, ["compare.kinds=['dot', 'nbsvm']", "model.bow.ngrams=3"])) != grid_id(with_nbsvm)


# -- pairing runs by test document ----------------------------------------------------------------------


def test_runs_tested_on_other_texts_with_the_same_labels_are_not_paired(tiny, tmp_path):
    """The issue's case: two test files, other texts, the same label sequence. Documents without an id are known
    by their text: the same file in another order, as CSV (whose line numbers count the header), pairs; a file
    with one text changed does not."""
    import csv

    from tests.test_data import review_rows, write_jsonl

    rows = review_rows(56)
    train = write_jsonl(tmp_path / "train.jsonl", rows[:40])
    csv_test = tmp_path / "test-a-reordered.csv"
    with csv_test.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(rows[44:48] + rows[40:44])
    changed = [*rows[40:47], {**rows[47], "text": rows[47]["text"] + " changed"}]
    tests = {"a": write_jsonl(tmp_path / "test-a.jsonl", rows[40:48]), "b": write_jsonl(tmp_path / "test-b.jsonl", rows[48:56]),
             "a, reordered CSV": csv_test, "a, one text changed": write_jsonl(tmp_path / "test-changed.jsonl", changed)}
    runs = {}
    for name, test in tests.items():
        config = load_config(QUICKSTART, [*tiny, "data.source=files", f"data.train_file={train}", f"data.test_file={test}",
                                          "model.attention=nbsvm", "model.bow.c_grid=[1.0]"])
        runs[name] = run_experiment(config).run_id
    assert [row["label"] for row in rows[40:48]] == [row["label"] for row in rows[48:56]]
    runner = CliRunner()
    out = runner.invoke(main, ["paired", runs["a"], runs["b"]])
    assert out.exit_code == 1, out.output
    assert (f"Error: cannot pair {runs['a']} (A) with {runs['b']} (B): different test documents: 8 only in A, 8 only in B; "
            "the paired tests need two runs tested on the same documents") in out.output
    answers = json.loads(Path(mlflow.artifacts.download_artifacts(run_id=runs["a"], artifact_path=PREDICTIONS)).read_text())
    assert answers["ids"] == [None] * 8 and len(answers["sha256"][0]) == 16  # no id field: no id, the text tells
    out = runner.invoke(main, ["paired", runs["a"], runs["a, reordered CSV"]])
    assert out.exit_code == 0 and "only A / only B gets right: 0 / 0; McNemar exact p 1" in out.output, out.output
    out = runner.invoke(main, ["paired", runs["a"], runs["a, one text changed"]])
    assert out.exit_code == 1 and "different test documents: 1 only in A, 1 only in B;" in out.output, out.output


def test_paired_tests_match_documents_by_id_and_text_whatever_their_order():
    from qattn.report import Answers, over_documents

    a = Answers(labels=[0, 1, 0, 1], predictions=[0, 1, 1, 1], ids=["a", "b", "c", "d"], sha256=["1", "2", "3", "4"])
    b = Answers(labels=[1, 0, 0, 1], predictions=[1, 1, 0, 0], ids=["d", "c", "a", "b"], sha256=["4", "3", "1", "2"])
    aligned = Answers(labels=[0, 1, 0, 1], predictions=[0, 0, 1, 1], ids=["a", "b", "c", "d"], sha256=["1", "2", "3", "4"])
    assert over_documents(a, b) == over_documents(a, aligned)
    assert over_documents(a, b)[0] == "1 / 0"  # document b: only A gets it right
    other = Answers(labels=[0, 1, 0], predictions=[0, 1, 0], ids=["a", "b", "e"], sha256=["1", "9", "5"])
    assert over_documents(a, other)[0] == ("n/a (different test documents: 2 only in A, 1 only in B, "
                                           "1 with the same id and another text)")
    relabelled = Answers(labels=[1, 1, 0, 1], predictions=[0, 1, 1, 1], ids=a.ids, sha256=a.sha256)
    assert over_documents(a, relabelled)[0] == "n/a (different test documents: 1 with the same text and another label)"
    old = Answers(labels=a.labels, predictions=a.predictions, ids=None, sha256=None)
    assert over_documents(a, old)[0] == "n/a (B was logged before qattn recorded document ids; rerun it)"
    # documents without an id (None) are known by their text: reordered they pair, a repeated text k-th with k-th
    no_ids = Answers(labels=[0, 1, 0, 1], predictions=[0, 1, 1, 1], ids=[None] * 4, sha256=["1", "2", "1", "4"])
    moved = Answers(labels=[1, 0, 0, 1], predictions=[1, 0, 1, 0], ids=[None] * 4, sha256=["4", "1", "1", "2"])
    assert over_documents(no_ids, moved)[0] == "1 / 0"  # the text "2": only A gets it right
    one_changed = Answers(labels=no_ids.labels, predictions=no_ids.predictions, ids=[None] * 4, sha256=["1", "2", "1", "5"])
    assert over_documents(no_ids, one_changed)[0] == "n/a (different test documents: 1 only in A, 1 only in B)"
    lines = Answers(labels=no_ids.labels, predictions=no_ids.predictions, ids=[f"line {n}" for n in range(1, 5)],
                    sha256=no_ids.sha256)  # logged when a document without an id had the id "line N"
    assert over_documents(lines, no_ids)[0] == "n/a (different test documents: 4 with the same text and another id)"


def test_evaluate_names_a_bag_of_words_run_as_one_without_a_checkpoint(tiny, tmp_path):
    run_id = run_experiment(load_config(QUICKSTART, [*tiny, "model.attention=tfidf-lr", "model.bow.c_grid=[1.0]"])).run_id
    result = CliRunner().invoke(main, ["evaluate", run_id, "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"])
    assert result.exit_code == 1 and "neither" not in result.stderr, result.output
    assert (f"Error: run {run_id} is a tfidf-lr baseline, no network: it keeps no checkpoint to evaluate; its "
            "test figures are in the run's metrics") in result.stderr
