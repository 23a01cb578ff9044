"""Reports of a comparison grid, from MLflow only (nothing is re-trained or re-evaluated).

    qattn report imdb                 # the latest grid parent run in MLflow experiment "imdb"
    qattn report 3f2c...              # a grid parent run id

Writes ``results/<name>.md`` (mean +- std over seeds per attention kind of test accuracy and
macro-F1, and of dev accuracy at the chosen checkpoint, the figure hyper-parameters are chosen on;
parameter counts, epoch time, every MLflow run id and the command that ran the grid) and its plots under
``results/<name>/``, and logs both to the parent run. The report names the command that regenerates
it by the parent run id, which keeps meaning the same grid after newer grids land in the experiment.
"""

from __future__ import annotations

import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
from mlflow.entities import Run  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from qattn.grid import COMMAND_TAG, GRID_TAG, NAME_TAG, finished_children  # noqa: E402
from qattn.tracking import EPOCH_TAG, check_store, mask_uri  # noqa: E402


SUMMARY = "**Summary.** "  # the line of a report that the results index quotes


class ReportError(RuntimeError):
    """Nothing to report on; the message says what was looked for."""


@dataclass
class Kind:
    """The finished runs of one attention kind (all seeds)."""

    runs: list[Run] = field(default_factory=list)

    def metric(self, key: str) -> list[float]:
        return [run.data.metrics[key] for run in self.runs if key in run.data.metrics]

    def param(self, key: str) -> int:
        return int(self.runs[0].data.params[key])


def dev_curve(client: MlflowClient, run: Run) -> dict[int, float]:
    """Dev accuracy per epoch (the metric's step), as the run logged it."""
    return {p.step: p.value for p in client.get_metric_history(run.info.run_id, "dev/accuracy")}


def at_best_epoch(run: Run, curve: dict[int, float]) -> float | None:
    """A dev curve's value at the run's chosen checkpoint (the epoch with the best dev macro-F1); the
    run's ``best_epoch`` and its curve's steps count epochs the same way, from 1 or (older runs) 0."""
    best = run.data.metrics.get("best_epoch")
    return None if best is None else curve.get(int(best))


def best_epoch(run: Run) -> int | None:
    """The epoch of the run's chosen checkpoint, counted from 1 (runs without the epoch tag logged it from 0)."""
    best = run.data.metrics.get("best_epoch")
    if best is None:
        return None
    return int(best) + (0 if run.data.tags.get(EPOCH_TAG) == "1" else 1)


def kind_label(run: Run) -> str:
    params = run.data.params
    if params["model.attention"] == "classical":
        return "classical dot"
    return f"quantum {params['model.kernel']}, {params['model.n_qubits']} qubits"


def find_grid(client: MlflowClient, target: str) -> Run:
    """``target``: a grid parent run id, or an experiment name (its most recent grid)."""
    try:
        run = client.get_run(target)
        if GRID_TAG not in run.data.tags:
            raise ReportError(f"MLflow run {target} is not a grid parent run (it has no {GRID_TAG} tag)")
        return run
    except MlflowException:
        pass
    experiment = client.get_experiment_by_name(target)
    if experiment is None:
        raise ReportError(
            f"{target!r} is neither a run id nor an experiment in the MLflow store at "
            f"{mask_uri(mlflow.get_tracking_uri())}; "
            "pass the parent run id printed by `qattn compare`, or set --tracking-uri"
        )
    runs = client.search_runs([experiment.experiment_id], f"tags.{GRID_TAG} != ''", order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        raise ReportError(f"experiment {target!r} holds no grid; run `qattn compare` first")
    return runs[0]


def mean_and_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def mean_std(values: list[float], scale: float = 100.0, digits: int = 2) -> str:
    if not values:
        return "n/a"
    mean, std = mean_and_std(values)
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"


def write_report(target: str, results: Path = Path("results")) -> Path:
    client = MlflowClient(check_store())
    parent = find_grid(client, target)
    children = finished_children(parent.info.run_id, parent.info.experiment_id)
    if not children:
        raise ReportError(f"grid run {parent.info.run_id} has no finished cells yet")
    kinds: dict[str, Kind] = {}
    for run in sorted(children.values(), key=lambda r: int(r.data.params.get("train.seed", 0))):
        kinds.setdefault(kind_label(run), Kind()).runs.append(run)

    name = parent.data.tags.get(NAME_TAG, parent.info.run_name)
    folder = results / name
    folder.mkdir(parents=True, exist_ok=True)
    curves = {run.info.run_id: dev_curve(client, run) for run in children.values()}  # one fetch per run
    dev = {run.info.run_id: at_best_epoch(run, curves[run.info.run_id]) for run in children.values()}
    epoch_seconds = {
        label: [p.value for run in kind.runs for p in client.get_metric_history(run.info.run_id, "epoch/seconds")]
        for label, kind in kinds.items()
    }
    figures = {
        "learning_curves.png": learning_curves(kinds, curves),
        "accuracy_vs_parameters.png": accuracy_vs_parameters(kinds),
        "attention_maps.png": attention_maps(client, kinds),  # None when no run logged its attention maps
    }
    figures = {file: figure for file, figure in figures.items() if figure is not None}
    for file, figure in figures.items():
        figure.savefig(folder / file, dpi=120)
        plt.close(figure)

    summary = "; ".join(f"{label} {mean_std(kind.metric('test/accuracy'))}%" for label, kind in kinds.items())
    lines = [
        f"# {name}: quantum vs classical attention",
        "",
        f"{SUMMARY}Test accuracy, mean ± std over seeds: {summary}.",
        "",
        f"Generated by `qattn report {parent.info.run_id}` (the grid's parent run) from MLflow ({mask_uri(mlflow.get_tracking_uri())}). "
        f"The grid was run with `{parent.data.tags.get(COMMAND_TAG, 'unknown')}`.",
        "Mean ± std over seeds; every model trained from scratch; checkpoints chosen on dev macro-F1. "
        "Dev accuracy is at that checkpoint: it is what hyper-parameters are chosen on, never the test columns.",
        "",
        "| attention | seeds | test accuracy [%] | test macro-F1 [%] | dev accuracy [%] | parameters quantum / classical / total | epoch [s] |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, kind in kinds.items():
        quantum, classical = kind.param("parameters.quantum"), kind.param("parameters.classical")
        seconds = statistics.mean(epoch_seconds[label]) if epoch_seconds[label] else float("nan")
        dev_values = [dev[run.info.run_id] for run in kind.runs if dev[run.info.run_id] is not None]
        lines.append(
            f"| {label} | {len(kind.runs)} | {mean_std(kind.metric('test/accuracy'))} | {mean_std(kind.metric('test/macro_f1'))} "
            f"| {mean_std(dev_values)} | {quantum:,} / {classical:,} / {quantum + classical:,} | {seconds:.1f} |"
        )
    lines += [
        "", "## Runs", "",
        "| attention | seed | test accuracy | test macro-F1 | dev accuracy | best epoch | MLflow run |", "|---|---|---|---|---|---|---|",
    ]
    for label, kind in kinds.items():
        for run in kind.runs:
            m, run_dev = run.data.metrics, dev[run.info.run_id]
            lines.append(
                f"| {label} | {run.data.params['train.seed']} | {m.get('test/accuracy', float('nan')):.4f} "
                f"| {m.get('test/macro_f1', float('nan')):.4f} | {'n/a' if run_dev is None else f'{run_dev:.4f}'} | {best_epoch(run) or 'n/a'} | `{run.info.run_id}` |"
            )
    lines += ["", "## Plots", ""]
    lines += [f"![{file}]({name}/{file})" for file in figures]
    report = results / f"{name}.md"
    report.write_text("\n".join(lines) + "\n")
    write_index(results)

    client.log_artifact(parent.info.run_id, str(report), "report")
    for file in figures:
        client.log_artifact(parent.info.run_id, str(folder / file), "report")
    return report


def write_index(results: Path) -> None:
    """``results/README.md``: every grid report there, with its summary line (taken from the report)."""
    entries = []
    for report in sorted(results.glob("*.md")):
        summary = next((line for line in report.read_text().splitlines() if line.startswith(SUMMARY)), None)
        if summary is not None:
            entries.append(f"- [{report.stem}]({report.name}): {summary.removeprefix(SUMMARY)}")
    (results / "README.md").write_text(
        "# results/\n\n"
        "Generated, never typed: `qattn report` writes one report per comparison grid from MLflow (and rewrites this\n"
        "index); `benchmarks/speed.py` writes [benchmarks.md](benchmarks.md); `qattn ibm plan --write` wrote\n"
        "[hardware-plan.md](hardware-plan.md). Each report names the command that produced it and every MLflow run\n"
        "it came from.\n\n" + "\n".join(entries) + "\n"
    )


def learning_curves(kinds: dict[str, Kind], dev_curves: dict[str, dict[int, float]]):
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, kind in kinds.items():
        curves = [[curve[step] for step in sorted(curve)] for curve in (dev_curves[r.info.run_id] for r in kind.runs)]
        length = min(map(len, curves))
        if length == 0:
            continue
        mean = [statistics.mean(c[e] for c in curves) for e in range(length)]
        ax.plot(range(1, length + 1), mean, marker="o", label=f"{label} (mean of {len(curves)})")
    ax.set(xlabel="epoch", ylabel="dev accuracy", title="learning curves")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def accuracy_vs_parameters(kinds: dict[str, Kind]):
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, kind in kinds.items():
        mean, std = mean_and_std(kind.metric("test/accuracy"))
        total = kind.param("parameters.quantum") + kind.param("parameters.classical")
        ax.errorbar([total], [mean], yerr=[std], fmt="o", capsize=4, label=label)
    ax.set(xlabel="trainable parameters", ylabel="test accuracy", title="accuracy vs parameters (mean ± std over seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def attention_maps(client: MlflowClient, kinds: dict[str, Kind]):
    """The same dev document's attention, as logged by the first seed of each kind, side by side."""
    images = {}
    with tempfile.TemporaryDirectory() as scratch:
        for label, kind in kinds.items():
            try:
                path = client.download_artifacts(kind.runs[0].info.run_id, "attention/dev_doc_0.png", scratch)
            except (MlflowException, OSError):
                continue
            images[label] = mpimg.imread(path)
    if not images:
        return None
    fig, axes = plt.subplots(1, len(images), figsize=(7 * len(images), 6), squeeze=False)
    for ax, (label, image) in zip(axes[0], images.items()):
        ax.imshow(image)
        ax.set_title(label)
        ax.axis("off")
    fig.tight_layout()
    return fig
