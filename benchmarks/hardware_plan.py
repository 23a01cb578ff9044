"""Hardware plans from an error budget, checked on sampled Aer: QPU time vs attention-weight error and accuracy.

For a trained model and its documents, ``qattn ibm plan``'s planner (:func:`qattn.ibm.planning.estimator_plans`)
gives every fidelity estimator's QPU time on a device and its predicted error (mean over rows of the
total-variation distance of the attention weights to the exact ones). Each plan is then run on
sampled Aer (noiseless, or with ``--noise`` the device's noise model) with the same shots, budget
or rotations, and its error measured: every fidelity kernel call's attention weights (all layers,
heads and rows) against exact simulation of the same call. Curves over ``--targets``: QPU time vs
measured error and vs accuracy on the documents. Each point is an MLflow run (experiment
``hardware-plan``) under one parent per model; the table and plot go to ``--out``.

    python benchmarks/hardware_plan.py RUN_ID --docs 0:16 --targets 0.01 0.02 0.05
    python benchmarks/hardware_plan.py RUN_ID --min-tokens 512 --docs 0:1   # the first test document of >= 512 tokens
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import torch

from qattn.executors import Executor, PennyLaneExecutor, SampledAerExecutor, ShotBudget
from qattn.executors.budget import row_weights
from qattn.experiment import load_saved
from qattn.ibm.evaluation import Evaluation, documents, forward
from qattn.ibm.journal import Options
from qattn.ibm.planning import estimator_plans, format_seconds
from qattn.runtime.devices import resolve_device
from qattn.trainer import pad_batch


class Measured(Executor):
    """Wraps an executor; for every fidelity call keeps the attention weights it gives and the exact ones."""

    name, max_qubits = "measured", 20

    def __init__(self, inner: Executor) -> None:
        self.inner, self.exact, self.tv = inner, PennyLaneExecutor(), []

    def fidelities(self, fmap, x_q, w_q, x_k, w_k, scale=None, needed=None):
        scores = self.inner.fidelities(fmap, x_q, w_q, x_k, w_k, scale, needed)
        exact = self.exact.fidelities(fmap, x_q, w_q, x_k, w_k, scale)
        keys = scores.shape[-1]
        mask = (torch.ones(scores.shape, dtype=torch.bool) if needed is None else needed.expand(scores.shape)).reshape(-1, keys).numpy()
        ones = np.ones(len(mask))
        ours = row_weights(scores.reshape(-1, keys).double().numpy(), ones, mask)
        reference = row_weights(exact.reshape(-1, keys).double().numpy(), ones, mask)
        self.tv.append((0.5 * np.abs(ours - reference).sum(-1))[mask.any(-1)])
        return scores

    def z_expectations(self, fmap, x, w):
        return self.inner.z_expectations(fmap, x, w)


def executor_for(options: dict, base_shots: int, seed: int) -> Executor:
    if options.get("estimator") == "randomized":
        return SampledAerExecutor(shots=options["shots"], estimator="randomized", rotations=options["rotations"], seed=seed)
    if "target_error" in options:
        prior = "adaptive" if options.get("adaptive") else "exact"
        return SampledAerExecutor(shots=base_shots, seed=seed, budget=ShotBudget(options["target_error"], prior))
    return SampledAerExecutor(shots=options["shots"], seed=seed)


def evaluation_for(run_id: str, split: str, docs: list[int], min_tokens: int | None) -> Evaluation:
    saved = load_saved(run_id)
    if min_tokens is None:
        return documents(saved, split, docs)
    encoded = saved.encoded(split)
    long = [i for i, ids in enumerate(encoded.ids) if len(ids) >= min_tokens][: len(docs)]
    if not long:
        sys.exit(f"no {split} document of the model has {min_tokens} tokens (max_length {saved.config.model.max_length})")
    return Evaluation(saved.model, pad_batch(encoded.ids, long), [encoded.labels[i] for i in long], split, long)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_id", help="MLflow run id of a trained fidelity-kernel model")
    parser.add_argument("--split", default="test")
    parser.add_argument("--docs", default="0:8", help="range a:b of documents")
    parser.add_argument("--min-tokens", type=int, help="take documents with at least this many tokens")
    parser.add_argument("--backend", default="fake_fez", help="device whose gate and readout times price the plan")
    parser.add_argument("--targets", type=float, nargs="+", default=[0.01, 0.02, 0.05])
    parser.add_argument("--fixed-shots", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--skip", nargs="*", default=[], help="estimators not to run on Aer (e.g. randomized): planned only")
    parser.add_argument("--max-aer-circuits", type=int, default=400_000,
                        help="plans of more circuits are priced and predicted, not run on Aer (its time grows with circuits)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/hardware-plan"))
    args = parser.parse_args()
    start, stop = (int(v) for v in args.docs.split(":"))
    evaluation = evaluation_for(args.run_id, args.split, list(range(start, stop)), args.min_tokens)
    device = resolve_device(args.backend)
    command = "python " + shlex.join(sys.argv)
    tokens = int((evaluation.ids != 0).sum())

    points = []  # (family, label, plan, measured error, accuracy, agreement, MLflow run)
    exact_logits = forward(evaluation, PennyLaneExecutor()).logits
    labels = torch.tensor(evaluation.labels)
    mlflow.set_experiment("hardware-plan")
    with mlflow.start_run(run_name=f"plan-{args.run_id[:8]}-{len(evaluation.docs)}docs") as parent:
        mlflow.log_params({"model_run": args.run_id, "docs": evaluation.docs[:50], "tokens": tokens, "backend": args.backend,
                           "command": command[:500]})
        plans = estimator_plans(evaluation, device, Options(shots=max(args.fixed_shots)), args.targets, args.fixed_shots)
        for plan in plans:
            label = plan.estimator if plan.family in ("fixed", "randomized") else f"{plan.estimator}, target {plan.target}"
            measured = accuracy = agreement = float("nan")
            elapsed = 0.0
            if plan.family not in args.skip and plan.circuits <= args.max_aer_circuits:
                executor = Measured(executor_for(plan.options, max(args.fixed_shots), args.seed))
                began = time.perf_counter()
                logits = forward(evaluation, executor).logits
                elapsed = time.perf_counter() - began
                measured = float(np.concatenate(executor.tv).mean())
                accuracy = float((logits.argmax(-1) == labels).float().mean())
                agreement = float((logits.argmax(-1) == exact_logits.argmax(-1)).float().mean())
            with mlflow.start_run(run_name=f"{plan.family}-{label}", nested=True) as child:
                mlflow.log_params({"family": plan.family, "estimator": label, "target": plan.target or "",
                                   **{f"options.{k}": v for k, v in plan.options.items()}})
                mlflow.log_metrics({"qpu_seconds": plan.qpu_seconds, "executions": plan.executions, "circuits": plan.circuits,
                                    "predicted_error": plan.predicted_error, "measured_error": measured,
                                    "accuracy": accuracy, "exact_agreement": agreement, "aer_seconds": elapsed})
            points.append((plan.family, label, plan, measured, accuracy, agreement, child.info.run_id))
            print(f"{plan.family:10s} {label:45s} QPU {format_seconds(plan.qpu_seconds):>9s}  predicted "
                  f"{plan.predicted_error:.4f}  measured {measured:.4f}  accuracy {accuracy:.3f}  ({elapsed:.0f} s on Aer)", flush=True)
        exact_accuracy = float((exact_logits.argmax(-1) == labels).float().mean())
        mlflow.log_metric("exact_accuracy", exact_accuracy)
        write_report(args, command, parent.info.run_id, evaluation, tokens, points, exact_accuracy)


def write_report(args, command, parent_id, evaluation, tokens, points, exact_accuracy) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args.out.mkdir(parents=True, exist_ok=True)
    name = f"{args.run_id[:8]}-{len(evaluation.docs)}docs"
    baseline = next(p.qpu_seconds for f, _, p, *_ in points if f == "fixed" and p.options.get("shots") == max(args.fixed_shots))
    lines = [f"Generated by `{command}`; MLflow parent run `{parent_id}` (experiment `hardware-plan`).", "",
             f"{len(evaluation.docs)} {evaluation.split} document(s), {tokens} tokens, priced on {args.backend}; "
             f"exact-simulation accuracy on them {exact_accuracy:.3f}.", "",
             "| estimator | circuits | executions | QPU time | vs fixed 4096 | predicted error | measured error (sampled Aer) | measured / predicted | accuracy | agrees with exact | MLflow run |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for family, label, plan, measured, accuracy, agreement, run_id in points:
        ratio = measured / plan.predicted_error if plan.predicted_error > 0 else float("nan")
        lines.append(f"| {label} | {plan.circuits:,} | {plan.executions:,} | {format_seconds(plan.qpu_seconds)} | "
                     f"{baseline / plan.qpu_seconds:.1f}x less | {plan.predicted_error:.4f} | {measured:.4f} | {ratio:.2f} | "
                     f"{accuracy:.3f} | {agreement:.3f} | `{run_id}` |")
    (args.out / f"{name}.md").write_text("\n".join(lines) + "\n")
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for family in ("fixed", "budgeted", "adaptive", "randomized"):
        chosen = sorted((p.qpu_seconds, m, a) for f, _, p, m, a, *_ in points if f == family)
        if chosen:
            qpu, err, acc = zip(*chosen)
            left.plot(qpu, err, "o-", label=family)
            right.plot(qpu, acc, "o-", label=family)
    left.set(xscale="log", yscale="log", xlabel="QPU time [s]", ylabel="measured mean row TV of attention weights")
    right.set(xscale="log", xlabel="QPU time [s]", ylabel="accuracy on the documents")
    right.axhline(exact_accuracy, color="grey", linestyle=":", label="exact")
    left.legend(), right.legend()
    figure.suptitle(f"{args.run_id[:8]}: {len(evaluation.docs)} document(s), {tokens} tokens, {args.backend}")
    figure.tight_layout()
    figure.savefig(args.out / f"{name}.png", dpi=110)
    mlflow.log_artifact(str(args.out / f"{name}.md"))
    mlflow.log_artifact(str(args.out / f"{name}.png"))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
