"""Plan, submit, retrieve, resubmit and cancel a hardware evaluation of a model's attention (its jobs'
statuses alone: :mod:`qattn.ibm.jobs`).

``plan`` counts every stage's circuits (exact simulation stands in for the device, so nothing is
sent), transpiles each stage's circuit for the device and estimates QPU time. ``submit`` sends the
first stage in as few Estimator jobs as the per-job execution limit allows, inside a Batch or
Session, and journals every job id before returning. ``retrieve`` collects finished jobs, submits
the next stage while one remains, and after the last one rebuilds the attention weights and
predictions, compares them with exact simulation and logs both to an MLflow run that is a child of
the model's run.

Circuit-kernel models run their stages through :class:`~qattn.ibm.staged.StagedExecutor` (Estimator
jobs); annealing models with the ``qaoa`` solver through :class:`~qattn.ibm.staged_solver.StagedSolver`
(``bits`` stages: one sampling circuit per QUBO, Sampler jobs), compared with the ``exact`` solver.
"""

from __future__ import annotations

import functools
import math
import tempfile
from collections.abc import Callable, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import mlflow
import numpy as np
import torch
from mlflow.entities import RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from qattn.annealing import AnnealingKernel
from qattn.config import load_config
from qattn.executors import Executor, PennyLaneExecutor
from qattn.executors.circuits import exact_values
from qattn.experiment import SavedModel, load_saved
from qattn.kernels import QuantumKernel, quantum_kernels
from qattn.model import PAD_ID, ClassifierOutput, TextClassifier, build_model
from qattn.solvers import ExactSolver, QuboSolver
from qattn.solvers.qaoa import QaoaSolver
from qattn.tracking import bare_uri, check_store, mask_uri
from qattn.trainer import pad_batch

from .devices import Device, HardwareError, LocalJobs, resolve_device, stack_rows
from .jobs import poll
from .journal import (
    FAILED, FINAL, SAMPLER_KINDS, Job, Journal, Options, Stage, damaged_stages, load_stage_arrays, load_values, locked,
    now, save_stage,
)
from .programs import Program, build_program
from .staged import Pending, Request, StagedExecutor
from .staged_solver import StagedSolver, bits_programs, sampling_metrics

Echo = Callable[[str], None]


@dataclass
class Evaluation:
    """A model and the documents it reads on the device (one padded batch)."""

    model: TextClassifier
    ids: torch.Tensor  # (D, L)
    labels: list[int] | None
    split: str
    docs: list[int]


Backend = Executor | QuboSolver  # what a staged pass swaps into the model's kernels


def quantum_kernels_of(model: TextClassifier) -> list[QuantumKernel]:
    return [module for module in model.modules() if isinstance(module, QuantumKernel)]


def annealing_kernels_of(model: TextClassifier) -> list[AnnealingKernel]:
    return [module for module in model.modules() if isinstance(module, AnnealingKernel)]


@contextmanager
def backend_swapped(model: TextClassifier, backend: Backend):
    """``backend`` in every kernel it serves: an executor in each circuit kernel, a solver in each annealing one."""
    if isinstance(backend, QuboSolver):
        kernels, slot = annealing_kernels_of(model), "solver"
    else:
        kernels, slot = quantum_kernels_of(model), "executor"
    saved = [getattr(kernel, slot) for kernel in kernels]
    for kernel in kernels:
        setattr(kernel, slot, backend)
    try:
        yield
    finally:
        for kernel, original in zip(kernels, saved):
            setattr(kernel, slot, original)


def forward(evaluation: Evaluation, backend: Backend | None = None) -> ClassifierOutput:
    """The model on the evaluation's documents (with ``backend`` in every kernel it serves, if given)."""
    if isinstance(backend, (StagedExecutor, StagedSolver)):
        backend.reset()
    evaluation.model.eval()
    with torch.no_grad(), backend_swapped(evaluation.model, backend) if backend else nullcontext():
        return evaluation.model(evaluation.ids, return_attention=True)


def hardware_solver(model: TextClassifier) -> QaoaSolver | None:
    """The ``qaoa`` solver of an annealing model (None for other models); another solver is refused."""
    solvers = {id(kernel.solver): kernel.solver for kernel in annealing_kernels_of(model)}
    for solver in solvers.values():
        if not isinstance(solver, QaoaSolver):
            raise HardwareError(
                f"this model's annealing attention uses the {solver.name!r} solver, which runs on classical hardware; "
                "a device samples QUBOs with the qaoa solver: train with model.annealing.solver = \"qaoa\""
            )
    return next(iter(solvers.values()), None)


def staged(
    model: TextClassifier, options: Options, results: dict | None = None, *, stand_in: bool = False,
    device: Device | None = None,
) -> StagedExecutor | StagedSolver:
    """The staged backend of ``model``: retrieved ``results`` (stage -> (stage file arrays, values)) answer
    their stages; with ``stand_in`` exact simulation (or the ``exact`` solver) answers the others.
    ``options`` say how circuits are estimated: shots, estimator, rotations, error budget."""
    results = results or {}
    if (solver := hardware_solver(model)) is not None:
        return StagedSolver(solver, results, stand_in=ExactSolver() if stand_in else None, device=device)
    answers = {stage: (arrays["angles"], values, arrays.get("shots")) for stage, (arrays, values) in results.items()}
    return StagedExecutor(
        answers, stand_in=stand_in, shots=options.shots, estimator=options.estimator, rotations=options.rotations,
        budget=options.budget(), rotation_seed=options.seed_transpiler or 0,
    )


def reference(model: TextClassifier) -> Backend:
    """What hardware is compared with: exact simulation, or the ``exact`` solver."""
    return ExactSolver() if hardware_solver(model) is not None else PennyLaneExecutor()


def documents(saved: SavedModel, split: str, docs: list[int]) -> Evaluation:
    encoded = saved.encoded(split)
    if not docs or min(docs) < 0 or max(docs) >= len(encoded.ids):
        raise HardwareError(f"--docs must pick documents 0..{len(encoded.ids) - 1} of the {split} split, got {docs}")
    return Evaluation(saved.model, pad_batch(encoded.ids, docs), [encoded.labels[i] for i in docs], split, docs)


def synthetic_document(model: TextClassifier, vocab_size: int, tokens: int, max_length: int) -> Evaluation:
    """One document of exactly ``tokens`` non-padding tokens (for plans that need no data)."""
    if tokens > max_length:
        raise HardwareError(f"--tokens {tokens} exceeds the model's max_length of {max_length} (documents are cut there)")
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(PAD_ID + 1, vocab_size, (1, tokens), generator=generator)
    return Evaluation(model, ids, None, "synthetic", [0])


def require_quantum(model: TextClassifier) -> None:
    if not quantum_kernels_of(model) and hardware_solver(model) is None:
        raise HardwareError("this model's attention is classical: it has no circuits to run on a device")


# -- plan ----------------------------------------------------------------------------------------


@dataclass
class StagePlan:
    stage: int
    kind: str
    circuits: int
    executions: int
    jobs: int
    depth: int
    two_qubit_gates: int
    qpu_seconds: float


def stage_plans(evaluation: Evaluation, device: Device, options: Options) -> list[StagePlan]:
    stand_in = staged(evaluation.model, options, stand_in=True, device=device)
    forward(evaluation, stand_in)
    cache: dict = {}
    plans = []
    for request in stand_in.requests:
        programs = request_programs(evaluation.model, request, device, options, cache)
        executions = row_executions(request, options)
        seconds = sum(
            executions[rows].sum() * (program.seconds(device.backend) + device.rep_delay) for program, rows in programs
        )
        plans.append(StagePlan(
            request.stage, request.kind, request.circuits, int(executions.sum()),
            len(job_ranges(request.circuits, options, request.kind, request_levels(request))),
            max(program.depth for program, _ in programs), max(program.two_qubit_gates for program, _ in programs), seconds,
        ))  # fmt: skip
    return plans


def row_executions(request: Request, options: Options) -> np.ndarray:
    """``(M,)`` executions each circuit of a stage costs on the device."""
    if request.shots is None:
        return np.full(request.circuits, options.circuit_executions(request.kind), dtype=np.int64)
    costs = {int(s): options.circuit_executions(request.kind, int(s)) for s in np.unique(request.shots)}
    return np.array([costs[int(s)] for s in request.shots], dtype=np.int64)


def request_levels(request: Request) -> list[tuple[int, int, int]]:
    """``(start, stop, shots)`` of a stage whose rows (ascending in shots) have their own shots; [] if none."""
    if request.shots is None:
        return []
    levels, starts = np.unique(request.shots, return_index=True)
    stops = [*starts[1:], request.circuits]
    return [(int(a), int(b), int(level)) for a, b, level in zip(starts, stops, levels)]


def request_programs(
    model: TextClassifier, request: Request, device: Device, options: Options, cache: dict | None = None,
) -> list[tuple[Program, np.ndarray]]:
    """The ISA programs of a stage's circuits, each with the rows it runs: one for a circuit kernel's
    stage, one per qubit count for a ``bits`` stage."""
    cache = {} if cache is None else cache
    if request.kind == "bits":
        return bits_programs(hardware_solver(model), request.qubits, device, options, cache.setdefault("bits", {}))
    key = (request.fmap, request.kind)
    if key not in cache:
        cache[key] = build_program(
            request.fmap, request.kind, device.backend, options.optimization_level, options.seed_transpiler
        )
    return [(cache[key], np.arange(request.circuits))]


def plan(
    target: str, device_name: str, options: Options, *, split: str = "test", docs: list[int] | None = None,
    tokens: int | None = None, overrides: list[str] = (),
) -> tuple[dict[str, list[StagePlan]], str, Evaluation]:
    """Stage plans per quantum kernel (the model's own first) for a checkpoint, an MLflow run or a
    config (untrained: circuit counts and depths do not depend on weights)."""
    device = resolve_device(device_name)
    if target.endswith(".toml"):
        config = load_config(target, list(overrides))
        vocab, model_kernel = config.tokenizer.vocab_size, model_label(config.model)
        if config.model.attention == "classical":
            raise HardwareError(f"{target} configures classical attention; plan a quantum one (--set model.attention=quantum)")
        if tokens is None:
            raise HardwareError("a config has no trained tokenizer: give --tokens N to plan one document of N tokens")
        evaluation = synthetic_document(build_model(config.model, vocab, 2), vocab, tokens, config.model.max_length)
    else:
        saved = load_saved(target)
        config, vocab, model_kernel = saved.config, saved.tokenizer.get_vocab_size(), model_label(saved.config.model)
        require_quantum(saved.model)
        if tokens is not None:
            evaluation = synthetic_document(saved.model, vocab, tokens, config.model.max_length)
        else:
            evaluation = documents(saved, split, docs or [0])
    plans = {model_kernel: stage_plans(evaluation, device, options)}
    for kernel in quantum_kernels() if config.model.attention == "quantum" else ():
        if kernel not in plans:
            other = build_model(config.model.model_copy(update={"kernel": kernel}), vocab, 2)
            plans[kernel] = stage_plans(Evaluation(other, evaluation.ids, None, evaluation.split, evaluation.docs), device, options)
    return plans, model_kernel, evaluation


@dataclass
class EstimatorPlan:
    """One way to estimate a document's fidelities: its cost and its predicted attention-weight error."""

    family: str  # fixed | budgeted | adaptive | randomized
    estimator: str
    circuits: int
    executions: int
    qpu_seconds: float
    predicted_error: float  # mean over rows of the expected total-variation distance of the weights
    options: dict  # the Options fields that give this plan (for submit)
    target: float | None = None  # the error it was sized for (None: fixed shots)


def estimator_plans(
    evaluation: Evaluation, device: Device, options: Options, targets: Sequence[float], fixed_shots: Sequence[int] = (),
) -> list[EstimatorPlan]:
    """Fixed shots (``options.shots`` and each of ``fixed_shots``), then per target the error budget
    (exact prior and adaptive) and randomized measurements sized for it (mean row TV of the attention
    weights), for the fidelity calls of one exactly simulated pass over the evaluation's documents,
    each with QPU time on ``device`` and predicted error."""
    from qattn.executors.forecast import allocated_error, budgeted_shots, fixed_error, randomized_unit_error

    recorder = StagedExecutor(stand_in=True, record=True, shots=options.shots)
    forward(evaluation, recorder)
    calls = recorder.calls
    if not calls:
        raise HardwareError("--target-error budgets fidelity circuits; this model's attention has none (plan it without)")
    fmap = quantum_kernels_of(evaluation.model)[0].feature_map
    per_execution = {
        kind: build_program(fmap, kind, device.backend, options.optimization_level, options.seed_transpiler).seconds(device.backend)
        + device.rep_delay for kind in ("fidelity", "randomized")
    }  # fmt: skip
    pairs, tokens, pilot = sum(call.pairs for call in calls), sum(call.tokens for call in calls), options.pilot_shots

    def executions(shots: np.ndarray, kind: str = "fidelity") -> int:
        levels, counts = np.unique(shots[shots > 0], return_counts=True)
        return int(sum(options.circuit_executions(kind, int(level)) * count for level, count in zip(levels, counts)))

    def mean_error(errors: list[np.ndarray]) -> float:
        return float(np.concatenate([e[call.used_rows] for e, call in zip(errors, calls)]).mean())

    def plan(family, name, circuits, count, error, fields, target=None, kind="fidelity") -> EstimatorPlan:
        return EstimatorPlan(family, name, circuits, count, count * per_execution[kind], error, fields, target)

    plans = [
        plan("fixed", f"fixed, {shots} shots", pairs, pairs * options.circuit_executions("fidelity", shots),
             mean_error([fixed_error(call, shots) for call in calls]), {"shots": shots})
        for shots in sorted({options.shots, *fixed_shots})
    ]  # fmt: skip
    # one rotation's error per token for 16 and 64 shots per rotation (benchmarks/fidelity_estimators.py: 16 is best
    # up to 5 qubits, 64 at 6); K rotations divide it by sqrt(K)
    unit = {shots: mean_error([randomized_unit_error(call, shots) for call in calls]) for shots in (16, 64)}
    for target in targets:
        allocated = [budgeted_shots(call, options.model_copy(update={"target_error": target}).budget()) for call in calls]
        plans.append(plan("budgeted", "budgeted (exact prior)", pairs, sum(executions(a) for a in allocated),
                          mean_error([allocated_error(c, a) for c, a in zip(calls, allocated)]), {"target_error": target}, target))
        extra = [np.where(a > pilot, a - pilot, 0) for a in allocated]
        plans.append(plan(
            "adaptive", f"adaptive (pilot {pilot} shots)", pairs + sum(int((e > 0).sum()) for e in extra),
            pairs * options.circuit_executions("fidelity", pilot) + sum(executions(e) for e in extra),
            mean_error([allocated_error(c, np.where(c.rows[2], np.maximum(a, pilot), 0)) for c, a in zip(calls, allocated)]),
            {"target_error": target, "adaptive": True}, target,
        ))  # fmt: skip
        candidates = []
        for shots, error in unit.items():
            rotations = max(1, math.ceil((error / target) ** 2))
            candidates.append(plan(
                "randomized", f"randomized, {rotations} rotations x {shots} shots", tokens * rotations, tokens * rotations * shots,
                error / math.sqrt(rotations), {"estimator": "randomized", "rotations": rotations, "shots": shots}, target,
                "randomized",
            ))  # fmt: skip
        plans.append(min(candidates, key=lambda p: p.qpu_seconds))
    return plans


def model_label(model) -> str:
    """The plan's name for a model's attention: its circuit kernel, or ``qaoa`` (annealing attention)."""
    return "qaoa" if model.attention == "annealing" else model.kernel


def job_ranges(
    circuits: int, options: Options, kind: str = "fidelity", levels: list[tuple[int, int, int]] = (),
) -> list[tuple[int, int]]:
    """Row ranges of one stage, each within the per-job execution limit and of one shot count (a job
    runs one precision: Qiskit Runtime refuses mixed ones)."""
    ranges = []
    for first, stop, shots in levels or [(0, circuits, options.shots)]:
        per_job = max(1, options.job_executions(kind) // options.circuit_executions(kind, shots))
        ranges += [(start, min(start + per_job, stop)) for start in range(first, stop, per_job)]
    return ranges


def range_shots(levels: list[tuple[int, int, int]], rows: tuple[int, int]) -> int | None:
    """The shots of a job's row range (None: the options')."""
    return next((shots for start, stop, shots in levels if start <= rows[0] < stop), None)


# -- submit --------------------------------------------------------------------------------------


def submit(
    target: str, device_name: str, options: Options, *, split: str, docs: list[int], folder: Path | None = None,
    ideal: bool = False, echo: Echo = print,
) -> Path:
    """Journal and submit the first stage; returns the journal folder."""
    device = resolve_device(device_name, ideal)
    saved = load_saved(target)
    require_quantum(saved.model)
    evaluation = documents(saved, split, docs)
    if hardware_solver(saved.model) is not None:  # every stage's QUBOs fit the device, before anything runs
        forward(evaluation, staged(saved.model, options, stand_in=True, device=device))
    try:
        forward(evaluation, staged(saved.model, options, device=device))
        raise HardwareError("the model ran without asking for circuits")  # require_quantum rules this out
    except Pending as pending:
        request = pending.request
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


def absolute_uri(uri: str) -> str:
    """``sqlite:///mlflow.db`` (relative to the working directory) -> an absolute SQLite URI."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri.removeprefix(prefix)).resolve())
    return uri


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
    save_stage(folder, request.stage, request.angles, request.rows, **qubits, **shots, **request.extra)
    levels = request_levels(request)
    journal.stages.append(Stage(
        stage=request.stage, kind=request.kind, circuits=request.circuits, depth=max(p.depth for p, _ in programs),
        two_qubit_gates=max(p.two_qubit_gates for p, _ in programs), levels=levels,
    ))  # fmt: skip
    journal.save(folder)
    ranges = job_ranges(request.circuits, options, request.kind, levels)
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


# -- status, retrieve, resubmit, cancel ----------------------------------------------------------


def refresh(folder: Path, journal: Journal, device: Device, keep_values: bool = True, echo: Echo = print) -> None:
    """Tag every job on the MLflow run again (a process killed between journal and tag left one out),
    then :func:`qattn.ibm.jobs.poll` their statuses (and values, with ``keep_values``)."""
    kinds = {stage.stage: stage.kind for stage in journal.stages}
    tags = [RunTag(*job_tag(job, kinds[job.stage])) for job in journal.jobs]
    client = MlflowClient()  # the journal's store: open_journal points MLflow at it
    for start in range(0, len(tags), 100):  # MLflow's limit per batch
        client.log_batch(journal.mlflow_run_id, tags=tags[start : start + 100])
    poll(folder, journal, device.service, keep_values, echo)


def stage_results(folder: Path, journal: Journal) -> dict[int, tuple[dict[str, np.ndarray], np.ndarray]]:
    """``stage -> (stage file arrays, values)`` for every stage whose row ranges all have a retrieved job."""
    results = {}
    for stage in journal.stages:
        ranges = journal.ranges(stage.stage)
        expected = job_ranges(stage.circuits, journal.options, stage.kind, stage.levels)
        retrieved = [next((j for j in ranges.get(rows, []) if j.status == "RETRIEVED"), None) for rows in expected]
        if all(retrieved):
            values = stack_rows([load_values(folder, job.job_id) for job in retrieved])
            results[stage.stage] = (load_stage_arrays(folder, stage.stage), values)
    return results


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
    if journal.finished:
        echo(f"already retrieved: MLflow run {journal.mlflow_run_id}")
        return True
    if problems := damaged_stages(folder, journal):  # before anything is fetched or loaded
        raise HardwareError("\n".join(problems))
    refresh(folder, journal, device, echo=echo)
    saved = load_saved(journal.model)
    evaluation = documents(saved, journal.split, journal.docs)
    results = stage_results(folder, journal)
    client = MlflowClient()  # the journal's store: open_journal points MLflow at it
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


# -- hardware vs exact ---------------------------------------------------------------------------


def log_comparison(folder, journal, evaluation, hardware, exact, results, client) -> dict[str, float]:
    run_id = journal.mlflow_run_id
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
    for key, value in metrics.items():
        client.log_metric(run_id, key, value)
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


def total(plans: list[StagePlan], field: str) -> float:
    return sum(getattr(p, field) for p in plans)


def format_seconds(seconds: float) -> str:
    if math.isnan(seconds):
        return "n/a"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"

