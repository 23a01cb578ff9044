"""The ``qattn`` command line: quickstart, train, compare, report, evaluate, demo, ibm.

Heavy libraries (torch, PennyLane, Qiskit, MLflow) are imported inside the commands that use them,
so ``qattn --help`` and a command's own errors answer at once.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from qattn.ibm.cli import ibm
from qattn.registry import quantum_kernels

QUANTUM_KERNELS = quantum_kernels()  # the registry knows them without importing torch
QUICKSTART_CONFIG = Path(__file__).resolve().parents[1] / "experiments" / "quickstart.toml"
USER_ERRORS = {  # errors a user can act on, by module: each prints as one message, not a traceback
    "qattn.config": "ConfigError",
    "qattn.data": "DataError",
    "qattn.experiment": "ExperimentError",
    "qattn.runtime.devices": "HardwareError",
    "qattn.report": "ReportError",
    "qattn.tracking": "TrackingError",
}


def user_errors() -> tuple[type[Exception], ...]:
    """The error classes of :data:`USER_ERRORS` whose modules are loaded (an error's module always is)."""
    return tuple(getattr(sys.modules[module], name) for module, name in USER_ERRORS.items() if module in sys.modules)


class FriendlyGroup(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except user_errors() as err:  # evaluated only when an error arrives
            raise click.ClickException(str(err)) from None


@click.group(cls=FriendlyGroup)
@click.version_option(package_name="qattn", message="%(prog)s %(version)s")
def main() -> None:
    """qattn: quantum-classical hybrid multi-head attention."""


set_option = click.option(
    "--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help="Override a config value (repeatable)."
)


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@set_option
@click.option("--resume", is_flag=True, help="Continue this run from its last checkpoint.")
@click.option("--restart", is_flag=True, help="Delete this run's checkpoints and start over.")
def train(config: Path, overrides: tuple[str, ...], resume: bool, restart: bool) -> None:
    """Train one model from a CONFIG file and record it in MLflow.

    CONFIG is an experiment config (TOML). Under torchrun, data-parallel over its processes (README,
    "Scaling out")."""
    from qattn.config import load_config

    experiment = load_config(config, list(overrides))  # a config's errors answer before torch is imported
    from qattn.distributed import torchrun_world
    from qattn.experiment import run_experiment

    result = run_experiment(experiment, resume=resume, restart=restart)
    if torchrun_world()[0] == 0:
        print_results([result])


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@set_option
@click.option("--seeds", type=click.IntRange(min=1), help="Seeds 0..N-1 per cell (default: compare.seeds of the config).")
def compare(config: Path, overrides: tuple[str, ...], seeds: int | None) -> None:
    """Train a grid of attention kinds x seeds (resumable).

    The grid of CONFIG runs as one MLflow parent run with a child run per cell; run again, it resumes
    where it was interrupted."""
    from qattn.config import load_config

    command = " ".join(["qattn compare", str(config), *(f"--set {o}" for o in overrides), *(["--seeds", str(seeds)] if seeds else [])])
    if seeds is not None:
        overrides = (*overrides, f"compare.seeds={list(range(seeds))}")
    experiment = load_config(config, list(overrides))  # a config's errors answer before torch is imported
    import mlflow

    from qattn.grid import cells, finished_children, run_grid
    from qattn.tracking import patiently

    parent_id, _ = run_grid(experiment, command, echo=lambda line: click.echo(line, err=True))
    total = len(cells(experiment))
    experiment_id = patiently(lambda: mlflow.get_run(parent_id)).info.experiment_id
    finished = len(patiently(lambda: finished_children(parent_id, experiment_id)))  # side-by-side ones too
    click.echo(f"grid parent run {parent_id}: {finished} of {total} cells finished; "
               f"write the report with `qattn report {parent_id}`{'' if finished >= total else ' once all are'}")


@main.command()
@click.argument("targets", metavar="TARGET...", nargs=-1, required=True)
@click.option("--results", type=click.Path(file_okay=False, path_type=Path), default=Path("results"), show_default=True)
@click.option("--tracking-uri", help="MLflow store holding the grid (default: $MLFLOW_TRACKING_URI, else MLflow's).")
@click.option("--name", help="The report's name: <results>/<name>.md (default: the grid's config name).")
def report(targets: tuple[str, ...], results: Path, tracking_uri: str | None, name: str | None) -> None:
    """Write a grid's report and plots (results/<name>.md).

    TARGET is the grid's parent run id or its MLflow experiment (its latest grid). Several grids of one
    config (a kind run later as its own grid) make one report, named by the first; their runs must differ
    only in the attention kind and the seed."""
    import mlflow

    from qattn.report import write_report

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    click.echo(f"wrote {write_report(targets, results, name)}")


@main.command()
@click.argument("run_a")
@click.argument("run_b")
@click.option("--tracking-uri", help="MLflow store holding the runs (default: $MLFLOW_TRACKING_URI, else MLflow's).")
def paired(run_a: str, run_b: str, tracking_uri: str | None) -> None:
    """McNemar and paired bootstrap tests of two runs' predictions.

    RUN_A and RUN_B are MLflow run ids of models tested on the same documents (any two runs, e.g. one
    config at two settings; a report pairs its own rows). Documents are matched by id and text (a document
    without an id by its text alone), whatever their order; runs tested on other documents are refused."""
    import mlflow

    from qattn.report import ReportError, document_tests, test_answers
    from qattn.tracking import check_store
    from qattn.uris import mask_uri

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient(check_store())
    answers = []
    for run_id in (run_a, run_b):
        try:
            run = client.get_run(run_id)
        except mlflow.exceptions.MlflowException:
            raise ReportError(f"{run_id!r} is not an MLflow run in {mask_uri(mlflow.get_tracking_uri())}") from None
        answers.append(test_answers(client, run))
        accuracy = run.data.metrics.get("test/accuracy", float("nan"))
        click.echo(f"{run_id} ({run.info.run_name}): test accuracy {100 * accuracy:.2f}%")
    try:
        only, p_value, interval = document_tests(*answers)
    except ReportError as err:
        raise ReportError(f"cannot pair {run_a} (A) with {run_b} (B): {err}; the paired tests need two runs "
                          "tested on the same documents") from None
    click.echo(f"documents only A / only B gets right: {only}; McNemar exact p {p_value}; "
               f"accuracy A - B, paired bootstrap 95% interval [points]: {interval}")


@main.command()
@click.argument("target")
@click.option("--split", type=click.Choice(["dev", "test"]), default="test", show_default=True)
@click.option("--tracking-uri", help="MLflow store holding the run (default: $MLFLOW_TRACKING_URI, else MLflow's).")
def evaluate(target: str, split: str, tracking_uri: str | None) -> None:
    """Evaluate a trained model on its dev or test split.

    TARGET is a checkpoint file or an MLflow run id."""
    import mlflow

    from qattn.experiment import evaluate_saved

    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    metrics, config, path = evaluate_saved(target, split)
    click.echo(f"{config.data.name} {split} with {path}:")
    click.echo(f"  accuracy {metrics.accuracy:.4f}  macro-F1 {metrics.macro_f1:.4f}  loss {metrics.loss:.4f}")


@main.command()
@set_option
def quickstart(overrides: tuple[str, ...]) -> None:
    """Train quantum and classical attention and compare them.

    Both train on a generated long-text task (experiments/quickstart.toml); the table after them says
    what to make of the numbers."""
    from qattn.config import load_config

    configs = [load_config(QUICKSTART_CONFIG, [*overrides, f"model.attention={kind}"]) for kind in ("quantum", "classical")]
    from qattn.experiment import run_experiment

    results = []
    for config in configs:
        click.echo(f"Training {config.model.attention} attention ({config.train.epochs} epochs)...", err=True)
        results.append(run_experiment(config, restart=True))
    print_results(results)
    click.echo("")
    for line in reading(results):
        click.echo(line)


def reading(results) -> list[str]:
    """What to make of quickstart's table: chance level, whether each run was still improving, where the curves are."""
    classes = len(results[0].test.confusion)  # one row per class
    lines = [f"Chance level: {1 / classes:.4f} test accuracy ({classes} classes, guessing)."]
    for r in results:
        if r.best_epoch == r.epochs_run:  # epochs count from 1
            verdict = (f"still improving at its last epoch ({r.epochs_run}): "
                       "more epochs (--set train.epochs=N) may score higher")
        else:
            verdict = f"best at epoch {r.best_epoch} of {r.epochs_run} (the model tested is that epoch's)"
        lines.append(f"{r.run_name}: {verdict}.")
    uri = results[0].tracking_uri
    lines.append("Learning curves: the artifact learning_curves.png of each MLflow run "
                 "(attention maps under attention/).")
    if uri.startswith(("http://", "https://")):
        lines.append(f"Browse the runs: open {uri} in a browser")
    else:
        lines.append(f"Browse the runs: mlflow ui --backend-store-uri {uri}   (then open http://127.0.0.1:5000)")
    return lines


def print_results(results) -> None:
    header = f"{'run':<44} {'test acc':>8} {'macro-F1':>8} {'quantum p.':>10} {'classical p.':>12} {'s/epoch':>8} {'docs/s':>7}  MLflow run"
    click.echo(header)
    for r in results:
        click.echo(
            f"{r.run_name:<44} {r.test.accuracy:>8.4f} {r.test.macro_f1:>8.4f} {r.parameters['quantum']:>10} "
            f"{r.parameters['classical']:>12} {r.seconds_per_epoch:>8.1f} {r.docs_per_s:>7.1f}  {r.run_id}"
        )


@main.command()
@click.option("--batch", default=2, show_default=True, help="Documents in the random batch.")
@click.option("--tokens", default=6, show_default=True, help="Tokens per document.")
@click.option("--embed-dim", default=16, show_default=True)
@click.option("--heads", default=2, show_default=True)
@click.option("--qubits", default=3, show_default=True, help="Qubits per head.")
@click.option("--kernel", type=click.Choice(QUANTUM_KERNELS), default="fidelity", show_default=True)
@click.option("--seed", default=0, show_default=True)
def demo(batch: int, tokens: int, embed_dim: int, heads: int, qubits: int, kernel: str, seed: int) -> None:
    """Print a quantum and a classical layer's attention weights.

    Both layers are built with random weights and run on a random batch."""
    import torch

    from qattn.attention import ClassicalMultiheadAttention, QuantumMultiheadAttention, parameter_counts
    from qattn.circuits.to_qiskit import to_qiskit

    torch.manual_seed(seed)
    x = torch.randn(batch, tokens, embed_dim)
    try:
        layers = {
            f"quantum ({kernel}, {qubits} qubits/head)": QuantumMultiheadAttention(
                embed_dim, heads, n_qubits=qubits, kernel=kernel
            ),
            "classical (dot)": ClassicalMultiheadAttention(embed_dim, heads),
        }
    except (ValueError, TypeError) as err:
        raise click.BadParameter(str(err)) from None
    fmap = next(iter(layers.values())).kernel.feature_map
    click.echo(f"Input: {batch} documents x {tokens} tokens x {embed_dim} features, {heads} heads, seed {seed}")
    click.echo(f"\nOne head's query circuit ({fmap.encoder!r} then {fmap.ansatz!r}):")
    click.echo(to_qiskit(fmap).draw(output="text", fold=120))
    for name, layer in layers.items():
        start = time.perf_counter()
        out, weights = layer(x, x, x, average_attn_weights=False)
        out.square().mean().backward()
        seconds = time.perf_counter() - start
        counts = parameter_counts(layer)
        click.echo(f"\n== {name}: output {tuple(out.shape)}, parameters {counts}, forward+backward {seconds:.3f} s")
        click.echo("Attention weights, document 0, head 0 (rows: queries, columns: keys):")
        for row in weights[0, 0].detach():
            click.echo("  " + " ".join(f"{w:5.3f}" for w in row.tolist()))


main.add_command(ibm)


if __name__ == "__main__":
    sys.exit(main())
