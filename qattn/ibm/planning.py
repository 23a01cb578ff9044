"""What a hardware evaluation costs, before anything is sent.

``plan`` counts every stage's circuits (exact simulation stands in for the device, so nothing is
sent), transpiles each stage's circuit for the device and estimates QPU time, for the model's own
kernel and, for circuit attention, the other kernels at the same settings. ``estimator_plans``
compares the ways of estimating fidelities (fixed shots, an error budget with an exact or an adaptive
prior, randomized measurements) by QPU time and predicted attention-weight error. The row ranges of a
stage's jobs (:func:`job_ranges`) are shared with the job lifecycle (:mod:`qattn.ibm.lifecycle`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qattn.config import load_config
from qattn.kernels import quantum_kernels
from qattn.kinds import KINDS
from qattn.model import TextClassifier, build_model
from qattn.runtime.devices import Device, HardwareError, resolve_device
from qattn.runtime.programs import Program, build_program
from qattn.runtime.sampling import DeviceSampler

from .evaluation import (
    Evaluation, documents, forward, hardware_solver, load_hardware_model, model_label, quantum_kernels_of,
    require_quantum, staged, synthetic_document,
)
from .journal import Options
from .staged import Request, StagedExecutor
from .staged_solver import bits_programs


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
        if "bits" not in cache:
            cache["bits"] = DeviceSampler(device, optimization_level=options.optimization_level, seed=options.seed_transpiler)
        sampler = cache["bits"]
        return bits_programs(hardware_solver(model), request.qubits, sampler)
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
        if not KINDS.get(config.model.attention).hardware:
            raise HardwareError(
                f"{target} configures {config.model.attention} attention, which has nothing a device runs; "
                "plan a quantum one (--set model.attention=quantum)"
            )
        if tokens is None:
            raise HardwareError("a config has no trained tokenizer: give --tokens N to plan one document of N tokens")
        evaluation = synthetic_document(build_model(config.model, vocab, 2), vocab, tokens, config.model.max_length)
    else:
        saved = load_hardware_model(target, "plan")
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


def job_ranges(
    circuits: int, options: Options, kind: str = "fidelity", levels: list[tuple[int, int, int]] = (),
) -> list[tuple[int, int]]:
    """Row ranges of one stage, each within the per-job execution limit and of one shot count (a job
    runs one precision: Qiskit Runtime refuses mixed ones)."""
    ranges = []
    for first, stop, shots in levels or [(0, circuits, options.shots)]:
        require_one_job(options, kind, shots, budgeted=bool(levels))
        per_job = options.job_executions(kind) // options.circuit_executions(kind, shots)
        ranges += [(start, min(start + per_job, stop)) for start in range(first, stop, per_job)]
    return ranges


def require_one_job(options: Options, kind: str, shots: int, budgeted: bool = False) -> None:
    """Refuse a circuit whose shots alone exceed a job's executions. A circuit's shots run in one job (one
    pub), so they are not split over jobs; the message names both numbers and the most shots that fit, or,
    when not even one shot fits (twirling rounds shots up, a small --max-executions less TREX's reserve),
    the --max-executions that one shot needs."""
    executions, limit = options.circuit_executions(kind, shots), options.job_executions(kind)
    if executions <= limit:
        return
    reserve = options.max_executions - limit
    mitigation = f", less {reserve:,} for readout mitigation's calibration" if reserve else ""
    carries = (f"a job carries at most {limit:,} (--max-executions {options.max_executions:,}{mitigation}), "
               "and a circuit's shots run in one job")
    one_shot = options.circuit_executions(kind, 1)
    if one_shot > limit:
        raise HardwareError(f"not even one shot fits a job: it costs {one_shot:,} executions per circuit; {carries}: "
                            f"raise --max-executions to at least {one_shot + reserve:,}")
    low, high = 1, limit  # the most shots that fit: executions grow with shots
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if options.circuit_executions(kind, middle) <= limit else (low, middle - 1)
    if not budgeted:
        asked, fix = f"--shots {shots}", f"lower --shots to at most {low}"
    elif options.adaptive and shots == options.pilot_shots:
        asked, fix = f"--pilot-shots {shots}", f"lower --pilot-shots to at most {low}"
    else:
        asked, fix = f"the error budget's {shots} shots per circuit", "raise --target-error"
    raise HardwareError(
        f"{asked} costs {executions:,} executions per circuit; {carries}: {fix}, or raise --max-executions "
        "where your IBM Quantum plan allows larger jobs"
    )


def range_shots(levels: list[tuple[int, int, int]], rows: tuple[int, int]) -> int | None:
    """The shots of a job's row range (None: the options')."""
    return next((shots for start, stop, shots in levels if start <= rows[0] < stop), None)


STAGE_HEADER = ["kernel", "stage", "kind", "circuits", "executions", "jobs", "depth", "2q gates", "QPU time"]


def stage_rows(plans: dict[str, list[StagePlan]], model_kernel: str) -> list[list[str]]:
    """The plan's table (columns :data:`STAGE_HEADER`), as ``qattn ibm plan`` prints it: each stage of each
    kernel, then the kernel's total; the model's own kernel marked."""
    rows = []
    for kernel, stages in plans.items():
        label = f"{kernel}{' (model)' if kernel == model_kernel else ''}"
        rows += [
            [label, str(s.stage), s.kind, f"{s.circuits:,}", f"{s.executions:,}", str(s.jobs), str(s.depth),
             str(s.two_qubit_gates), format_seconds(s.qpu_seconds)]
            for s in stages
        ]  # fmt: skip
        rows.append([label, "all", "", f"{int(total(stages, 'circuits')):,}", f"{int(total(stages, 'executions')):,}",
                     str(int(total(stages, 'jobs'))), "", "", format_seconds(total(stages, "qpu_seconds"))])
    return rows


def aligned(header: list[str], rows: list[list[str]]) -> list[str]:
    """Lines of a text table: the first three columns left-aligned, the figures right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) if i < 3 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
            for row in [header, *rows]]


def total(plans: list[StagePlan], field: str) -> float:
    return sum(getattr(p, field) for p in plans)


def format_seconds(seconds: float) -> str:
    if math.isnan(seconds):
        return "n/a"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"
