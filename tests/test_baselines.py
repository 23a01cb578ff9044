"""The baseline ladder: bag-of-words kinds, uniform attention, classical heads at the quantum width,
the paired statistics and a report that holds them all."""

import json
import math
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
from qattn.config import BagOfWordsConfig, load_config
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
    ("model.attention=bow", "model.attention: unknown attention kind 'bow'; valid attention kinds: annealing, classical, nbsvm, quantum, tfidf-lr, uniform"),
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
