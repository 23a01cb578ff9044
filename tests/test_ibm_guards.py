"""`qattn ibm` refuses bad input and bad job values with one message, and logs an evaluation once.

Offline, in Qiskit Runtime's local testing mode (fake_manila, noiseless), on a tiny gaussian-kernel model
(its circuits are one per token: a submission takes seconds) and a bag-of-words run."""

import os
import shutil

import mlflow
import numpy as np
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from qattn.cli import main
from qattn.config import load_config
from qattn.experiment import run_experiment
from qattn.ibm import lifecycle
from qattn.ibm.journal import Journal, Options
from qattn.runtime.devices import HardwareError
from tests.conftest import QUICKSTART, hardware_overrides


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(gaussian model's run id, tfidf-lr run id, store URI): 2 qubits, 2 heads, documents of <= 24 tokens."""
    folder = tmp_path_factory.mktemp("ibm-guards")
    cwd = os.getcwd()
    os.chdir(folder)  # MLflow puts a SQLite store's artifacts under ./mlruns
    uri, overrides = hardware_overrides(folder)
    gaussian = run_experiment(load_config(QUICKSTART, [*overrides, "model.kernel=gaussian"]), restart=True).run_id
    bow = run_experiment(load_config(QUICKSTART, [*overrides, "model.attention=tfidf-lr"]), restart=True).run_id
    yield gaussian, bow, uri
    os.chdir(cwd)


def quiet(line: str) -> None:
    pass


@pytest.fixture
def halfway(runs, tmp_path, no_network):
    """A journal whose stage 0 is retrieved and whose stage 1 (local jobs, done) awaits its retrieve."""
    gaussian, _, uri = runs
    mlflow.set_tracking_uri(uri)
    options = Options(shots=100, resilience_level=0, seed_simulator=4)
    journal = lifecycle.submit(gaussian, "fake_manila", options, split="test", docs=[0], folder=tmp_path / "journal",
                               ideal=True, echo=quiet)
    assert lifecycle.retrieve(journal, echo=quiet) is False
    return journal


def damage_stage_1(journal, values) -> str:
    """Replace what local testing mode computed for stage 1's job by ``values(original)``; returns the job id."""
    job = Journal.load(journal).stage_jobs(1)[0].job_id
    path = journal / "local" / f"{job}.npz"
    original = np.load(path)["values"]
    np.savez(path, values=values(original))
    return job


def test_non_finite_job_values_are_refused_naming_the_file_and_nothing_is_logged(runs, halfway):
    job = damage_stage_1(halfway, lambda v: np.where(np.arange(v.size).reshape(v.shape) == 3, np.nan, v))
    out = CliRunner().invoke(main, ["ibm", "retrieve", str(halfway)])
    assert out.exit_code == 1 and "Traceback" not in out.output, out.output
    path = halfway / "results" / f"{job}.npy"
    assert f"Error: {path} (job {job}, stage 1 rows 0:8) holds 1 value(s) that are NaN or infinite" in out.output
    assert f"qattn ibm resubmit {halfway}" in out.output
    record = Journal.load(halfway)
    assert MlflowClient(runs[2]).get_run(record.mlflow_run_id).data.metrics == {}  # nothing logged
    assert not record.finished and record.stage_jobs(1)[0].status == "ERROR"

    assert lifecycle.resubmit(halfway, echo=quiet) == 1  # the rows are sent again, and the evaluation ends
    assert lifecycle.retrieve(halfway, echo=quiet) is True
    metrics = MlflowClient(runs[2]).get_run(record.mlflow_run_id).data.metrics
    assert metrics and all(np.isfinite(value) for value in metrics.values())


def test_job_values_of_the_wrong_width_are_refused_naming_the_file(runs, halfway):
    job = damage_stage_1(halfway, lambda v: np.zeros((v.shape[0], v.shape[1] + 1)))
    with pytest.raises(HardwareError) as refused:
        lifecycle.retrieve(halfway, echo=quiet)
    message = str(refused.value)
    assert f"{halfway / 'results' / f'{job}.npy'} (job {job}, stage 1 rows 0:8) holds values of shape (8, 3)" in message
    assert "expected (8, 2): 8 circuits x 2 values" in message
    assert MlflowClient(runs[2]).get_run(Journal.load(halfway).mlflow_run_id).data.metrics == {}


def test_two_copies_of_a_journal_log_one_evaluation(runs, halfway, tmp_path):
    copy = shutil.copytree(halfway, tmp_path / "copy")
    assert lifecycle.retrieve(halfway, echo=quiet) is True
    run_id = Journal.load(halfway).mlflow_run_id
    client = MlflowClient(runs[2])
    logged = client.get_run(run_id).data.metrics

    lines: list[str] = []
    assert lifecycle.retrieve(copy, echo=lines.append) is True
    assert lines == [f"stage {stage} already retrieved into run {run_id}" for stage in (0, 1)]
    assert client.get_run(run_id).data.metrics == logged
    assert all(len(client.get_metric_history(run_id, key)) == 1 for key in logged)  # one result set per metric
    assert Journal.load(copy).finished  # the copy now knows

    lines.clear()
    assert lifecycle.retrieve(halfway, echo=lines.append) is True  # the same journal again: likewise
    assert lines == [f"stage {stage} already retrieved into run {run_id}" for stage in (0, 1)]


def test_shots_beyond_a_jobs_executions_are_refused_before_anything_is_made(runs, tmp_path, no_network):
    gaussian, _, uri = runs
    mlflow.set_tracking_uri(uri)
    out = CliRunner().invoke(main, ["ibm", "plan", gaussian, "--backend", "fake_manila", "--shots", "50000000",
                                    "--resilience-level", "0"])
    assert out.exit_code == 1 and "Traceback" not in out.output, out.output
    assert ("--shots 50000000 costs 50,000,000 executions per circuit; a job carries at most 10,000,000 "
            "(--max-executions 10,000,000)") in out.output
    assert "lower --shots to at most 10000000, or raise --max-executions" in out.output

    client = MlflowClient(uri)
    experiment = client.get_run(gaussian).info.experiment_id
    before = len(client.search_runs([experiment]))
    options = Options(shots=20_000_000, resilience_level=0)
    with pytest.raises(HardwareError, match="--shots 20000000 costs 20,000,000 executions per circuit"):
        lifecycle.submit(gaussian, "fake_manila", options, split="test", docs=[0], folder=tmp_path / "big", echo=quiet)
    assert len(client.search_runs([experiment])) == before and not (tmp_path / "big").exists()


@pytest.mark.parametrize("options, message", [
    (["--max-executions", "100001"],  # TREX's reserve leaves 1; twirling rounds one shot up to 64 executions
     ("not even one shot fits a job: it costs 64 executions per circuit; a job carries at most 1 (--max-executions "
      "100,001, less 100,000 for readout mitigation's calibration), and a circuit's shots run in one job: raise "
      "--max-executions to at least 100,064")),
    (["--max-executions", "100100", "--resilience-level", "2"],  # zero-noise extrapolation: three noise factors
     "not even one shot fits a job: it costs 192 executions per circuit; a job carries at most 100 "),
])
def test_a_job_too_small_for_one_shot_says_so_and_how_much_it_needs(runs, no_network, options, message):
    gaussian, _, uri = runs
    mlflow.set_tracking_uri(uri)
    out = CliRunner().invoke(main, ["ibm", "plan", gaussian, "--backend", "fake_manila", "--docs", "0", "--shots", "1", *options])
    assert out.exit_code == 1 and "Traceback" not in out.output, out.output
    assert message in out.output and "lower --shots" not in out.output, out.output


@pytest.mark.parametrize("value", ["nan", "inf", "-0.1", "0"])
def test_a_target_error_that_is_no_fraction_is_refused_by_the_cli(value, no_network):
    out = CliRunner().invoke(main, ["ibm", "plan", str(QUICKSTART), "--backend", "fake_manila", "--tokens", "10",
                                    "--target-error", value])
    assert out.exit_code == 2 and "Traceback" not in out.output, out.output
    assert "Invalid value for '--target-error'" in out.output and "between 0 and 1" in out.output


def test_plan_writes_into_a_folder_it_creates_and_leaves_none_when_planning_fails(tmp_path, no_network):
    args = ["ibm", "plan", str(QUICKSTART), "--backend", "fake_manila", "--set", "model.n_qubits=2", "--shots", "100"]
    failed = CliRunner().invoke(main, [*args, "--tokens", "100000", "--write", str(tmp_path / "no" / "plan.md")])
    assert failed.exit_code == 1 and "exceeds the model's max_length" in failed.output, failed.output
    assert not (tmp_path / "no").exists()

    report = tmp_path / "plans" / "quickstart" / "plan.md"
    out = CliRunner().invoke(main, [*args, "--tokens", "10", "--write", str(report)])
    assert out.exit_code == 0, out.output
    assert report.read_text().startswith("# Hardware plan:") and f"wrote {report}" in out.output


def test_plan_of_a_bag_of_words_run_says_it_runs_no_circuits(runs, no_network):
    _, bow, uri = runs
    mlflow.set_tracking_uri(uri)
    out = CliRunner().invoke(main, ["ibm", "plan", bow, "--backend", "fake_manila"])
    assert out.exit_code == 1 and "Traceback" not in out.output, out.output
    assert f"Error: run {bow} is a tfidf-lr baseline, no network; it runs no circuits: plan a quantum kind's run" \
        in out.output
