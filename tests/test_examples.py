"""Every script in examples/ runs as a reader would run it (a fresh interpreter, from the repository root),
on tiny sizes, offline, writing only under tmp_path; each test checks what the script says it shows."""

import os
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from tests.conftest import tiny_overrides

ROOT = Path(__file__).resolve().parents[1]
GUARD = Path(__file__).parent / "network_guard"
RUN_ID = r"[0-9a-f]{32}"


def sizes(folder: Path) -> list[str]:
    """The tiny quickstart settings of :func:`tiny_overrides`, without its paths: each example puts its
    store, checkpoints and tokenizers under its --workdir."""
    paths = ("train.output_dir=", "tokenizer.cache_dir=", "tracking.uri=")
    return [o for o in tiny_overrides(folder) if not o.startswith(paths)]


def with_sets(overrides: list[str]) -> list[str]:
    return [arg for override in overrides for arg in ("--set", override)]


def run_example(name: str, args: list[str], tmp_path: Path) -> str:
    """``python examples/<name> ARGS`` from the repository root, the network refused (and logged), no
    tracking URI inherited; returns its stdout after checking it exited 0 and reached for no network."""
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    env |= {"PYTHONPATH": os.pathsep.join([str(GUARD), env.get("PYTHONPATH", "")]), "PYTHONDONTWRITEBYTECODE": "1",
            "QATTN_NETWORK_LOG": str(tmp_path / "network.log")}
    done = subprocess.run([sys.executable, f"examples/{name}", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert not (tmp_path / "network.log").exists(), (tmp_path / "network.log").read_text()
    return done.stdout


def test_transformer_layer_trains_with_quantum_self_attention(tmp_path):
    steps = 30
    args = ["--steps", str(steps), "--batch-size", "16", "--seq-len", "6", "--qubits", "2"]
    out = run_example("transformer_layer.py", args, tmp_path)
    assert "self_attn: QuantumMultiheadAttention (fidelity, 2 qubits/head)" in out
    assert "output shape: (2, 6, 16)" in out
    calls, gradient = re.search(r"quantum self_attn ran (\d+) times, .* \|g\|_1 = (\S+)", out).groups()
    assert int(calls) == steps + 3  # every training step, both evaluations (eval mode) and the shape check
    assert float(gradient) > 0
    before, after = map(float, re.search(r"held-out loss: (\S+) -> (\S+)", out).groups())
    assert after < 0.8 * before, out


def test_custom_circuit_family_is_used_by_name_in_a_layer_and_a_config(tmp_path):
    args = ["--workdir", str(tmp_path / "work"), "--qubits", "2", "--steps", "10", *with_sets(sizes(tmp_path))]
    out = run_example("custom_circuit_family.py", args, tmp_path)
    assert "circuit weights: [(2, 1, 2, 2, 2), (2, 1, 2, 2, 2)]" in out  # (heads, uploads, layers, qubits, 2)
    before, after = map(float, re.search(r"held-out MSE: (\S+) -> (\S+)", out).groups())
    assert after < before
    name = r"\(synthetic-quantum-fidelity-q2-h2-s0\)"
    run_id = re.search(rf"MLflow run ({RUN_ID}) {name}: model.circuit = alternating_layered", out)
    run = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'work' / 'mlflow.db'}").get_run(run_id.group(1))
    assert run.data.params["model.circuit"] == "alternating_layered" and run.info.status == "FINISHED"
    assert run.info.artifact_uri.startswith((tmp_path / "work" / "artifacts").as_uri())


@pytest.mark.parametrize("solver", ["exact", "sa", "batched", "qaoa"])
def test_annealing_attention_selects_tokens_and_reports_energies(tmp_path, solver):
    options = ["--option", "maxiter=5", "--option", "shots=256"] if solver == "qaoa" else []
    args = ["--solver", solver, "--tokens", "5", "--batch", "3", *options]
    out = run_example("annealing_attention.py", args, tmp_path)
    assert "output (3, 5, 16), weights (3, 2, 5, 5)" in out
    assert len(re.findall(r"^sequence \d: head 0 selects \[[\d, ]*\]; head 1 selects", out, flags=re.MULTILINE)) == 3
    found = [float(e) for e in re.search(rf"problems of 10 variables\), {solver}: (.*)", out).group(1).split()]
    exact = [float(e) for e in re.search(r"exact optima: (.*)", out).group(1).split()]
    assert len(found) == len(exact) == 3
    assert all(f >= e - 1e-4 for f, e in zip(found, exact))  # nothing beats the optimum
    if solver == "exact":
        assert found == exact and "at the optimum 3/3" in out
    if solver == "qaoa":
        assert len(re.findall(r"^qaoa problem \d: \d+ qubits, <H> = ", out, flags=re.MULTILINE)) == 3


def test_ibm_cycle_plans_submits_and_retrieves_on_a_fake_device(tmp_path):
    small = [  # documents of at most 24 tokens, as tests/test_ibm.py: two stages of a few hundred circuits
        *sizes(tmp_path), "data.synthetic.train_docs=32", "data.synthetic.dev_docs=10", "data.synthetic.test_docs=10",
        "data.synthetic.min_words=12", "data.synthetic.max_words=20", "model.chunk_size=12", "model.max_length=24",
        "tracking.attention_maps=0",
    ]
    work = tmp_path / "work"
    out = run_example("ibm_cycle.py", ["--workdir", str(work), "--epochs", "1", "--docs", "0:2", "--shots", "1000",
                                       "--resilience-level", "0", "--ideal", *with_sets(small)], tmp_path)
    model = re.search(rf"trained synthetic-quantum-gaussian-q2-h2-s0: MLflow run ({RUN_ID})", out).group(1)
    assert re.search(r"^gaussian \(model\)\s+0\s+z\s+\d", out, flags=re.MULTILINE)  # the model's kernel, marked
    assert re.search(r"^fidelity\s+1\s+fidelity\s+\d", out, flags=re.MULTILINE)
    assert "status: 1 stage(s) submitted, jobs ['DONE'], problems []" in out
    assert f"retrieved: True, after 2 retrieve(s); 2 job(s) in {work / 'ibm-jobs' / model}-fake_manila" in out
    artifacts = r"artifacts \[.*'hardware_vs_exact.npz'.*\]"
    evaluation = re.search(rf"MLflow run ({RUN_ID}), child of {model}: \d+ metrics, {artifacts}", out)
    metrics = mlflow.MlflowClient(f"sqlite:///{work / 'mlflow.db'}").get_run(evaluation.group(1)).data.metrics
    assert metrics["stage_0/max_abs_error"] < 5 / 1000**0.5  # <Z> from 1000 noiseless shots
    printed = rf"^  stage_0/max_abs_error +{metrics['stage_0/max_abs_error']:.4f}$"  # by retrieve
    assert re.search(printed, out, flags=re.MULTILINE)


def test_grid_results_are_read_back_from_mlflow_and_reported(tmp_path):
    work = tmp_path / "work"
    args = ["--workdir", str(work), "--seeds", "1", *with_sets(sizes(tmp_path))]
    out = run_example("grid_results.py", args, tmp_path)
    parent = re.search(rf"grid parent run ({RUN_ID}): 2 cells finished", out).group(1)
    assert re.search(rf"from MLflow: grid [0-9a-f]+, parent run {parent}, 2 child runs", out)
    rows = dict(re.findall(rf"^(classical|quantum fidelity)\s+0\s+(\d\.\d{{4}})  {RUN_ID}$", out, flags=re.MULTILINE))
    assert set(rows) == {"classical", "quantum fidelity"}
    client = mlflow.MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    children = client.search_runs([client.get_experiment_by_name("grid-results").experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent}'")
    report = (work / "results" / "quickstart.md").read_text()
    for run in children:
        assert run.info.run_id in out and run.info.run_id in report
    assert f"mean test accuracy, classical: {rows['classical']} over 1 seed(s)" in out
    assert f"report: {work / 'results' / 'quickstart.md'}" in out


def test_listops_floors_prints_the_rules_a_model_must_beat(tmp_path):
    small = ["data.listops.train_docs=200", "data.listops.dev_docs=50", "data.listops.test_docs=100",
             "data.listops.min_length=20", "data.listops.max_length=80"]
    out = run_example("listops_floors.py", with_sets(small), tmp_path)
    assert "ListOps: 200 training, 50 dev, 100 test sequences" in out
    assert re.search(r"outermost operator -> its most frequent training value: \[MAX -> \d, \[MED -> \d, \[MIN -> \d, \[SM -> \d", out)
    floors = {name: (float(dev), float(test)) for name, dev, test in
              re.findall(r"^(most frequent class|outermost operator) +(\S+) +(\S+)$", out, re.MULTILINE)}
    assert set(floors) == {"most frequent class", "outermost operator"}
    assert all(0 < value < 100 for pair in floors.values() for value in pair)
    assert floors["outermost operator"][0] > floors["most frequent class"][0]  # the first token tells much
