"""``qattn ibm``: plan, submit, status, retrieve, resubmit, cancel."""

from __future__ import annotations

import contextlib
import functools
import math
from pathlib import Path
from typing import TYPE_CHECKING

import click

from qattn.runtime.devices import CALIBRATION_RESERVE, HardwareError

if TYPE_CHECKING:
    from .journal import Options

JOURNAL = click.argument("journal", type=click.Path(file_okay=False, path_type=Path))


def parse_docs(ctx, param, value: str) -> list[int]:
    """``0:4`` (a range) or ``0,3,7`` (a list) -> document indices."""
    try:
        if ":" in value:
            start, stop = (int(part) for part in value.split(":"))
            docs = list(range(start, stop))
        else:
            docs = [int(part) for part in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"give a range like 0:4 or a list like 0,3,7, not {value!r}") from None
    if not docs:
        raise click.BadParameter(f"{value!r} picks no documents")
    return docs


class Fraction(click.ParamType):
    """A number strictly between 0 and 1; NaN too is refused here (a ``click.FloatRange`` lets it through,
    and pydantic would answer it with a traceback)."""

    name = "fraction"

    def convert(self, value, param, ctx) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not 0 < number < 1:  # False for NaN as well
            self.fail(f"{value} is not a number between 0 and 1 (exclusive); give the error you accept, e.g. 0.02",
                      param, ctx)
        return number


def runtime_options(command):
    """The options of how circuits run, shared by plan and submit; passed on as ``options: Options``."""
    decorators = [
        click.option("--backend", "backend", required=True, help="IBM device (ibm_fez...) or fake_<name> for local testing mode."),
        click.option("--shots", type=click.IntRange(min=1), default=4096, show_default=True),
        click.option("--resilience-level", type=click.IntRange(0, 2), default=1, show_default=True,
                     help="0: none; 1: readout mitigation (TREX); 2: + zero-noise extrapolation (3x executions)."),
        click.option("--measure-mitigation/--no-measure-mitigation", default=None, help="Override the level's readout mitigation."),
        click.option("--dd", type=click.Choice(["XX", "XpXm", "XY4"]), help="Dynamical decoupling sequence (default: off)."),
        click.option("--twirl-gates/--no-twirl-gates", default=None, help="Pauli-twirl two-qubit gates (default: the level's)."),
        click.option("--twirl-measure/--no-twirl-measure", default=None, help="Twirl measurements (default: the level's)."),
        click.option("--optimization-level", type=click.IntRange(0, 3), default=2, show_default=True, help="Preset pass manager level."),
        click.option("--seed-transpiler", type=int, default=0, show_default=True),
        click.option("--mode", type=click.Choice(["batch", "session"]), default="batch", show_default=True, help="Qiskit Runtime execution mode."),
        click.option("--max-executions", type=click.IntRange(min=CALIBRATION_RESERVE + 1), default=10_000_000, show_default=True,
                     help="Per job (circuits x shots); IBM's documented limit."),
        click.option("--seed-simulator", type=int, help="Local testing mode: seed Aer's sampling."),
        click.option("--target-error", type=Fraction(),
                     help="Shots from an error budget: the mean total-variation distance of a row of attention weights "
                          "to the exact one (e.g. 0.02). plan compares every estimator for it."),
        click.option("--adaptive", is_flag=True, help="With --target-error: a pilot pass, then shots where the weights are uncertain."),
        click.option("--pilot-shots", type=click.IntRange(min=1), default=64, show_default=True, help="Adaptive: shots per circuit of the first pass."),
        click.option("--estimator", type=click.Choice(["pairwise", "randomized"]), default="pairwise", show_default=True,
                     help="Fidelities from compute-uncompute pairs, or from randomized measurements of each token (O(N) circuits)."),
        click.option("--rotations", type=click.IntRange(min=1), default=64, show_default=True,
                     help="Randomized: shared random local rotations per token (--shots per rotation)."),
    ]

    @functools.wraps(command)
    def wrapper(backend, shots, resilience_level, measure_mitigation, dd, twirl_gates, twirl_measure,
                optimization_level, seed_transpiler, mode, max_executions, seed_simulator, target_error, adaptive,
                pilot_shots, estimator, rotations, **kwargs):
        from .journal import Options

        if adaptive and target_error is None:
            raise click.BadParameter("--adaptive allocates shots for a --target-error; give one (e.g. --target-error 0.02)")
        if estimator == "randomized" and target_error is not None:
            raise click.BadParameter("--target-error sizes pairwise circuits; the randomized estimator takes --rotations and --shots "
                                     "(qattn ibm plan --target-error E prints the ones E needs)")
        options = Options(
            shots=shots, resilience_level=resilience_level, measure_mitigation=measure_mitigation, dynamical_decoupling=dd,
            twirl_gates=twirl_gates, twirl_measure=twirl_measure, optimization_level=optimization_level,
            seed_transpiler=seed_transpiler, mode=mode, max_executions=max_executions, seed_simulator=seed_simulator,
            target_error=target_error, adaptive=adaptive, pilot_shots=pilot_shots, estimator=estimator, rotations=rotations,
        )
        return command(backend=backend, options=options, **kwargs)

    for decorator in reversed(decorators):
        wrapper = decorator(wrapper)
    return wrapper


data_options = [
    click.option("--split", type=click.Choice(["dev", "test"]), default="test", show_default=True),
    click.option("--docs", callback=parse_docs, default="0", show_default=True, help="Documents of the split: 0:4 or 0,3,7."),
]


def with_data(command):
    for decorator in reversed(data_options):
        command = decorator(command)
    return command


def tracking(command):
    @click.option("--tracking-uri", help="MLflow store of the model (default: $MLFLOW_TRACKING_URI, else MLflow's).")
    @functools.wraps(command)
    def wrapper(tracking_uri, **kwargs):
        if tracking_uri:
            import mlflow

            mlflow.set_tracking_uri(tracking_uri)
        return command(**kwargs)

    return wrapper


@click.group()
def ibm() -> None:
    """Run a trained model's attention circuits on IBM Quantum.

    On a real device, or offline on a fake_<name> device (Qiskit Runtime's local testing mode)."""


@ibm.command()
@click.argument("target")
@runtime_options
@with_data
@click.option("--tokens", type=click.IntRange(min=1), help="Plan one document of this many tokens instead of --docs.")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help="Config override (TARGET a config).")
@click.option("--write", type=click.Path(dir_okay=False, path_type=Path), help="Also write the plan as a Markdown report.")
@tracking
def plan(target, backend, options, split, docs, tokens, overrides, write) -> None:
    """Count circuits, shots and QPU time of a run; sends nothing.

    The cost of running TARGET's attention on a device, before anything is sent. TARGET: a
    checkpoint, the MLflow run id of a trained model, or an experiment config (with --tokens).
    Every quantum kernel is planned for the same documents; the model's own comes first. An
    annealing model with the qaoa solver is planned as its QUBOs' sampling circuits.
    """
    from .planning import STAGE_HEADER, aligned, plan as make_plan, stage_rows

    plans, model_kernel, evaluation = make_plan(target, backend, options, split=split, docs=docs, tokens=tokens, overrides=list(overrides))
    lines: list[str] = []
    if options.target_error is not None:
        lines = budget_table(target, backend, options, evaluation, split, docs, tokens, overrides)
        for line in lines:
            click.echo(line)
    header, rows = STAGE_HEADER, stage_rows(plans, model_kernel)
    mitigation = "the Sampler" if model_kernel == "qaoa" else f"resilience level {options.resilience_level}"
    summary = (f"{backend}: {len(evaluation.docs)} document(s), {int((evaluation.ids != 0).sum())} tokens; "
               f"{options.shots} shots per circuit, {mitigation}")
    note = ("QPU time: executions x (circuit duration from the device's calibrated gate and readout times + its default repetition "
            "delay); queueing, compilation and mitigation calibration circuits are not included.")
    if model_kernel == "qaoa":
        note += (" bits: one QAOA sampling circuit per QUBO (a qubit per free variable; depth and 2q gates of the "
                 "largest), on the Sampler; its angles are optimised on the simulator at submit.")
    click.echo(summary)
    for line in aligned(header, rows):
        click.echo(line)
    click.echo(note)
    if write:
        command = plan_command(target, backend, options, split, docs, tokens, overrides)
        lines = [f"# Hardware plan: {target} on {backend}", "", f"Generated by `{command}` (nothing was submitted).", "",
                 *lines, f"{summary}.", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines += ["", note, ""]
        write_plan(write, "\n".join(lines))
        click.echo(f"wrote {write}")


def write_plan(path: Path, text: str) -> None:
    """``text`` into ``path``, its missing folders made; where that fails, the folders made are removed again
    and the error says why (a plan is written after planning succeeded, so a failed plan writes nothing)."""
    missing = [folder for folder in [path.parent, *path.parent.parents] if not folder.exists()]  # deepest first
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as err:
        for folder in missing:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise HardwareError(
            f"could not write the plan to {path} ({err.strerror or err}); give --write a file in a folder you can write"
        ) from None


def budget_table(target, backend, options: Options, evaluation, split, docs, tokens, overrides) -> list[str]:
    """State your error, get the cheapest plan: every fidelity estimator's QPU time and predicted error
    for ``options.target_error``, cheapest first among those that meet it, with its submit options."""
    from qattn.runtime.devices import resolve_device
    from .journal import Options
    from .planning import estimator_plans, format_seconds

    fixed = options.model_copy(update={"target_error": None, "adaptive": False, "estimator": "pairwise"})
    plans = estimator_plans(evaluation, resolve_device(backend), fixed, [options.target_error])
    meets = [p for p in plans if p.predicted_error <= options.target_error * 1.001]
    cheapest = min(meets or plans, key=lambda p: p.qpu_seconds)
    baseline = plans[0]
    lines = [f"Target: mean row total-variation error of the attention weights <= {options.target_error}.", "",
             "| estimator | circuits | executions | QPU time | predicted error | QPU time vs fixed |", "|---|---|---|---|---|---|"]
    for p in plans:
        mark = " (cheapest)" if p is cheapest else ""
        lines.append(f"| {p.estimator}{mark} | {p.circuits:,} | {p.executions:,} | {format_seconds(p.qpu_seconds)} | "
                     f"{p.predicted_error:.4f} | {baseline.qpu_seconds / p.qpu_seconds:.1f}x less |")
    chosen = Options(**{**fixed.model_dump(), **cheapest.options})
    submit = plan_command(target, backend, chosen, split, docs, tokens, overrides).replace(" plan ", " submit ", 1)
    lines += ["", f"Cheapest: {cheapest.estimator}. Submit it with `{submit}`." if not tokens else
              f"Cheapest: {cheapest.estimator} (options: {cheapest.options}).",
              "Predicted error: first order in the estimates' variances (binomial for pairwise circuits; randomized: simulated "
              "rotations, error falling as 1/sqrt(rotations)), computed on exact simulation of these documents.", ""]
    return lines


def plan_command(target, backend, options: Options, split, docs, tokens, overrides) -> str:
    """The ``qattn ibm plan`` command line that gives this plan (options that differ from the defaults)."""
    import shlex

    args = ["qattn", "ibm", "plan", target, "--backend", backend]
    args += ["--tokens", str(tokens)] if tokens else ["--split", split, "--docs", ",".join(map(str, docs))]
    args += [arg for override in overrides for arg in ("--set", override)]
    for name, value in options.model_dump(exclude_defaults=True).items():
        flag = "--dd" if name == "dynamical_decoupling" else "--" + name.replace("_", "-")
        if name == "adaptive":
            args += [flag] if value else []
            continue
        args += [flag if value else "--no-" + flag[2:]] if isinstance(value, bool) else [flag, str(value)]
    return shlex.join(args)


@ibm.command()
@click.argument("target")
@runtime_options
@with_data
@click.option("--journal", type=click.Path(file_okay=False, path_type=Path), help="Journal folder (default: ibm-jobs/<name>-<device>-<time>).")
@click.option("--ideal", is_flag=True, help="Fake devices only: simulate without the device's noise.")
@tracking
def submit(target, backend, options, split, docs, journal, ideal) -> None:
    """Submit the first stage of circuits; journals every job.

    Sends the first stage of TARGET's attention circuits; every job id is in the journal before this returns."""
    from .lifecycle import submit as send

    folder = send(target, backend, options, split=split, docs=docs, folder=journal, ideal=ideal, echo=click.echo)
    click.echo(f"journal: {folder}\nlater: qattn ibm status {folder}; qattn ibm retrieve {folder}")


@ibm.command()
@JOURNAL
def status(journal: Path) -> None:
    """Show each job's status, as the runtime reports it now.

    Reads the journal and asks the runtime; needs neither the model nor MLflow."""
    from .jobs import status as check

    record, problems = check(journal, echo=click.echo)
    click.echo(f"{record.device}: {len(record.stages)} stage(s) submitted; {'retrieved' if record.finished else 'in progress'}")
    for job in record.jobs:
        click.echo(f"  stage {job.stage} rows {job.rows[0]}:{job.rows[1]}  {job.job_id}  {job.status}  (submitted {job.submitted_at})")
    if problems:
        raise HardwareError("\n".join(problems))


@ibm.command()
@JOURNAL
def retrieve(journal: Path) -> None:
    """Collect finished jobs; send the next stage, or log results.

    After the last stage, rebuilds attention and predictions and logs them, beside exact simulation, to MLflow."""
    from .lifecycle import retrieve as collect

    collect(journal, echo=click.echo)


@ibm.command()
@JOURNAL
def resubmit(journal: Path) -> None:
    """Send again the jobs that failed, were cancelled or lost.

    Finished and running jobs are kept."""
    from .lifecycle import resubmit as again

    again(journal, echo=click.echo)


@ibm.command()
@JOURNAL
def cancel(journal: Path) -> None:
    """Cancel the journal's jobs that have not finished."""
    from .lifecycle import cancel as stop

    stop(journal, echo=click.echo)
