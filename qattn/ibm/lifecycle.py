"""A hardware evaluation's jobs, from submission to the comparison: submit, retrieve, resubmit, cancel.

``submit`` sends the first stage in as few jobs as the per-job execution limit allows, inside a
Batch or Session, and journals every job id before returning. ``retrieve`` collects finished jobs,
submits the next stage while one remains, and after the last one has the model's attention compared
with exact simulation (:mod:`qattn.ibm.comparison`) in an MLflow run that is a child of the model's
run. ``resubmit`` sends what failed or was never sent; ``cancel`` stops what still runs. Every command
holds the journal's lock (:func:`qattn.ibm.journal.locked`); job statuses alone are :mod:`qattn.ibm.jobs`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import mlflow
import numpy as np
from mlflow.entities import RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from qattn.experiment import SavedModel, load_saved
from qattn.model import TextClassifier
from qattn.runtime.devices import Device, HardwareError, LocalJobs, resolve_device, stack_rows
from qattn.runtime.programs import Program
from qattn.tracking import check_store
from qattn.uris import absolute_uri, bare_uri, mask_uri

from .comparison import log_comparison, logged_stages
from .evaluation import (
    documents, forward, hardware_solver, load_hardware_model, quantum_kernels_of, reference, require_quantum, staged,
)
from .jobs import poll
from .journal import (
    FAILED, FINAL, SAMPLER_KINDS, Job, Journal, Options, Stage, damaged_stages, load_stage_arrays, load_values, locked,
    now, save_stage, values_path,
)
from .planning import job_ranges, range_shots, request_levels, request_programs, row_executions
from .staged import Pending, Request

Echo = Callable[[str], None]


def submit(
    target: str, device_name: str, options: Options, *, split: str, docs: list[int], folder: Path | None = None,
    ideal: bool = False, echo: Echo = print,
) -> Path:
    """Journal and submit the first stage; returns the journal folder."""
    device = resolve_device(device_name, ideal)
    saved = load_hardware_model(target, "submit")
    require_quantum(saved.model)
    evaluation = documents(saved, split, docs)
    if hardware_solver(saved.model) is not None:  # every stage's QUBOs fit the device, before anything runs
        forward(evaluation, staged(saved.model, options, stand_in=True, device=device))
    try:
        forward(evaluation, staged(saved.model, options, device=device))
        raise HardwareError("the model ran without asking for circuits")  # require_quantum rules this out
    except Pending as pending:
        request = pending.request
    job_ranges(request.circuits, options, request.kind, request_levels(request))  # each circuit fits one job
    uri = check_store()
    client = MlflowClient(uri)
    model_run = find_model_run(client, saved)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = folder or Path("ibm-jobs") / f"{saved.config.name}-{device.name}-{stamp}"
    if Journal.path(folder).exists():
        raise HardwareError(f"{folder} already holds a journal; retrieve it, or choose another --journal folder")
    run = client.create_run(
        model_run.info.experiment_id,
        run_name=f"ibm-{device.name}-{split}-{len(docs)}docs",
        tags={MLFLOW_PARENT_RUN_ID: model_run.info.run_id, "qattn.ibm.journal": str(folder.resolve())},
    )
    journal = Journal(  # paths made absolute: retrieve may run from another directory
        model=str(Path(target).resolve()) if Path(target).is_file() else target, model_run_id=model_run.info.run_id,
        tracking_uri=mask_uri(absolute_uri(uri)), mlflow_run_id=run.info.run_id,
        device=device.name, ideal=ideal, split=split, docs=docs, options=options,
    )
    for key, value in {"device": device.name, "ideal": ideal, "split": split, "docs": docs, **options.model_dump()}.items():
        client.log_param(run.info.run_id, f"ibm.{key}", value)
    folder.mkdir(parents=True, exist_ok=True)
    with locked(folder):
        journal.save(folder)
        submit_stage(folder, journal, device, request, client, echo, saved.model)
    return folder


def find_model_run(client: MlflowClient, saved: SavedModel):
    if saved.run_id is None:
        raise HardwareError(f"{saved.path} names no MLflow run; evaluate a model trained by qattn (its run id or checkpoint)")
    try:
        return client.get_run(saved.run_id)
    except Exception:  # noqa: BLE001 - not found, under any of MLflow's exception types
        raise HardwareError(
            f"the model's MLflow run {saved.run_id} is not in the store at {mask_uri(mlflow.get_tracking_uri())}; "
            "point --tracking-uri (or MLFLOW_TRACKING_URI) at the store it was trained with"
        ) from None


def submit_stage(
    folder: Path, journal: Journal, device: Device, request: Request, client: MlflowClient, echo: Echo,
    model: TextClassifier,
) -> None:
    options = journal.options
    programs = request_programs(model, request, device, options)
    qubits = {} if request.qubits is None else {"qubits": request.qubits}
    shots = {} if request.shots is None else {"shots": request.shots}
    levels = request_levels(request)
    ranges = job_ranges(request.circuits, options, request.kind, levels)  # refuses oversized shots before journaling
    save_stage(folder, request.stage, request.angles, request.rows, **qubits, **shots, **request.extra)
    journal.stages.append(Stage(
        stage=request.stage, kind=request.kind, circuits=request.circuits, depth=max(p.depth for p, _ in programs),
        two_qubit_gates=max(p.two_qubit_gates for p, _ in programs), levels=levels,
    ))  # fmt: skip
    journal.save(folder)
    run_jobs(folder, journal, device, programs, request.angles, request.stage, ranges, client, levels)
    executions = int(row_executions(request, options).sum())
    shots = f"x {options.shots} shots" if request.shots is None else f"with {len(levels)} shot counts ({executions:,} executions)"
    echo(f"stage {request.stage}: {request.circuits} {request.kind} circuits {shots} in {len(ranges)} job(s) on {device.name}")


def run_jobs(
    folder: Path, journal: Journal, device: Device, programs: list[tuple[Program, np.ndarray]], angles: np.ndarray,
    stage: int, ranges: list[tuple[int, int]], client: MlflowClient, levels: list[tuple[int, int, int]] = (),
) -> None:
    """One job per row range (one pub per program its rows use), Estimator or, for a ``bits`` stage,
    Sampler, in one Batch or Session; each job journaled as soon as it has an id."""
    from qiskit_ibm_runtime import Batch, Session
    from qiskit_ibm_runtime.executor_estimator import Estimator
    from qiskit_ibm_runtime.executor_sampler import Sampler

    kind = programs[0][0].kind
    context = Session if journal.options.mode == "session" else Batch
    options = journal.options.primitive_options(kind, device.local)
    if not device.local:  # IBM lists jobs by tag: one killed between acceptance and journal is still findable
        options["environment"] = {"job_tags": [f"qattn-{journal.mlflow_run_id}", f"qattn-stage-{stage}"]}
    jobs = []
    with context(backend=device.mode) as runtime:
        primitive = (Sampler if kind in SAMPLER_KINDS else Estimator)(mode=runtime, options=options)
        for start, stop in ranges:
            parts = [(program, rows[(rows >= start) & (rows < stop)]) for program, rows in programs]
            shots = range_shots(levels, (start, stop))
            pubs = [program.pub(angles[part], shots) for program, part in parts if len(part)]
            try:
                job = primitive.run(pubs)
            except Exception as err:  # noqa: BLE001 - input, plan, network and service errors alike
                raise HardwareError(
                    f"Qiskit Runtime refused stage {stage} rows {start}:{stop} ({type(err).__name__}: {str(err)[:300]}); "
                    f"the jobs sent before it are journaled, and `qattn ibm resubmit {folder}` sends the rest"
                ) from None
            journal.jobs.append(Job(job_id=job.job_id(), stage=stage, rows=(start, stop), submitted_at=now()))
            journal.save(folder)
            client.set_tag(journal.mlflow_run_id, *job_tag(journal.jobs[-1], kind))
            jobs.append(job)
    if device.local:  # the local "device" is this process: keep what it computed where retrieve looks
        for job in jobs:
            LocalJobs(folder / "local").keep(job)


def job_tag(job: Job, kind: str) -> tuple[str, str]:
    return f"qattn.ibm.job.{job.job_id}", f"stage {job.stage} ({kind}) rows {job.rows[0]}:{job.rows[1]}"


def refresh(folder: Path, journal: Journal, device: Device, keep_values: bool = True, echo: Echo = print) -> None:
    """Tag every job on the MLflow run again (a process killed between journal and tag left one out),
    then :func:`qattn.ibm.jobs.poll` their statuses (and values, with ``keep_values``)."""
    kinds = {stage.stage: stage.kind for stage in journal.stages}
    tags = [RunTag(*job_tag(job, kinds[job.stage])) for job in journal.jobs]
    client = MlflowClient()  # the journal's store: open_journal points MLflow at it
    for start in range(0, len(tags), 100):  # MLflow's limit per batch
        client.log_batch(journal.mlflow_run_id, tags=tags[start : start + 100])
    poll(folder, journal, device.service, keep_values, echo)


def stage_results(
    folder: Path, journal: Journal, model: TextClassifier,
) -> dict[int, tuple[dict[str, np.ndarray], np.ndarray]]:
    """``stage -> (stage file arrays, values)`` for every stage whose row ranges all have a retrieved job,
    each job's values checked (:func:`checked_values`) before anything uses them."""
    kernels = quantum_kernels_of(model)
    n_qubits = kernels[0].feature_map.n_qubits if kernels else None  # None: QUBO sampling (widths in the stage file)
    results = {}
    for stage in journal.stages:
        ranges = journal.ranges(stage.stage)
        expected = job_ranges(stage.circuits, journal.options, stage.kind, stage.levels)
        retrieved = [next((j for j in ranges.get(rows, []) if j.status == "RETRIEVED"), None) for rows in expected]
        if all(retrieved):
            arrays = load_stage_arrays(folder, stage.stage)
            values = stack_rows([checked_values(folder, journal, stage, arrays, job, n_qubits) for job in retrieved])
            results[stage.stage] = (arrays, values)
    return results


def checked_values(
    folder: Path, journal: Journal, stage: Stage, arrays: dict[str, np.ndarray], job: Job, n_qubits: int | None,
) -> np.ndarray:
    """A retrieved job's values, once they have the shape its circuits give and are all finite. Otherwise
    the job is marked failed (so ``resubmit`` sends its rows again) and a :class:`HardwareError` names the
    file, the job and what is wrong; nothing has been logged to MLflow by then."""
    values = load_values(folder, job.job_id)
    count, shots = job.rows[1] - job.rows[0], range_shots(stage.levels, job.rows) or journal.options.shots
    if stage.kind == "fidelity":
        per_circuit, words = (), "1 value"
    elif stage.kind == "z":
        per_circuit, words = (n_qubits,), f"{n_qubits} values"  # <Z> of each qubit
    else:  # bitstrings: a bits job's are padded to its widest QUBO
        width = n_qubits if stage.kind == "randomized" else int(arrays["qubits"][job.rows[0] : job.rows[1]].max())
        per_circuit, words = (shots, width), f"{shots} bitstrings of {width} bits"
    expected = (count, *per_circuit)
    if values.shape != expected:
        problem = f"holds values of shape {values.shape}, expected {expected}: {count} circuits x {words}"
    elif not (finite := np.isfinite(values)).all():
        problem = f"holds {int((~finite).sum())} value(s) that are NaN or infinite"
    else:
        return values
    job.status = "ERROR"
    journal.save(folder)
    raise HardwareError(
        f"{values_path(folder, job.job_id)} (job {job.job_id}, stage {stage.stage} rows {job.rows[0]}:{job.rows[1]}) "
        f"{problem}; nothing was logged to MLflow. The job is marked failed: `qattn ibm resubmit {folder}` sends its "
        "circuits again"
    )


def holding_lock(command):
    """Run a journal command under the journal's lock (see :func:`qattn.ibm.journal.locked`)."""

    @functools.wraps(command)
    def locked_command(folder: Path, *args, **kwargs):
        with locked(folder):
            return command(folder, *args, **kwargs)

    return locked_command


def open_journal(folder: Path) -> tuple[Journal, Device]:
    """The journal and its device, once its MLflow store answers (retrieve, resubmit and cancel write to it)."""
    journal = Journal.load(folder)
    mlflow.set_tracking_uri(journal_store(journal))
    check_store()
    return journal, resolve_device(journal.device, journal.ideal)


def journal_store(journal: Journal) -> str:
    """The URI to reach the journal's MLflow store. The journal holds it without a password; where the
    store needs one, it comes from --tracking-uri / $MLFLOW_TRACKING_URI naming the same store, or (for
    an HTTP server) from MLflow's credential variables."""
    live = absolute_uri(mlflow.get_tracking_uri())
    if journal.tracking_uri in (live, mask_uri(live), bare_uri(live)):
        return live
    if urlsplit(journal.tracking_uri).password == "***":
        raise HardwareError(
            f"the journal's MLflow store {journal.tracking_uri} needs its password, which the journal does not "
            "keep: pass it with --tracking-uri (or set MLFLOW_TRACKING_URI to that URI with the password)"
        )
    return journal.tracking_uri


@holding_lock
def retrieve(folder: Path, echo: Echo = print) -> bool:
    """Collect finished jobs; submit the next stage, or finish the evaluation. True once finished."""
    journal, device = open_journal(folder)
    client = MlflowClient()  # the journal's store: open_journal points MLflow at it
    # the evaluation run says whether it holds the comparison: a copy of this journal may have logged it
    logged = [s.stage for s in journal.stages] if journal.finished else logged_stages(client, journal.mlflow_run_id)
    if logged:
        for stage in logged:
            echo(f"stage {stage} already retrieved into run {journal.mlflow_run_id}")
        if not journal.finished:
            journal.finished = True
            journal.save(folder)
        return True
    if problems := damaged_stages(folder, journal):  # before anything is fetched or loaded
        raise HardwareError("\n".join(problems))
    refresh(folder, journal, device, echo=echo)
    saved = load_saved(journal.model)
    evaluation = documents(saved, journal.split, journal.docs)
    results = stage_results(folder, journal, saved.model)
    try:
        hardware = forward(evaluation, staged(saved.model, journal.options, results, device=device))
    except Pending as pending:
        stage = pending.request.stage
        if stage >= len(journal.stages):
            submit_stage(folder, journal, device, pending.request, client, echo, saved.model)
            echo(f"stage {stage} submitted; run `qattn ibm retrieve {folder}` again when its jobs are done")
            return False
        jobs = journal.stage_jobs(stage)
        counts = {s: sum(j.status == s for j in jobs) for s in sorted({j.status for j in jobs})}
        echo(f"stage {stage} is not complete yet: jobs {counts}")
        submitted = journal.ranges(stage)
        record = journal.stages[stage]
        expected = job_ranges(record.circuits, journal.options, record.kind, record.levels)
        if any(all(j.status in FAILED for j in submitted.get(rows, [])) for rows in expected):
            echo(f"parts of it failed, were lost or were never sent; send them (only them): `qattn ibm resubmit {folder}`")
        return False
    exact = forward(evaluation, reference(saved.model))  # exact, whatever simulator or solver the model trained with
    metrics = log_comparison(folder, journal, evaluation, hardware, exact, results, client)
    journal.finished = True
    journal.save(folder)
    echo(f"retrieved all {len(journal.stages)} stage(s); hardware vs exact (MLflow run {journal.mlflow_run_id}):")
    width = max(32, *map(len, metrics))
    for key, value in metrics.items():
        echo(f"  {key:<{width}} {value:.4f}")
    return True


@holding_lock
def resubmit(folder: Path, echo: Echo = print) -> int:
    """Send the row ranges whose every job failed, was cancelled or was lost, and those a crash kept
    from being sent at all; finished and running jobs are kept. Returns how many jobs were sent."""
    journal, device = open_journal(folder)
    refresh(folder, journal, device, echo=echo)
    client = MlflowClient()  # the journal's store: open_journal points MLflow at it
    sent, model, cache = 0, None, {}
    for stage in journal.stages:
        submitted = journal.ranges(stage.stage)
        ranges = [
            rows for rows in job_ranges(stage.circuits, journal.options, stage.kind, stage.levels)
            if all(job.status in FAILED for job in submitted.get(rows, []))
        ]
        if not ranges:
            continue
        arrays = load_stage_arrays(folder, stage.stage)
        if model is None:  # loading the model (and its data) once, and only if something is resent
            model = load_saved(journal.model).model
        fmap = quantum_kernels_of(model)[0].feature_map if stage.kind != "bits" else None
        request = Request(stage.stage, stage.kind, fmap, arrays["angles"], arrays["rows"], arrays.get("qubits"), shots=arrays.get("shots"))
        programs = request_programs(model, request, device, journal.options, cache)
        run_jobs(folder, journal, device, programs, request.angles, stage.stage, ranges, client, stage.levels)
        echo(f"stage {stage.stage}: resubmitted {len(ranges)} job(s)")
        sent += len(ranges)
    if not sent:
        echo("nothing to resubmit: every part of every stage has a job that finished or is still running")
    return sent


@holding_lock
def cancel(folder: Path, echo: Echo = print) -> int:
    """Cancel every job not yet in a final state; returns how many were asked to stop."""
    journal, device = open_journal(folder)
    refresh(folder, journal, device, keep_values=False, echo=echo)
    asked = 0
    try:
        for job in journal.jobs:
            if job.status in FINAL or device.local:  # local jobs finish inside submit; nothing is left running
                continue
            try:
                device.service.job(job.job_id).cancel()
                job.status, asked = "CANCELLED", asked + 1
            except Exception as err:  # noqa: BLE001 - e.g. it finished meanwhile; the others still get cancelled
                echo(f"job {job.job_id} was not cancelled ({type(err).__name__}: {str(err)[:200]})")
    finally:
        journal.save(folder)
    echo(f"cancelled {asked} job(s)")
    return asked
