"""`qattn ibm` offline: Qiskit Runtime's local testing mode with small fake devices, the same code
path that talks to IBM. No test reaches the network (a guard refuses and records every attempt)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from click.testing import CliRunner

from qattn.attention import QuantumMultiheadAttention
from qattn.cli import main
from qattn.config import load_config
from qattn.executors import PennyLaneExecutor
from qattn.experiment import load_saved, run_experiment
from qattn.ibm import jobs, lifecycle, planning
from qattn.ibm.comparison import exact_values
from qattn.ibm.journal import Journal, Options
from qattn.ibm.planning import job_ranges
from qattn.ibm.staged import Pending, StagedExecutor
from qattn.kernels import QuantumKernel
from qattn.runtime.devices import HardwareError, resolve_device
from qattn.solvers.qaoa import QaoaSolver
from tests.conftest import QUICKSTART, hardware_overrides, run_cli_light
from tests.servers import free_port

GUARD = Path(__file__).parent / "network_guard"
SECRET = "qattn-test-token-6f1d2c"  # set as QISKIT_IBM_TOKEN; must never reach a file
SHOTS = 2000
GAUSSIAN = []  # filled by the trained fixture
ANNEALING = []  # likewise: an annealing model with the qaoa solver


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Tiny quantum models trained and logged to MLflow: 2 qubits, 2 heads, documents of <= 24 tokens;
    yields (run id of the fidelity model, store URI, folder); the gaussian model's run id is in ``GAUSSIAN``,
    and in ``ANNEALING`` an annealing model with the qaoa solver whose QUBOs fit fake_manila's 5 qubits
    (1 head, chunks of 3 tokens and a summary: 4 variables; documents of <= 10 tokens: 4 chunks)."""
    folder = tmp_path_factory.mktemp("ibm")
    cwd = os.getcwd()
    os.chdir(folder)  # MLflow puts a SQLite store's artifacts under ./mlruns
    uri, overrides = hardware_overrides(folder)
    result = run_experiment(load_config(QUICKSTART, overrides), restart=True)
    GAUSSIAN.append(run_experiment(load_config(QUICKSTART, [*overrides, "model.kernel=gaussian"]), restart=True).run_id)
    annealing = [
        "model.attention=annealing", "model.annealing.solver=qaoa", "model.annealing.qaoa.maxiter=5",
        "model.num_heads=1", "model.embed_dim=4", "model.chunk_size=3", "model.max_length=10", "data.synthetic.train_docs=10",
        "train.batch_size=10", "data.synthetic.max_words=9", "data.synthetic.min_words=8",
    ]
    ANNEALING.append(run_experiment(load_config(QUICKSTART, [*overrides, *annealing]), restart=True).run_id)
    yield result.run_id, uri, folder
    os.chdir(cwd)



def guarded_env(tmp_path, uri):
    return {
        **os.environ, "PYTHONPATH": os.pathsep.join([str(GUARD), os.environ.get("PYTHONPATH", "")]),
        "QATTN_NETWORK_LOG": str(tmp_path / "network.log"), "QISKIT_IBM_TOKEN": SECRET, "HOME": str(tmp_path / "home"),
        "MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1",
    }


def submit_and_kill(command: list[str], journal: Path, env: dict) -> None:
    """Run ``qattn ibm submit`` and SIGKILL it as soon as its first job is journaled."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (Journal.path(journal).exists() and Journal.load(journal).jobs):
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no job was journaled"
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def test_submit_killed_then_retrieved_from_the_journal_in_another_process(trained, tmp_path, no_network, monkeypatch):
    run_id, uri, store = trained
    monkeypatch.setenv("QISKIT_IBM_TOKEN", SECRET)
    mlflow.set_tracking_uri(uri)
    options = Options(shots=SHOTS, resilience_level=0, seed_simulator=1, max_executions=150 * SHOTS)
    plans, _, _ = planning.plan(run_id, "fake_manila", options, split="test", docs=[0, 1])

    journal = tmp_path / "journal"
    command = [
        sys.executable, "-m", "qattn.cli", "ibm", "submit", run_id, "--backend", "fake_manila", "--ideal", "--docs", "0:2",
        "--shots", str(SHOTS), "--resilience-level", "0", "--seed-simulator", "1", "--max-executions", str(150 * SHOTS),
        "--journal", str(journal),
    ]
    submit_and_kill(command, journal, guarded_env(tmp_path, uri))  # the local jobs die with it, unfinished
    assert not (tmp_path / "network.log").exists()

    record, _ = jobs.status(journal)  # this (test) process knows nothing but the journal
    assert record.stages[0].circuits == plans["fidelity"][0].circuits
    assert {job.status for job in record.jobs} == {"LOST"}
    assert lifecycle.retrieve(journal, echo=lambda line: None) is False
    lifecycle.resubmit(journal, echo=lambda line: None)
    record = Journal.load(journal)  # the submitted ranges cover the stage once, in as many jobs as planned
    assert sorted(record.ranges(0)) == job_ranges(plans["fidelity"][0].circuits, options)
    assert len(record.ranges(0)) == plans["fidelity"][0].jobs > 1

    assert lifecycle.retrieve(journal, echo=lambda line: None) is False  # stage 1 (global attention) submitted
    assert lifecycle.retrieve(journal, echo=lambda line: None) is True
    record = Journal.load(journal)
    assert [s.circuits for s in record.stages] == [p.circuits for p in plans["fidelity"]]
    assert all(job.status in {"LOST", "RETRIEVED"} for job in record.jobs)

    client = MlflowClient(uri)
    run = client.get_run(record.mlflow_run_id)
    assert run.data.tags["mlflow.parentRunId"] == run_id and run.info.status == "FINISHED"
    assert {f"qattn.ibm.job.{job.job_id}" for job in record.jobs} <= set(run.data.tags)
    metrics = run.data.metrics
    tolerance = 5 * np.sqrt(0.25 / SHOTS)  # five standard deviations of a frequency estimate
    assert metrics["stage_0/max_abs_error"] < tolerance and metrics["stage_1/max_abs_error"] < tolerance
    tau = max(float(m.log_temperature.detach().exp().max()) for m in load_saved(run_id).model.modules() if isinstance(m, QuantumKernel))
    assert 0 < metrics["local_attention/max_abs_diff"] < tau * tolerance
    assert metrics["prediction_agreement"] == 1.0

    for path in [*tmp_path.rglob("*"), *store.rglob("*")]:
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), f"the token leaked into {path}"


def test_a_noisy_fake_device_is_reported(trained, tmp_path, no_network):
    run_id, uri, _ = trained
    mlflow.set_tracking_uri(uri)
    options = Options(shots=1000, resilience_level=1, seed_simulator=2)  # readout mitigation on a noisy snapshot
    journal = lifecycle.submit(run_id, "fake_manila", options, split="test", docs=[0], folder=tmp_path / "noisy", echo=lambda line: None)
    while not lifecycle.retrieve(journal, echo=lambda line: None):
        pass
    metrics = MlflowClient(uri).get_run(Journal.load(journal).mlflow_run_id).data.metrics
    for key in ("stage_0/mean_abs_error", "stage_1/mean_abs_error", "local_attention/max_abs_diff", "prediction_agreement"):
        assert np.isfinite(metrics[key])
    assert metrics["stage_0/mean_abs_error"] > 0

    lines = []
    assert lifecycle.retrieve(journal, echo=lines.append) is True  # nothing is fetched twice
    run_id = Journal.load(journal).mlflow_run_id
    assert lines == [f"stage {stage} already retrieved into run {run_id}" for stage in (0, 1)]
    assert lifecycle.cancel(journal, echo=lines.append) == 0  # local jobs end inside submit


def test_gaussian_features_from_a_noiseless_fake_agree_with_exact_ones(trained, tmp_path, no_network):
    _, uri, _ = trained
    mlflow.set_tracking_uri(uri)
    options = Options(shots=SHOTS, resilience_level=0, seed_simulator=3)
    plans, kernel, _ = planning.plan(GAUSSIAN[0], "fake_manila", options, docs=[0, 1])
    journal = lifecycle.submit(GAUSSIAN[0], "fake_manila", options, split="test", docs=[0, 1], folder=tmp_path / "z", ideal=True, echo=lambda line: None)
    while not lifecycle.retrieve(journal, echo=lambda line: None):
        pass
    record = Journal.load(journal)
    assert kernel == "gaussian" and [s.circuits for s in record.stages] == [p.circuits for p in plans["gaussian"]]
    metrics = MlflowClient(uri).get_run(record.mlflow_run_id).data.metrics
    tolerance = 5 / np.sqrt(SHOTS)  # <Z> from SHOTS samples: standard deviation at most 1/sqrt(SHOTS)
    assert metrics["stage_0/max_abs_error"] < tolerance and metrics["stage_1/max_abs_error"] < tolerance


def test_plan_of_a_config_writes_a_report(tmp_path, no_network):
    report = tmp_path / "plan.md"
    out = CliRunner().invoke(main, [
        "ibm", "plan", str(QUICKSTART), "--backend", "fake_manila", "--tokens", "40", "--set", "model.n_qubits=2",
        "--shots", "100", "--resilience-level", "0", "--write", str(report),
    ])
    assert out.exit_code == 0, out.output
    text = report.read_text()
    assert f"Generated by `qattn ibm plan {QUICKSTART} --backend fake_manila --tokens 40 --set model.n_qubits=2 --shots 100 --resilience-level 0`" in text
    # 40 tokens in chunks of 32 (+ a summary token each): 33 x 33 pairs, then 33 queries x (1 + 8) unpadded keys; 2 heads
    assert "| fidelity (model) | 0 | fidelity | 2,772 | 277,200 | 1 |" in text
    assert "| fidelity (model) | 1 | fidelity | 8 | 800 | 1 |" in text  # 2 chunk summaries x 2 x 2 heads
    assert "| gaussian | 0 | z | 216 | 21,600 | 1 |" in text  # one circuit per query (33 + 33) and key (33 + 9) token, 2 heads


def test_masked_pairs_cost_no_circuits_and_a_changed_model_is_refused():
    layer = QuantumMultiheadAttention(8, 2, n_qubits=2, batch_first=True).eval()
    x = torch.randn(2, 5, 8)
    padding = torch.tensor([[False] * 5, [False, False, False, True, True]])
    staged = StagedExecutor()
    layer.kernel.executor = staged
    with pytest.raises(Pending) as pending:
        layer(x, x, x, key_padding_mask=padding)
    request = pending.value.request
    assert request.circuits == 2 * 5 * (5 + 3)  # heads x queries x unmasked keys
    gates = request.fmap.gates(np.zeros(request.fmap.input_size), np.zeros(request.fmap.weight_shape))
    assert request.angles.shape[1] == 2 * sum(gate.angle is not None for gate in gates)  # query slots, then key slots

    exact = exact_values(request.fmap, "fidelity", request.angles)
    staged.results = {0: (request.angles, exact)}
    staged.reset()
    out, _ = layer(x, x, x, key_padding_mask=padding)
    layer.kernel.executor = StagedExecutor(stand_in=PennyLaneExecutor())
    reference, _ = layer(x, x, x, key_padding_mask=padding)
    torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-5)  # hardware values put back where they belong

    layer.kernel.executor = StagedExecutor({0: (request.angles + 0.1, exact)})
    with pytest.raises(HardwareError, match="submit it again"):
        layer(x, x, x, key_padding_mask=padding)


def test_gaussian_features_need_one_circuit_per_token():
    layer = QuantumMultiheadAttention(8, 2, n_qubits=2, kernel="gaussian", batch_first=True).eval()
    layer.kernel.executor = StagedExecutor()
    x = torch.randn(1, 6, 8)
    with pytest.raises(Pending) as pending:
        layer(x, x, x, key_padding_mask=torch.tensor([[False] * 4 + [True] * 2]))
    assert pending.value.request.kind == "z" and pending.value.request.circuits == 2 * (6 + 4)  # heads x (queries + keys)


def test_jobs_stay_within_the_execution_limit():
    options = Options(shots=1000, max_executions=2_500_000, resilience_level=0)
    assert job_ranges(6000, options) == [(0, 2500), (2500, 5000), (5000, 6000)]
    mitigated = Options(shots=1000)  # level 1: measurement twirling (16 randomizations x 64 shots) and TREX calibration
    assert mitigated.executions_per_circuit == 1024 and mitigated.executions_per_job == 9_900_000
    assert Options(shots=1000, resilience_level=2).executions_per_circuit == 3 * 1024  # ZNE: 3 noise factors


def test_a_missing_account_says_how_to_save_one(trained, tmp_path):
    run_id, uri, _ = trained
    env = {key: value for key, value in guarded_env(tmp_path, uri).items() if not key.startswith("QISKIT_IBM")}
    out = subprocess.run(
        [sys.executable, "-m", "qattn.cli", "ibm", "plan", run_id, "--backend", "ibm_fez"], env=env, capture_output=True,
        text=True, timeout=120,
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "no IBM Quantum account found" in out.stderr and "save_account" in out.stderr and "QISKIT_IBM_TOKEN" in out.stderr
    assert not (tmp_path / "network.log").exists()


def test_bad_requests_are_named(trained, tmp_path, no_network):
    run_id, uri, _ = trained
    mlflow.set_tracking_uri(uri)
    with pytest.raises(HardwareError, match="unknown fake device 'fake_nowhere'; valid: .*fake_manila"):
        resolve_device("fake_nowhere")
    with pytest.raises(HardwareError, match="--docs must pick documents 0..9 of the test split"):
        planning.plan(run_id, "fake_manila", Options(), docs=[10])
    with pytest.raises(HardwareError, match="classical"):
        planning.plan(str(QUICKSTART), "fake_manila", Options(), tokens=10, overrides=["model.attention=classical"])
    with pytest.raises(HardwareError, match="--tokens 30 exceeds the model's max_length of 24"):
        planning.plan(run_id, "fake_manila", Options(), tokens=30)
    with pytest.raises(HardwareError, match="holds no journal.json"):
        lifecycle.retrieve(tmp_path)
    with pytest.raises(HardwareError, match="2 qubits; fake_armonk has 1"):
        planning.plan(str(QUICKSTART), "fake_armonk", Options(), tokens=10, overrides=["model.n_qubits=2"])



def test_damaged_journal_files_are_named_with_what_to_do(trained, tmp_path, no_network):
    """A stage file deleted, a results file truncated: ``status`` (which reads the journal only, so the
    MLflow server may be gone) and ``retrieve`` name the file and what to do; a retrieved job's lost
    values are fetched again."""
    _, uri, _ = trained
    mlflow.set_tracking_uri(uri)
    options = Options(shots=100, resilience_level=0, seed_simulator=4)
    journal = lifecycle.submit(GAUSSIAN[0], "fake_manila", options, split="test", docs=[0], folder=tmp_path / "journal", ideal=True, echo=lambda line: None)
    assert lifecycle.retrieve(journal, echo=lambda line: None) is False  # stage 0 retrieved, stage 1 sent
    first = Journal.load(journal).jobs[0]

    no_stage = shutil.copytree(journal, tmp_path / "no-stage")
    (no_stage / "stage-1.npz").unlink()
    retrieved = CliRunner().invoke(main, ["ibm", "retrieve", str(no_stage)])
    assert retrieved.exit_code == 1 and "Traceback" not in retrieved.output
    assert f"Error: {no_stage / 'stage-1.npz'} is missing: it holds the gate angles of stage 1's circuits" in retrieved.output
    assert "Put it back from a copy" in retrieved.output and "start it again with `qattn ibm submit`" in retrieved.output
    record = json.loads(Journal.path(no_stage).read_text())
    Journal.path(no_stage).write_text(json.dumps({**record, "tracking_uri": f"http://127.0.0.1:{free_port()}"}))  # nothing listens
    out, heavy = run_cli_light(["ibm", "status", str(no_stage)], env=guarded_env(tmp_path, uri))
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert f"{first.job_id}  RETRIEVED" in out.stdout  # the statuses come first
    assert f"Error: {no_stage / 'stage-1.npz'} is missing" in out.stderr
    assert heavy == []  # no model, no MLflow
    assert not (tmp_path / "network.log").exists()

    values = journal / "results" / f"{first.job_id}.npy"
    saved = values.read_bytes()
    values.write_bytes(saved[:100])
    out, heavy = run_cli_light(["ibm", "status", str(journal)], env=guarded_env(tmp_path, uri))
    assert out.returncode == 0, out.stderr
    assert f"{values} is damaged (ValueError: " in out.stdout
    assert f"job {first.job_id}'s values are fetched again by `qattn ibm retrieve {journal}`" in out.stdout
    assert f"{first.job_id}  DONE" in out.stdout and heavy == []
    assert lifecycle.retrieve(journal, echo=lambda line: None) is True
    assert values.read_bytes() == saved


def test_the_journal_keeps_no_tracking_password_and_retrieve_takes_it_from_the_user(monkeypatch):
    journal = Journal(model="run", model_run_id="run", tracking_uri="postgresql://alice:***@db.example/mlflow",
                      mlflow_run_id="eval", device="fake_manila", ideal=True, split="test", docs=[0], options=Options())
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlflow.set_tracking_uri("sqlite:///elsewhere.db")
    with pytest.raises(HardwareError, match=r"needs its password, which the journal does not keep: pass it with --tracking-uri"):
        lifecycle.journal_store(journal)
    mlflow.set_tracking_uri("postgresql://alice:s3cret@db.example/mlflow")  # --tracking-uri with the password
    assert lifecycle.journal_store(journal) == "postgresql://alice:s3cret@db.example/mlflow"
    http = journal.model_copy(update={"tracking_uri": "http://127.0.0.1:5000"})  # the password went to MLflow's variables
    mlflow.set_tracking_uri("http://bob:s3cret@127.0.0.1:5000")
    assert lifecycle.journal_store(http) == "http://bob:s3cret@127.0.0.1:5000"
    mlflow.set_tracking_uri("sqlite:///elsewhere.db")
    assert lifecycle.journal_store(http) == "http://127.0.0.1:5000"


# -- annealing attention: the qaoa solver's sampling circuits ------------------------------------


def test_a_qaoa_model_is_planned_submitted_and_retrieved_in_another_process(trained, tmp_path, no_network, monkeypatch):
    """One sampling circuit per QUBO; the angles are optimised at submit and kept in the stage file, so
    retrieve (here from a fresh process, then this one) neither optimises again nor accepts other QUBOs."""
    _, uri, _ = trained
    monkeypatch.setenv("QISKIT_IBM_TOKEN", SECRET)
    mlflow.set_tracking_uri(uri)
    shots = 25_000
    options = Options(shots=shots, resilience_level=0, seed_simulator=5, max_executions=5 * shots)  # 5 circuits per job
    plans, kernel, _ = planning.plan(ANNEALING[0], "fake_manila", options, docs=[0, 1])
    assert kernel == "qaoa" and list(plans) == ["qaoa"] and [p.kind for p in plans["qaoa"]] == ["bits", "bits"]
    local, globe = plans["qaoa"]
    chunks = 2 * 4  # documents of 10 tokens: 4 chunks of 3, the last one token (and a summary token each)
    assert (local.circuits, globe.circuits) == (chunks, 2) and local.executions == chunks * shots and local.jobs == 2
    assert local.depth > 0 and local.two_qubit_gates > 0 and 0 < local.qpu_seconds < 60

    journal = lifecycle.submit(ANNEALING[0], "fake_manila", options, split="test", docs=[0, 1], folder=tmp_path / "qaoa",
                              ideal=True, echo=lambda line: None)
    stage = np.load(journal / "stage-0.npz")
    assert stage["qubits"].tolist() == [2, 2, 4, 4, 4, 4, 4, 4] and stage["rows"].tolist() == [3, 7, 0, 1, 2, 4, 5, 6]
    assert stage["angles"].shape == (chunks, 14) and not stage["angles"][:2, 5:].any()  # a 2-qubit circuit has 5 slots
    assert sorted(Journal.load(journal).ranges(0)) == [(0, 5), (5, 8)]  # the first job holds 2- and 4-qubit pubs
    lost = Journal.load(journal).ranges(0)[(5, 8)][0].job_id
    (journal / "local" / f"{lost}.npz").unlink()  # as if its process had died: resubmit rebuilds its circuits
    assert lifecycle.retrieve(journal, echo=lambda line: None) is False
    assert lifecycle.resubmit(journal, echo=lambda line: None) == 1

    command = [sys.executable, "-m", "qattn.cli", "ibm", "retrieve", str(journal)]
    out = subprocess.run(command, env=guarded_env(tmp_path, uri), capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert "stage 1: 2 bits circuits x 25000 shots in 1 job(s) on fake_manila" in out.stdout
    assert not (tmp_path / "network.log").exists()

    changed = shutil.copytree(journal, tmp_path / "changed")
    arrays = dict(np.load(changed / "stage-0.npz"))
    np.savez(changed / "stage-0.npz", **{**arrays, "qubos": arrays["qubos"] + 0.01})
    with pytest.raises(HardwareError, match="stage 0's circuits were submitted for other QUBOs than the model now"):
        lifecycle.retrieve(changed, echo=lambda line: None)

    def refuse(*args):
        raise AssertionError("retrieve optimised the angles again")

    monkeypatch.setattr(QaoaSolver, "optimise", refuse)
    assert lifecycle.retrieve(journal, echo=lambda line: None) is True
    record = Journal.load(journal)
    assert [(s.kind, s.circuits) for s in record.stages] == [("bits", chunks), ("bits", 2)]
    assert [job.status for job in record.jobs] == ["RETRIEVED", "LOST", "RETRIEVED", "RETRIEVED"]
    run = MlflowClient(uri).get_run(record.mlflow_run_id)
    assert run.data.tags["mlflow.parentRunId"] == ANNEALING[0] and run.info.status == "FINISHED"
    metrics = run.data.metrics
    tolerance = 5 * np.sqrt(0.25 / shots)  # five standard deviations of a frequency
    for stage in (0, 1):  # 25,000 noiseless shots of <= 16 states: the optimum is always among them
        assert metrics[f"stage_{stage}/optimum_found"] == 1.0 and metrics[f"stage_{stage}/max_energy_gap"] == 0.0
        assert metrics[f"stage_{stage}/max_abs_error"] < tolerance  # optimum's frequency vs simulated probability
        assert 0 < metrics[f"stage_{stage}/optimum_probability_simulated"] < 1
    assert metrics["local_attention/max_abs_diff"] == 0.0 and metrics["prediction_agreement"] == 1.0


def test_qaoa_plans_name_qubos_a_device_cannot_hold_and_solvers_it_cannot_run(no_network):
    qaoa = ["model.attention=annealing", "model.annealing.solver=qaoa", "model.num_heads=1", "model.max_length=8"]
    out = CliRunner().invoke(main, [
        "ibm", "plan", str(QUICKSTART), "--backend", "fake_manila", "--tokens", "7", "--shots", "100",
        *(arg for override in [*qaoa, "model.chunk_size=4"] for arg in ("--set", override)),
    ])
    assert out.exit_code == 0, out.output
    rows = [line.split() for line in out.output.splitlines() if line.startswith("qaoa (model)")]
    assert rows[0][2:6] == ["0", "bits", "2", "200"]  # chunks of 4 + 3 tokens: two QUBOs of 5 and 4 variables
    assert rows[1][2:6] == ["1", "bits", "1", "100"]  # the two chunk summaries
    with pytest.raises(HardwareError, match=(
        r"stage 0's QUBOs have up to 6 free variables, one qubit each; fake_manila has 5 qubits: choose a larger "
        r"device, or a model with smaller QUBOs \(fewer model.num_heads, a smaller model.chunk_size")):
        planning.plan(str(QUICKSTART), "fake_manila", Options(), tokens=7, overrides=[*qaoa, "model.chunk_size=5"])
    with pytest.raises(HardwareError, match="uses the 'exact' solver, which runs on classical hardware"):
        exact = [*qaoa, "model.chunk_size=4", "model.annealing.solver=exact"]
        planning.plan(str(QUICKSTART), "fake_manila", Options(), tokens=7, overrides=exact)


def test_adaptive_mode_journals_both_stages_and_resumes_after_a_kill(trained, tmp_path, no_network, monkeypatch):
    """A pilot stage, then a stage of more shots where the pilot says the weights are uncertain, per
    kernel call; killed after the first job, the journal carries it to the end in another process."""
    run_id, uri, _ = trained
    monkeypatch.setenv("QISKIT_IBM_TOKEN", SECRET)
    mlflow.set_tracking_uri(uri)
    journal = tmp_path / "adaptive"
    command = [
        sys.executable, "-m", "qattn.cli", "ibm", "submit", run_id, "--backend", "fake_manila", "--ideal", "--docs", "0:2",
        "--resilience-level", "0", "--seed-simulator", "1", "--target-error", "0.005", "--adaptive", "--pilot-shots", "32",
        "--max-executions", "200000", "--journal", str(journal),
    ]
    submit_and_kill(command, journal, guarded_env(tmp_path, uri))

    finished, rounds = False, 0
    while not finished and rounds < 12:
        lifecycle.resubmit(journal, echo=lambda line: None)
        finished, rounds = lifecycle.retrieve(journal, echo=lambda line: None), rounds + 1
    record = Journal.load(journal)
    assert finished and record.options.adaptive and record.options.target_error == 0.005
    pilot, refine = record.stages[0], record.stages[1]
    assert pilot.kind == refine.kind == "fidelity" and pilot.levels == [(0, pilot.circuits, 32)]  # every needed pair, --pilot-shots each
    assert refine.levels and refine.circuits <= pilot.circuits and all(shots > 0 for _, _, shots in refine.levels)
    assert np.all(np.diff(np.load(journal / "stage-1.npz")["shots"]) >= 0)  # rows ascending in shots: one job per shot count
    assert {tuple(job.rows) for job in record.stage_jobs(1)} >= {(a, b) for a, b, _ in refine.levels if b - a <= 6}
    metrics = MlflowClient(uri).get_run(record.mlflow_run_id).data.metrics
    assert metrics["local_attention/mean_row_tv"] < 4 * 0.005 and metrics["prediction_agreement"] == 1.0
