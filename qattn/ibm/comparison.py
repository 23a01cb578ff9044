"""Hardware against exact simulation, once every stage is retrieved: per stage, the circuits' values
against their exact ones (or, for QUBO sampling, the samples against the exact optima), then the
attention weights and predictions of the model with the device's answers against the exact model;
all logged to the evaluation's MLflow run with the arrays behind them.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from mlflow.entities import Metric, RunTag
from mlflow.tracking import MlflowClient

from qattn.circuits import FeatureMap
from qattn.circuits.qubit_order import z_signs
from qattn.executors import AerExecutor

from .evaluation import hardware_solver, quantum_kernels_of
from .journal import Journal
from .staged_solver import sampling_metrics

LOGGED = "qattn.ibm.logged.stage-"  # + stage: a tag on the evaluation run, set with its metrics; value: the journal


def logged_stages(client: MlflowClient, run_id: str) -> list[int]:
    """The stages whose comparison the evaluation run ``run_id`` already holds. MLflow, not a journal, knows
    this: a copy of a journal cannot know that another copy logged the evaluation."""
    tags = client.get_run(run_id).data.tags
    return sorted(int(key.removeprefix(LOGGED)) for key in tags if key.startswith(LOGGED))


def log_comparison(folder, journal, evaluation, hardware, exact, results, client) -> dict[str, float]:
    """Compare, and log the metrics with a :data:`LOGGED` tag per stage in one batch (so a second retrieve, of
    this journal or of a copy, sees them logged and logs nothing), then the arrays and the journal."""
    run_id, now = journal.mlflow_run_id, int(time.time() * 1000)
    metrics = {}
    for stage in journal.stages:
        arrays, values = results[stage.stage]
        if stage.kind == "bits":  # the samples against the exact optima of the same QUBOs
            metrics |= sampling_metrics(hardware_solver(evaluation.model), stage.stage, arrays, values)
            continue
        if stage.kind == "randomized":  # bitstrings: their overlaps are judged through the attention weights below
            continue
        fmap = quantum_kernels_of(evaluation.model)[0].feature_map
        error = np.abs(values - exact_values(fmap, stage.kind, arrays["angles"]))
        metrics |= {f"stage_{stage.stage}/mean_abs_error": float(error.mean()), f"stage_{stage.stage}/max_abs_error": float(error.max())}
    for name in ("local_attention", "global_attention"):
        ours, reference = getattr(hardware, name), getattr(exact, name)
        if ours is not None:
            metrics[f"{name}/max_abs_diff"] = float((ours - reference).abs().max())
            metrics[f"{name}/mean_abs_diff"] = float((ours - reference).abs().mean())
            metrics[f"{name}/mean_row_tv"] = float(row_tv(ours, reference))
    predicted, expected = hardware.logits.argmax(-1), exact.logits.argmax(-1)
    metrics["prediction_agreement"] = float((predicted == expected).float().mean())
    if evaluation.labels is not None:
        labels = torch.tensor(evaluation.labels)
        metrics["hardware/accuracy"] = float((predicted == labels).float().mean())
        metrics["exact/accuracy"] = float((expected == labels).float().mean())
    logged = [RunTag(f"{LOGGED}{stage.stage}", str(Path(folder).resolve())) for stage in journal.stages]
    client.log_batch(run_id, metrics=[Metric(key, value, now, 0) for key, value in metrics.items()], tags=logged)
    with tempfile.TemporaryDirectory() as scratch:
        arrays = {"hardware_logits": hardware.logits.numpy(), "exact_logits": exact.logits.numpy(), "docs": np.array(journal.docs)}
        for name in ("local_attention", "global_attention"):
            if getattr(hardware, name) is not None:
                arrays[f"hardware_{name}"], arrays[f"exact_{name}"] = getattr(hardware, name).numpy(), getattr(exact, name).numpy()
        np.savez(Path(scratch) / "hardware_vs_exact.npz", **arrays)
        client.log_artifact(run_id, str(Path(scratch) / "hardware_vs_exact.npz"))
    client.log_artifact(run_id, str(Journal.path(folder)))
    client.set_terminated(run_id, "FINISHED")
    return metrics


def row_tv(weights: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Mean total-variation distance between rows of attention weights, over rows with any weight."""
    tv = 0.5 * (weights - reference).abs().sum(-1)
    return tv[reference.sum(-1) > 0].mean()


def exact_values(fmap: FeatureMap, kind: str, angles: np.ndarray) -> np.ndarray:
    """What each ``fidelity`` (``(M,)``) or ``z`` (``(M, n)``) circuit of the angle rows estimates,
    computed exactly from statevectors (the yardstick for sampled and hardware values)."""
    states = AerExecutor().program(fmap, "states")
    if kind == "z":
        return (np.abs(states(angles)) ** 2) @ z_signs(fmap.n_qubits)
    half = angles.shape[1] // 2
    psi_q, psi_k = states(angles[:, :half]), states(angles[:, half:])
    return np.abs(np.sum(psi_k.conj() * psi_q, axis=1)) ** 2
