"""A training run killed with SIGKILL and resumed ends exactly where an uninterrupted run ends."""

import os
import signal
import subprocess
import sys
import time

import torch
from mlflow.tracking import MlflowClient

from tests.conftest import QUICKSTART


def train_command(overrides, *flags):
    args = [arg for override in overrides for arg in ("--set", override)]
    return [sys.executable, "-m", "qattn.cli", "train", str(QUICKSTART), *args, *flags]


def test_resume_after_sigkill_matches_the_uninterrupted_run(tmp_path, tiny):
    common = tiny + ["train.epochs=3", "train.checkpoint_every=2", "train.threads=1", "data.synthetic.train_docs=160"]
    reference = common + [f"train.output_dir={tmp_path / 'reference'}", f"tracking.uri=sqlite:///{tmp_path / 'ref.db'}"]
    subprocess.run(train_command(reference), check=True, capture_output=True, timeout=300)

    (reference_dir,) = (last.parent for last in (tmp_path / "reference").glob("synthetic-quantum-fidelity-q2-h2-s0-*/last.pt"))
    run_dir = tmp_path / "runs" / reference_dir.name  # where results go is not part of a run's identity
    process = subprocess.Popen(train_command(common), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not (run_dir / "last.pt").exists():
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL
    killed = torch.load(run_dir / "last.pt", weights_only=True)
    assert killed["state"]["global_step"] < 60  # killed well before the end (3 epochs x 20 steps)

    resumed = subprocess.run(train_command(common, "--resume"), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    expected = torch.load(reference_dir / "last.pt", weights_only=True)
    actual = torch.load(run_dir / "last.pt", weights_only=True)
    assert actual["state"]["global_step"] == expected["state"]["global_step"] == 60
    for got, want in zip(actual["state"]["history"], expected["state"]["history"], strict=True):
        for key in ("train/epoch_loss", "dev/loss", "dev/accuracy", "dev/macro_f1"):
            assert abs(got[key] - want[key]) <= 1e-6 * max(1.0, abs(want[key])), key
    for name, tensor in expected["model"].items():
        torch.testing.assert_close(actual["model"][name], tensor, rtol=1e-5, atol=1e-6)

    assert actual["mlflow_run_id"] == killed["mlflow_run_id"]  # the resumed run continues the same MLflow run
    test_accuracy = [
        MlflowClient(uri).get_run(run_id).data.metrics["test/accuracy"]
        for uri, run_id in ((f"sqlite:///{tmp_path / 'ref.db'}", expected["mlflow_run_id"]),
                            (f"sqlite:///{tmp_path / 'mlflow.db'}", actual["mlflow_run_id"]))
    ]
    assert test_accuracy[0] == test_accuracy[1]
