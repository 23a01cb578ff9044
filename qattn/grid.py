"""The comparison grid: attention kinds x qubit counts x seeds on one data set, one MLflow parent run.

    qattn compare experiments/imdb.toml --seeds 3

Every cell is the experiment config with ``model.attention`` / ``model.kernel`` / ``model.n_qubits`` /
``train.seed`` set, trained by :func:`qattn.experiment.run_cell` as a child run of the grid's
parent run; everything else (data, tokenizer, model size, optimiser, epochs) is the same for every
cell. A grid is known by a hash of its config without the seeds, so running it again resumes it:
cells whose run finished are found in MLflow and skipped, an interrupted cell resumes from its
checkpoint, and more seeds extend the same grid. Started more than once side by side, each process takes
the cells no other one holds: a cell is held by the lock of its checkpoint folder
(:func:`qattn.experiment.folder_lock`, the one ``qattn train`` takes), which dies with its process.
Processes started at the same moment make one parent run: one at a time finds or creates the experiment
and the parent run, under the lock ``<train.output_dir>/.grid-<grid id>.lock`` (:func:`grid_lock`), on
the folder they share anyway for the cells' checkpoints, whatever the store (a SQLite file, a server).
Machines that share a tracking server but not ``train.output_dir`` share no cells, and are not serialised.

A cell's folder holding the checkpoint of a cell of the same grid under another of its parent runs (as
processes started together made before that lock) is adopted: the run moves under this parent run (a
run cannot leave its experiment: one in another one stays, and is named), and counts as the cell's if
it finished, else resumes. A checkpoint of another run (a ``qattn train`` of the same config, another
grid) is never overwritten: the grid refuses to start and names the folders.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.entities import Run

from qattn import tracking
from qattn.config import ExperimentConfig, validate_config
from qattn.backbone import Source, changes
from qattn.data import DataError, check_unchanged, data_hashes
from qattn.distributed import torchrun_world
from qattn.experiment import ExperimentError, check_footing, check_writable, folder_lock, load_checkpoint, run_cell
from qattn.identity import grid_id, run_identity
from qattn.kinds import grid_names
from qattn.run_result import RunResult

GRID_TAG = "qattn_grid"  # on the parent run: the grid's hash
NAME_TAG = "qattn_name"  # on the parent run: the experiment config's name (the report's file name)
COMMAND_TAG = "qattn_command"  # on the parent run: the command that ran it


@dataclass(frozen=True)
class Cell:
    kind: str  # a name of compare.kinds (qattn.kinds.grid_names: "dot", a quantum kernel, "annealing", ...)
    n_qubits: int | None  # None but for the names that run per qubit count (quantum kernels, dot-narrow)
    seed: int

    def config(self, base: ExperimentConfig) -> ExperimentConfig:
        name = grid_names()[self.kind]
        raw = base.model_dump()
        raw["model"].update(attention=name.kind, **name.settings(self.n_qubits))
        raw["train"]["seed"] = self.seed
        return validate_config(raw, source=f"grid cell {self}")


def cells(config: ExperimentConfig) -> list[Cell]:
    grid, names = config.compare, grid_names()
    qubits = grid.n_qubits or [config.model.n_qubits]
    return [
        Cell(kind, n, seed)
        for kind in grid.kinds
        for n in (qubits if names[kind].qubits else [None])
        for seed in grid.seeds
    ]


def find_parent(config: ExperimentConfig, hashes: dict[str, str], encoder: Source | None = None) -> Run | None:
    """The most recent parent run of this grid in the configured experiment, if any; refused (a
    :class:`qattn.data.DataError`) when the data's content changed since the grid started (``hashes``: the
    data's now, :func:`qattn.data.data_hashes`): a grid's identity is its config, and its cells must not
    continue on other data, nor on another ``encoder`` (:func:`qattn.backbone.changes`)."""
    runs = mlflow.search_runs(
        experiment_names=[config.tracking.experiment],
        filter_string=f"tags.{GRID_TAG} = '{grid_id(config)}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    if not runs:
        return None
    elsewhere = ("in another MLflow experiment and output folder (--set tracking.experiment=NAME --set "
                 "train.output_dir=DIR)")
    check_unchanged(runs[0].data.params, hashes, f"grid parent run {runs[0].info.run_id}",
                    f"run the grid on this data {elsewhere}")
    if changed := changes(runs[0].data.params, encoder):
        raise ExperimentError(f"grid parent run {runs[0].info.run_id} read another encoder: {changed}. Restore its "
                              f"files, or run the grid on this encoder {elsewhere}")
    return runs[0]


def finished_children(parent_id: str, experiment_id: str) -> dict[str, Run]:
    """Run name -> the latest finished child run of a grid's parent run."""
    runs = mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_id}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time ASC"],
        output_format="list",
    )
    return {run.info.run_name: run for run in runs}


def mark_abandoned(parent_id: str, experiment_id: str, name: str) -> None:
    """A cell that starts over marks its earlier unfinished runs KILLED (not RUNNING forever)."""
    client = mlflow.MlflowClient()
    for run in client.search_runs(
        [experiment_id],
        f"tags.mlflow.parentRunId = '{parent_id}' and attributes.run_name = '{name}' and attributes.status = 'RUNNING'",
    ):
        client.set_terminated(run.info.run_id, "KILLED")


@contextmanager
def grid_lock(config: ExperimentConfig) -> Iterator[None]:
    """Hold ``<train.output_dir>/.grid-<grid id>.lock``, waiting for it: the processes of one grid find or
    create its experiment and parent run one at a time (the lock dies with its process)."""
    with open(Path(config.train.output_dir) / f".grid-{grid_id(config)}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def stored_run(run_id: str | None) -> Run | None:
    """The run, or None when the store has none such (deleted, or logged to another store)."""
    try:
        return tracking.patiently(lambda: mlflow.get_run(run_id))
    except tracking.TrackingError:  # the store is gone: say that, not something about the run
        raise
    except Exception:  # noqa: BLE001 - MLflow raises several kinds for "no such run"
        return None


def checkpoint_run(folder: Path, grid: str, hashes: dict[str, str],
                   encoder: Source | None = None) -> tuple[Run | None, str | None]:
    """The MLflow run whose checkpoint a cell's ``folder`` holds, when it is a cell of the grid ``grid`` (a
    child of any of its parent runs) trained on the data whose content ``hashes`` are now
    (:func:`qattn.data.data_hashes`), else (None, what is wrong); (None, None) when there is no checkpoint."""
    if not (folder / "last.pt").is_file():
        return None, None
    fix = f"move {folder} away to keep it, or delete it, then run qattn compare again"
    run_id = load_checkpoint(folder / "last.pt", fix=fix)["mlflow_run_id"]
    run = stored_run(run_id)
    if run is None:
        return None, f"{folder} holds the checkpoint of MLflow run {run_id}, which is not in this store"
    parent_id = run.data.tags.get("mlflow.parentRunId")
    parent = stored_run(parent_id) if parent_id else None
    if parent is not None and parent.data.tags.get(GRID_TAG) == grid:
        try:  # a folder's name is its config's hash: the same cell on other data has the same folder
            check_unchanged(run.data.params, hashes, f"the checkpoint in {folder} (MLflow run {run_id}, a cell of this "
                            f"grid under parent run {parent_id})", fix)
        except DataError as err:
            return None, str(err)
        if changed := changes(run.data.params, encoder):
            return None, (f"the checkpoint in {folder} (MLflow run {run_id}) read another encoder: {changed}; {fix}")
        return run, None
    whose = "a `qattn train` run" if parent_id is None else f"a cell of another grid (parent run {parent_id})"
    return None, f"{folder} holds the checkpoint of MLflow run {run_id}, {whose}"


def adopt(cell: Run, parent: Run | mlflow.ActiveRun, folder: Path) -> str:
    """Make ``cell``, a run of this grid under another of its parent runs, a child of ``parent``, so that the
    grid's report has it; returns the words that say so. A run cannot leave its experiment: a finished one in
    another experiment stays there (the words say how to report it), an unfinished one cannot resume here."""
    other, experiment_id = cell.data.tags["mlflow.parentRunId"], cell.info.experiment_id
    if experiment_id == parent.info.experiment_id:
        client = mlflow.MlflowClient()
        tracking.patiently(lambda: client.set_tag(cell.info.run_id, "mlflow.parentRunId", parent.info.run_id))
        return f"of this grid's parent run {other}, adopted"
    experiment = tracking.patiently(lambda: mlflow.get_experiment(experiment_id)).name
    if cell.info.status != "FINISHED":
        raise ExperimentError(
            f"{folder} holds the checkpoint of MLflow run {cell.info.run_id}, an unfinished cell of this grid in "
            f"experiment {experiment!r} (parent run {other}), which cannot continue in this grid's experiment; "
            f"move {folder} away to keep it, or delete it, then run qattn compare again"
        )
    return (f"of this grid's parent run {other} in experiment {experiment!r}, adopted (a run stays in its "
            f"experiment: `qattn report {parent.info.run_id} {other}` reports both)")


def run_grid(config: ExperimentConfig, command: str, echo=print) -> tuple[str, list[RunResult | Run]]:
    """Run (or resume) every cell no other process holds; returns the parent run id and, per cell run or
    found finished, the result or the finished run."""
    if torchrun_world()[1] > 1:
        raise ExperimentError(
            "qattn compare runs its cells one after another in one process; under torchrun, train each cell "
            "with `qattn train CONFIG --set model.attention=... --set train.seed=...`"
        )
    check_writable(config)
    encoder = check_footing(config)
    this_grid = grid_id(config)
    grid = []  # each cell's config and identity, computed once
    for cell in cells(config):
        cell_config = cell.config(config)
        grid.append((cell_config, run_identity(cell_config)))
    with ExitStack() as parent_run:
        with grid_lock(config):  # one process at a time finds, or creates and records, the parent run
            uri = tracking.connect(config)
            hashes = data_hashes(config.data)
            parent = find_parent(config, hashes, encoder)
            foreign = [problem for _, identity in grid
                       if (problem := checkpoint_run(identity.folder, this_grid, hashes, encoder)[1])]
            if foreign:
                raise ExperimentError(
                    "qattn compare would overwrite checkpoints that are not this grid's:\n"
                    + "".join(f"  - {problem}\n" for problem in foreign)
                    + "Move those folders away to keep them, or delete them, then run qattn compare again"
                )
            run = parent_run.enter_context(tracking.recorded_run(
                run_id=parent.info.run_id if parent else None,
                run_name=f"{config.name}-grid",
                tags=None if parent else {GRID_TAG: this_grid, NAME_TAG: config.name},
                log_system_metrics=False,
            ))
            mlflow.set_tags({COMMAND_TAG: command, "qattn_cells": str(len(grid))})
            if not parent:
                tracking.log_run_metadata(config, {}, hashes)
                if encoder is not None:
                    mlflow.log_params(encoder.params())
        outcomes: list[RunResult | Run] = []
        for number, (cell_config, identity) in enumerate(grid, 1):
            name = identity.name
            with folder_lock(identity.folder) as holder:
                # now, and patiently: others may finish cells, and the store may be restarting between cells
                done = tracking.patiently(lambda: finished_children(run.info.run_id, run.info.experiment_id))
                if name in done:
                    echo(f"[{number}/{len(grid)}] {name}: finished in MLflow run {done[name].info.run_id}, skipped")
                    outcomes.append(done[name])
                    continue
                if holder:
                    echo(f"[{number}/{len(grid)}] {name}: another qattn process is training it ({holder}), skipped")
                    continue
                found, problem = checkpoint_run(identity.folder, this_grid, hashes, encoder)  # written since the check above
                if problem:
                    raise ExperimentError(f"qattn compare would overwrite a checkpoint: {problem}; move or delete it")
                if found and found.data.tags["mlflow.parentRunId"] != run.info.run_id:  # under another parent run
                    adopted = adopt(found, run, identity.folder)
                    if found.info.status == "FINISHED":
                        echo(f"[{number}/{len(grid)}] {name}: finished in MLflow run {found.info.run_id} {adopted}")
                        outcomes.append(found)
                        continue
                resume = (identity.folder / "last.pt").is_file()
                if not resume:
                    tracking.patiently(lambda name=name: mark_abandoned(run.info.run_id, run.info.experiment_id, name))
                echo(f"[{number}/{len(grid)}] {name}: {'resuming from its checkpoint' if resume else 'training'}")
                result = run_cell(cell_config, identity, uri, resume=resume, restart=not resume)
                outcomes.append(result)
    return run.info.run_id, outcomes
