"""`qattn compare` and `qattn report` against a real MLflow server, an interrupted grid included."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import mlflow
import pytest
import torch
from click.testing import CliRunner
from mlflow.entities import Metric, Param

from qattn.attention import AttentionShell
from qattn.cli import main
from qattn.config import ConfigError, flatten, load_config
from qattn.data import load_dataset
from qattn.experiment import folder_lock
from qattn.grid import COMMAND_TAG, GRID_TAG, NAME_TAG, Cell, cells, run_grid
from qattn.identity import checkpoint_dir, grid_id
from qattn.model import build_model
from qattn.registry import quantum_kernels
from tests.conftest import QUICKSTART, tiny_overrides

EXPERIMENTS = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.toml"))


def cli(*args):
    return [sys.executable, "-m", "qattn.cli", *args]


def with_sets(overrides):
    return [arg for override in overrides for arg in ("--set", override)]


def test_an_interrupted_grid_resumes_and_the_report_reads_mlflow(mlflow_server, tiny, tmp_path):
    overrides = tiny + [
        f"tracking.uri={mlflow_server}", "tracking.experiment=grid-test", "compare.kinds=['dot', 'fidelity']",
        "data.synthetic.train_docs=160", "train.checkpoint_every=2", "train.threads=1",
    ]
    command = cli("compare", str(QUICKSTART), *with_sets(overrides), "--seeds", "2")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not list((tmp_path / "runs").glob("synthetic-classical-dot-h2-s1-*/last.pt")):  # the second cell
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "the second cell wrote no checkpoint"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    (checkpoint,) = (tmp_path / "runs").glob("synthetic-classical-dot-h2-s1-*/last.pt")
    interrupted_run = torch.load(checkpoint, weights_only=True)["mlflow_run_id"]
    client = mlflow.MlflowClient(mlflow_server)
    (first,) = client.search_runs(
        [client.get_experiment_by_name("grid-test").experiment_id], "attributes.run_name = 'synthetic-classical-dot-h2-s0'"
    )
    assert first.info.status == "FINISHED"

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"synthetic-classical-dot-h2-s0: finished in MLflow run {first.info.run_id}, skipped" in resumed.stderr
    assert "synthetic-classical-dot-h2-s1: resuming from its checkpoint" in resumed.stderr
    assert "4 of 4 cells finished; write the report with `qattn report" in resumed.stdout

    experiment = client.get_experiment_by_name("grid-test").experiment_id
    (parent,) = client.search_runs([experiment], "tags.qattn_grid != ''")
    children = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    names = sorted(run.info.run_name for run in children)
    assert names == sorted(
        f"synthetic-{kind}-h2-s{seed}" for kind in ("classical-dot", "quantum-fidelity-q2") for seed in (0, 1)
    )  # one run per cell: the finished cell was not re-run, the interrupted one continued its run
    assert all(run.info.status == "FINISHED" for run in children)
    assert {run.info.run_name: run.info.run_id for run in children}["synthetic-classical-dot-h2-s1"] == interrupted_run

    results = tmp_path / "results"
    out = CliRunner().invoke(main, ["report", "grid-test", "--results", str(results), "--tracking-uri", mlflow_server])
    assert out.exit_code == 0, out.output
    report = (results / "quickstart.md").read_text()
    for run in children:
        assert run.info.run_id in report
    accuracy = [run.data.metrics["test/accuracy"] for run in children if run.data.params["model.attention"] == "classical"]
    mean, std = 100 * sum(accuracy) / 2, 100 * abs(accuracy[0] - accuracy[1]) / 2**0.5
    assert f"| classical dot | 2 | {mean:.2f} ± {std:.2f} |" in report
    assert "| quantum fidelity, 2 qubits | 2 |" in report and "qattn compare" in report
    test_labels = load_dataset(load_config(QUICKSTART, overrides).data).test.labels
    label, count = Counter(test_labels).most_common(1)[0]
    assert (f"Guessing the most frequent test class (class {label}: {count:,} of 16 documents) scores "
            f"{100 * count / 16:.2f}%; no constant guess scores more.") in report
    for run in children:  # dev accuracy at the chosen checkpoint, read from the run's dev/accuracy history
        best = int(run.data.metrics["best_epoch"])  # epochs count from 1, in MLflow's steps too
        assert sorted(p.step for p in client.get_metric_history(run.info.run_id, "dev/accuracy")) == [1, 2]
        (dev,) = [p.value for p in client.get_metric_history(run.info.run_id, "dev/accuracy") if p.step == best]
        assert f"| {dev:.4f} | {best} | `{run.info.run_id}` |" in report
    assert f"- [quickstart](quickstart.md): Test accuracy, mean ± std over seeds: classical dot {mean:.2f} ± {std:.2f}%" in (results / "README.md").read_text()
    for plot in ("learning_curves.png", "accuracy_vs_parameters.png", "attention_maps.png"):
        assert (results / "quickstart" / plot).stat().st_size > 0
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/quickstart.md", "report/attention_maps.png"} <= logged


def test_a_cell_that_starts_over_marks_its_abandoned_run_killed(tiny):
    config = load_config(QUICKSTART, [*tiny, "compare.kinds=['dot']", "compare.seeds=[0]", "train.epochs=1"])
    mlflow.set_tracking_uri(config.tracking.uri)
    experiment = mlflow.set_experiment(config.tracking.experiment).experiment_id
    client = mlflow.MlflowClient()
    parent = client.create_run(experiment, run_name="quickstart-grid", tags={GRID_TAG: grid_id(config)})
    name = "synthetic-classical-dot-h2-s0"
    abandoned = client.create_run(experiment, run_name=name, tags={"mlflow.parentRunId": parent.info.run_id})  # killed before any checkpoint

    parent_id, (result,) = run_grid(config, "test")
    assert parent_id == parent.info.run_id and result.run_id != abandoned.info.run_id
    assert client.get_run(abandoned.info.run_id).info.status == "KILLED"
    assert client.get_run(result.run_id).info.status == "FINISHED"


def test_side_by_side_grids_leave_each_other_the_cells_they_hold(tiny):
    config = load_config(QUICKSTART, [*tiny, "compare.kinds=['dot']", "compare.seeds=[0, 1]", "train.epochs=1"])
    first, _ = cells(config)
    lines = []
    with folder_lock(checkpoint_dir(first.config(config))) as holder:  # as another qattn compare (or train) would
        assert holder is None
        parent_id, outcomes = run_grid(config, "test", echo=lines.append)
    assert lines[0].startswith(f"[1/2] synthetic-classical-dot-h2-s0: another qattn process is training it (pid {os.getpid()} on ")
    assert lines[0].endswith("), skipped")
    assert [result.run_name for result in outcomes] == ["synthetic-classical-dot-h2-s1"]

    lines = []
    again, outcomes = run_grid(config, "test", echo=lines.append)
    assert again == parent_id
    assert lines[0] == "[1/2] synthetic-classical-dot-h2-s0: training"
    assert lines[1].startswith("[2/2] synthetic-classical-dot-h2-s1: finished in MLflow run")


@pytest.mark.parametrize("where", ["same experiment", "Default"])
def test_a_grid_split_between_two_parent_runs_is_finished_by_running_it_again(tiny, where):
    """What two `qattn compare` racing on a new experiment left before the grid's lock: two parent runs of one
    grid (the second in the same experiment, or in "Default"), each with a finished cell whose checkpoint is in
    its folder. Run again alone, the grid adopts the other parent run's cell, naming it, instead of refusing."""
    settings = [*tiny, "compare.kinds=['dot']", "train.epochs=1"]
    config = load_config(QUICKSTART, [*settings, "compare.seeds=[0, 1]"])
    client = mlflow.MlflowClient(config.tracking.uri)
    first, (s0,) = run_grid(load_config(QUICKSTART, [*settings, "compare.seeds=[0]"]), "test")
    if where == "same experiment":  # the second process did not see the first one's parent run yet
        experiment = client.get_experiment_by_name("quickstart").experiment_id
        client.create_run(experiment, "quickstart-grid", tags={GRID_TAG: grid_id(config), NAME_TAG: "quickstart"})
        second_grid = load_config(QUICKSTART, [*settings, "compare.seeds=[1]"])
    else:  # the second process lost the race to create the experiment, and MLflow put its runs in "Default"
        second_grid = load_config(QUICKSTART, [*settings, "compare.seeds=[1]", "tracking.experiment=Default"])
    second, (s1,) = run_grid(second_grid, "test")
    assert second != first and client.get_run(second).data.tags[GRID_TAG] == grid_id(config)

    lines = []
    parent, outcomes = run_grid(config, "test", echo=lines.append)
    assert [outcome.info.run_id for outcome in outcomes] == [s0.run_id, s1.run_id]
    assert all(client.get_run(run_id).info.status == "FINISHED" for run_id in (s0.run_id, s1.run_id))  # not re-run
    cell = "synthetic-classical-dot-h2-s"
    if where == "same experiment":  # the latest parent run goes on, and takes the first one's cell
        assert parent == second
        assert lines == [
            f"[1/2] {cell}0: finished in MLflow run {s0.run_id} of this grid's parent run {first}, adopted",
            f"[2/2] {cell}1: finished in MLflow run {s1.run_id}, skipped",
        ]
        assert client.get_run(s0.run_id).data.tags["mlflow.parentRunId"] == second  # the grid's report has both
    else:
        assert parent == first
        assert lines == [
            f"[1/2] {cell}0: finished in MLflow run {s0.run_id}, skipped",
            (f"[2/2] {cell}1: finished in MLflow run {s1.run_id} of this grid's parent run {second} in experiment "
             f"'Default', adopted (a run stays in its experiment: `qattn report {first} {second}` reports both)"),
        ]


RACER = """
import sys
import mlflow.store.tracking.sqlalchemy_store  # imported before the start, so that both race from the same point
from qattn.cli import main
print("ready", flush=True)
sys.stdin.read(1)
main(sys.argv[1:], prog_name="qattn")
"""
RACE_ROUNDS = 5  # before compare took the grid's lock, 8 of 20 rounds measured went wrong


def test_two_compares_started_together_on_a_new_experiment_make_one_grid(tmp_path, monkeypatch):
    """`qattn compare` twice, in two real processes let go at the same instant (after their imports), each
    round into a new experiment of one store: one parent run, none in "Default", every cell run once."""
    monkeypatch.chdir(tmp_path)
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client.search_experiments()  # the store exists; each round's experiment does not
    overrides = [*tiny_overrides(tmp_path), "compare.kinds=['nbsvm']", "compare.seeds=[0, 1]", "model.bow.c_grid=[1.0]"]
    wrong, before = [], set()  # rounds that went wrong; the runs that earlier rounds left in "Default"
    for round_ in range(RACE_ROUNDS):
        experiment = f"race-{round_}"
        sets = with_sets([*overrides, f"tracking.experiment={experiment}"])
        logs = [tmp_path / f"{experiment}-{n}.log" for n in range(2)]
        racers = []
        for log in logs:
            with log.open("w") as stderr:
                racers.append(subprocess.Popen([sys.executable, "-c", RACER, "compare", str(QUICKSTART), *sets],
                                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True))
        for racer in racers:
            assert racer.stdout.readline() == "ready\n"
        for racer in racers:  # go
            racer.stdin.write("g")
            racer.stdin.flush()
        for racer in racers:
            racer.communicate(timeout=300)
        codes = [racer.returncode for racer in racers]
        strays = [run for run in client.search_runs(["0"]) if run.info.run_id not in before]  # none of qattn's
        before |= {run.info.run_id for run in strays}
        made = [*client.search_runs([client.get_experiment_by_name(experiment).experiment_id]), *strays]
        parents = [run for run in made if GRID_TAG in run.data.tags]
        finished = sorted(run.info.run_name for run in made
                          if run.data.tags.get("mlflow.parentRunId") and run.info.status == "FINISHED")
        if (codes, len(parents), len(strays), finished) != ([0, 0], 1, 0, ["synthetic-nbsvm-s0", "synthetic-nbsvm-s1"]):
            errors = " | ".join(text.strip().splitlines()[-1] for text in map(Path.read_text, logs) if text.strip())
            wrong.append(f"round {round_}: exit codes {codes}, {len(parents)} parent runs, {len(strays)} runs in "
                         f"Default, finished cells {finished} ({errors})")
    assert not wrong, f"{len(wrong)} of {RACE_ROUNDS} rounds went wrong:\n" + "\n".join(wrong)


def test_reports_count_epochs_from_1_for_runs_of_either_numbering(tmp_path, monkeypatch):
    """Runs logged before epochs counted from 1 (no qattn_epochs_from tag: best_epoch and dev steps from 0)
    and after read the same in a report."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("numbering")
    parent = client.create_run(experiment, run_name="numbering-grid", tags={GRID_TAG: "g", NAME_TAG: "numbering"})
    for seed, (tags, first, best) in enumerate([({}, 0, 1), ({"qattn_epochs_from": "1"}, 1, 2)]):  # both best at epoch 2
        run = client.create_run(experiment, run_name=f"cell-s{seed}", tags={"mlflow.parentRunId": parent.info.run_id, **tags})
        for key, value in {"model.attention": "classical", "train.seed": seed, "parameters.quantum": 0, "parameters.classical": 10}.items():
            client.log_param(run.info.run_id, key, value)
        for step, accuracy in enumerate([0.5, 0.75 + seed / 10, 0.6], start=first):
            client.log_metric(run.info.run_id, "dev/accuracy", accuracy, step=step)
        for key, value in {"best_epoch": best, "test/accuracy": 0.7, "test/macro_f1": 0.7, "epoch/seconds": 1.0}.items():
            client.log_metric(run.info.run_id, key, value)
        client.set_terminated(run.info.run_id)

    out = CliRunner().invoke(main, ["report", parent.info.run_id, "--results", str(tmp_path / "results"), "--tracking-uri", uri])
    assert out.exit_code == 0, out.output
    report = (tmp_path / "results" / "numbering.md").read_text()
    assert "| classical dot | 0 | 0.7000 | 0.7000 | 0.7500 | 2 |" in report
    assert "| classical dot | 1 | 0.7000 | 0.7000 | 0.8500 | 2 |" in report


def test_grid_cells_and_identity():
    config = load_config(QUICKSTART, ["compare.kinds=['dot', 'gaussian']", "compare.n_qubits=[2, 3]", "compare.seeds=[0, 5]"])
    assert cells(config) == [
        Cell("dot", None, 0), Cell("dot", None, 5),
        Cell("gaussian", 2, 0), Cell("gaussian", 2, 5), Cell("gaussian", 3, 0), Cell("gaussian", 3, 5),
    ]
    gaussian = Cell("gaussian", 3, 5).config(config)
    assert (gaussian.model.attention, gaussian.model.kernel, gaussian.model.n_qubits, gaussian.train.seed) == ("quantum", "gaussian", 3, 5)
    assert Cell("dot", None, 0).config(config).model.attention == "classical"
    more_seeds = load_config(QUICKSTART, ["compare.kinds=['dot', 'gaussian']", "compare.n_qubits=[2, 3]", "compare.seeds=[0, 1, 2]"])
    assert grid_id(more_seeds) == grid_id(config)  # more seeds extend the same grid
    assert grid_id(load_config(QUICKSTART, ["compare.kinds=['dot']"])) != grid_id(config)


@pytest.mark.parametrize(
    "override, message",
    [
        ("compare.kinds=['dot', 'swap']", "unknown kind 'swap' in compare.kinds; valid: tfidf-lr, nbsvm, probe, none, uniform, dot, dot-narrow, fidelity, gaussian, annealing"),
        ("compare.seeds=[1, 1]", "compare.seeds lists a value twice"),
        ("compare.kinds=[]", "compare.kinds"),
        ("compare.n_qubits=[0]", "compare.n_qubits must be positive"),
    ],
)
def test_bad_grids_are_named(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(QUICKSTART, [override])


def test_report_of_nothing_says_what_was_looked_for(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(main, ["report", "no-such-grid", "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"])
    assert out.exit_code != 0
    assert "'no-such-grid' is neither a run id nor an experiment" in out.output


def log_grid(client, experiment, command, cells, config):
    """A finished grid as `qattn compare` leaves it in MLflow: a parent run and a child per cell, each with
    the params of ``config`` (a flattened config) and of its cell, two epochs of dev accuracy and test
    accuracy. ``cells``: (params of the cell, seed, test accuracy)."""
    tags = {GRID_TAG: command, NAME_TAG: "quickstart", COMMAND_TAG: command}
    parent = client.create_run(experiment, run_name="quickstart-grid", tags=tags)
    for cell, seed, accuracy in cells:
        name = f"{cell['model.attention']}-s{seed}"  # a cell's name is unique in its grid
        tags = {"mlflow.parentRunId": parent.info.run_id, "qattn_epochs_from": "1"}
        run = client.create_run(experiment, run_name=name, tags=tags)
        params = [Param(key, str(value)) for key, value in {**config, **cell, "train.seed": seed}.items()]
        for start in range(0, len(params), 100):  # MLflow takes 100 params per batch
            client.log_batch(run.info.run_id, params=params[start:start + 100])
        metrics = {"best_epoch": 2, "test/accuracy": accuracy, "test/macro_f1": accuracy, "epoch/seconds": 1.0}
        client.log_batch(run.info.run_id, metrics=[
            *(Metric(key, value, 0, 0) for key, value in metrics.items()),
            *(Metric("dev/accuracy", value, 0, step) for step, value in [(1, 0.5), (2, accuracy)]),
        ])
        client.set_terminated(run.info.run_id)
    client.set_terminated(parent.info.run_id)
    return parent.info.run_id


CLASSICAL = {"model.attention": "classical", "parameters.quantum": 0, "parameters.classical": 1200}
FIDELITY = {"model.attention": "quantum", "model.kernel": "fidelity", "model.n_qubits": 2,
            "parameters.quantum": 16, "parameters.classical": 1000}
ANNEALING = {"model.attention": "annealing", "model.annealing.solver": "batched", "model.annealing.batched.sweeps": 100,
             "parameters.quantum": 0, "parameters.classical": 1000}


@pytest.fixture(scope="module")
def grids(tmp_path_factory):
    """One SQLite store holding a grid of classical and circuit attention (logged before data.on_empty
    existed), a grid of annealing attention from the same config, and grids that differ from the first."""
    folder = tmp_path_factory.mktemp("grids")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)  # MLflow puts a SQLite store's artifacts under ./mlruns
        uri = f"sqlite:///{folder / 'm.db'}"
        client = mlflow.MlflowClient(uri)
        experiment = client.create_experiment("quickstart")
        base = {key: value for key, value in flatten(load_config(QUICKSTART)).items() if key != "data.on_empty"}
        first = log_grid(client, experiment, "qattn compare quickstart.toml", [
            (CLASSICAL, 0, 0.8), (FIDELITY, 0, 0.9), (CLASSICAL, 1, 0.7), (FIDELITY, 1, 0.9),
        ], base)
        later = {  # what annealing attention does not read differs (and the record), the rest is the first grid's
            **base, "data.on_empty": "error", "model.encoder": "iqp", "model.aer.shots": 100, "version.torch": "9.9",
            "compare.kinds": "['annealing']", "tracking.experiment": "elsewhere", "train.output_dir": "/elsewhere",
        }
        command = "qattn compare quickstart.toml --set compare.kinds=['annealing']"
        annealing = log_grid(client, experiment, command, [(ANNEALING, 0, 0.6), (ANNEALING, 1, 0.7)], later)
        other_lr = log_grid(client, experiment, "lr", [(ANNEALING, 0, 0.6)], {**later, "train.lr": 0.5})
        classical_again = log_grid(client, experiment, "again", [(CLASSICAL, 1, 0.75)], base)
        ids = {"first": first, "annealing": annealing, "other_lr": other_lr, "classical_again": classical_again}
        yield uri, folder, base, ids


def test_several_grids_make_one_report_with_the_rows_of_each(grids):
    uri, folder, _, ids = grids
    first, annealing = ids["first"], ids["annealing"]
    results = folder / "merged"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        out = CliRunner().invoke(main, ["report", first, annealing, "--results", str(results), "--tracking-uri", uri])
    assert out.exit_code == 0, out.output
    report = (results / "quickstart.md").read_text()
    assert "| classical dot | 2 | 75.00 ± 7.07 | 75.00 ± 7.07 | 75.00 ± 7.07 | 0 / 1,200 / 1,200 | 1.0 |" in report
    assert "| quantum fidelity, 2 qubits | 2 | 90.00 ± 0.00 |" in report
    row = "| QAMA annealing, batched solver | 2 | 65.00 ± 7.07 | 65.00 ± 7.07 | 65.00 ± 7.07 | 0 / 1,000 / 1,000 |"
    assert row in report  # no circuit parameters
    assert "| QAMA annealing, batched solver | 1 | 0.7000 | 0.7000 | 0.7000 | 2 |" in report  # the runs table
    assert (f"Generated by `qattn report {first} {annealing}` (the grids' parent runs)" in report
            and f"`qattn compare quickstart.toml` (grid {first}) and `qattn compare quickstart.toml "
                f"--set compare.kinds=['annealing']` (grid {annealing})." in report)
    assert ("- [quickstart](quickstart.md): Test accuracy, mean ± std over seeds: classical dot 75.00 ± 7.07%; "
            "quantum fidelity, 2 qubits 90.00 ± 0.00%; QAMA annealing, batched solver 65.00 ± 7.07%."
            ) in (results / "README.md").read_text()
    client = mlflow.MlflowClient(uri)
    for parent in (first, annealing):  # the report is logged to both grids
        assert "report/quickstart.md" in {a.path for a in client.list_artifacts(parent, "report")}

    with pytest.MonkeyPatch.context() as patch:  # the first grid alone reports as before: its rows only
        patch.chdir(folder)
        out = CliRunner().invoke(main, ["report", first, "--results", str(folder / "alone"), "--tracking-uri", uri])
    alone = (folder / "alone" / "quickstart.md").read_text()
    assert out.exit_code == 0 and "annealing" not in alone
    assert f"Generated by `qattn report {first}` (the grid's parent run)" in alone


@pytest.mark.parametrize("pair, message", [
    (("first", "other_lr"), "differ in\n  - train.lr: {lr} in grid {first}; 0.5 in grid {other_lr}\nA report's rows"),
    (("first", "classical_again"), "grids {first} and {classical_again} both hold classical dot, seed 1"),
    (("classical_again", "quickstart"), "same grid (parent run {classical_again}); an experiment name means its"),
], ids=["a training param", "a cell twice", "a grid twice"])
def test_grids_that_would_not_compare_like_with_like_are_refused(grids, pair, message):
    uri, folder, base, ids = grids
    targets = [ids.get(name, name) for name in pair]  # "quickstart": the experiment, so its latest grid
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        out = CliRunner().invoke(main, ["report", *targets, "--results", str(folder / "no"), "--tracking-uri", uri])
    assert out.exit_code == 1 and out.output.startswith("Error: "), out.output  # a message, not a traceback
    assert message.format(lr=base["train.lr"], **ids) in out.output
    assert "model.encoder" not in out.output and not (folder / "no").exists()  # read by circuit attention only


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_quantum_heads_never_get_more_parameters_than_classical_ones(path):
    config = load_config(path)
    counts = {}
    for cell in cells(config):
        if cell.kind not in quantum_kernels() and cell.kind != "dot":  # the circuit kinds against classical
            continue
        model = build_model(cell.config(config).model, 1000, 4)
        attention = [m for m in model.modules() if isinstance(m, AttentionShell)]
        counts[cell] = sum(p.numel() for m in attention for p in m.parameters())
    classical = counts.pop(Cell("dot", None, config.compare.seeds[0]))
    assert all(count <= classical for count in counts.values()), (classical, counts)
