"""MLflow: where every run is recorded. Default store is MLflow's own (``sqlite:///mlflow.db``);
any tracking URI, a real ``mlflow server`` included, works unchanged."""

from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from qattn.config import ExperimentConfig, flatten

PACKAGES = ("qattn", "torch", "pennylane", "qiskit", "qiskit-aer", "mlflow", "tokenizers", "numpy")
MAX_PARAM_LENGTH = 6000  # MLflow's limit on a param value


class TrackingError(RuntimeError):
    """The tracking store cannot be used; the message says how to fix it."""


def connect(config: ExperimentConfig) -> str:
    """Point MLflow at the configured store, check it answers, select the experiment; return the URI."""
    if config.tracking.uri:
        mlflow.set_tracking_uri(config.tracking.uri)
    uri = check_store()
    mlflow.set_experiment(config.tracking.experiment)
    return uri


def check_store() -> str:
    """The current tracking URI, after checking that the store answers (a clear error if not)."""
    uri = mlflow.get_tracking_uri()
    try:
        with quick_requests():
            MlflowClient(uri).search_experiments(max_results=1)
    except Exception as err:  # noqa: BLE001 - any failure here means the same thing to the user
        raise TrackingError(
            f"cannot reach the MLflow tracking store at {uri} ({type(err).__name__}: {str(err)[:200]}). "
            "Start the server (e.g. `mlflow server --host 127.0.0.1 --port 5000`), or set tracking.uri "
            "(or MLFLOW_TRACKING_URI) to a reachable store such as sqlite:///mlflow.db"
        ) from None
    return uri


@contextmanager
def quick_requests():
    """No retries and a short timeout for the reachability check only (training keeps MLflow's own)."""
    quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
    saved = {key: os.environ.get(key) for key in quick}
    os.environ.update({key: value for key, value in quick.items() if saved[key] is None})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)


def run_name(config: ExperimentConfig) -> str:
    """Deterministic and readable: data set, attention kind, kernel, qubits, heads, seed."""
    m = config.model
    kind = f"quantum-{m.kernel}-q{m.n_qubits}" if m.attention == "quantum" else "classical-dot"
    return f"{config.data.name}-{kind}-h{m.num_heads}-s{config.train.seed}"


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[f"version.{name}"] = version(name)
        except PackageNotFoundError:
            versions[f"version.{name}"] = "not installed"
    return versions


def log_run_metadata(config: ExperimentConfig, parameter_counts: dict[str, int]) -> None:
    """Resolved config as flattened params, parameter counts, git commit and package versions."""
    params: dict[str, Any] = {key: str(value)[:MAX_PARAM_LENGTH] for key, value in flatten(config).items()}
    params.update({f"parameters.{kind}": count for kind, count in parameter_counts.items()})
    params.update(package_versions())
    mlflow.log_params(params)
    commit = git_commit()
    mlflow.set_tags({"mlflow.source.git.commit": commit, "git_commit": commit, "attention": config.model.attention})
