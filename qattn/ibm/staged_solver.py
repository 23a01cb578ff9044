"""The QUBO solver behind ``qattn ibm`` for annealing attention: a forward pass that stops where a
device's bitstrings are missing, as :class:`qattn.ibm.staged.StagedExecutor` does for circuit kernels.

An annealing model whose solver is ``qaoa`` solves its QUBOs once per attention layer, each call
depending on the layer before, so each call is a stage: one sampling circuit per QUBO that needs one
(its free variables, one qubit each; a QUBO without free variables or with constant energy keeps
``x = 0``). At submission the QAOA angles are optimised on the simulator
(:meth:`qattn.solvers.qaoa.QaoaSolver.prepare`) and the stage file keeps the gate angles with the
QUBOs they were optimised for. A replay with retrieved bitstrings does not optimise again: it checks
that the model computes the same QUBOs (as the staged executor checks its angles) and takes each
QUBO's lowest-energy sample (:meth:`~qattn.solvers.qaoa.SamplingGroup.best`'s rule).

For ``plan``, a stand-in solver (``exact``) answers each call instead, so every stage's circuits
are counted, and their sizes checked against the device, before anything is sent or optimised.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import torch

from qattn.runtime.devices import Device, HardwareError
from qattn.runtime.programs import Program
from qattn.runtime.sampling import DeviceSampler
from qattn.solvers.base import QuboSolver
from qattn.solvers.qaoa import QaoaSolver, circuit_problems, index_bits

from .staged import Pending, Request

Problem = tuple[int, np.ndarray, np.ndarray]  # (problem, free variables, QUBO on them)


class StagedSolver(QuboSolver):
    """Answers solver calls from retrieved bitstrings, or from ``stand_in`` when given; otherwise raises
    :class:`Pending` with the stage's sampling circuits (angles optimised by ``solver``).
    ``results[stage]`` is ``(stage file arrays, bits (M, shots, width))``; ``device`` (when given) is
    checked to have a qubit per free variable of every QUBO before anything runs."""

    name: ClassVar[str] = "ibm"
    max_variables: ClassVar[int] = QaoaSolver.max_variables

    def __init__(
        self, solver: QaoaSolver, results: Mapping[int, tuple[dict, np.ndarray]] | None = None,
        stand_in: QuboSolver | None = None, device: Device | None = None,
    ) -> None:
        super().__init__(seed=solver.seed)
        self.solver = solver
        self.results = dict(results or {})
        self.stand_in = stand_in
        self.device = device
        self.requests: list[Request] = []

    def reset(self) -> None:
        self.requests = []

    def _solve(self, Q, free):
        stage = len(self.requests)
        problems = sorted(circuit_problems(Q, free), key=lambda problem: len(problem[1]))  # prepare()'s order
        if not problems:  # nothing to sample (every x = 0 is optimal): no stage, on every replay alike
            return torch.zeros(tuple(free.shape))
        self.check_qubits(stage, problems)
        if stage in self.results:
            arrays, bits = self.results[stage]
            check_submitted(stage, arrays, problems)
            self.requests.append(Request(stage, "bits", None, arrays["angles"], arrays["rows"], arrays["qubits"]))
            return best_samples(free.shape, problems, bits)
        qubits = np.array([len(variables) for _, variables, _ in problems], dtype=int)
        if self.stand_in is not None:
            rows = np.array([i for i, _, _ in problems], dtype=int)
            self.requests.append(Request(stage, "bits", None, np.zeros((len(problems), 0)), rows, qubits))
            return self.stand_in.solve(Q, free).x
        raise Pending(self.request(stage, Q, free))

    def check_qubits(self, stage: int, problems: list[Problem]) -> None:
        widest = max((len(variables) for _, variables, _ in problems), default=0)
        if self.device is not None and widest > self.device.backend.num_qubits:
            raise HardwareError(
                f"stage {stage}'s QUBOs have up to {widest} free variables, one qubit each; {self.device.name} has "
                f"{self.device.backend.num_qubits} qubits: choose a larger device, or a model with smaller QUBOs "
                "(fewer model.num_heads, a smaller model.chunk_size, shorter documents)"
            )

    def request(self, stage: int, Q: torch.Tensor, free: torch.Tensor) -> Request:
        """The stage's sampling circuits: the solver's angles optimised on the simulator, one row per QUBO."""
        groups = self.solver.prepare(Q, free)
        runs = {run.problem: run for run in self.solver.runs}
        problems = [(i, v, q) for g in groups for i, v, q in zip(g.problems, g.free, g.qubos)]
        slots = [row for g in groups for row in g.rows]
        width = max((len(v) for _, v, _ in problems), default=0)
        angles = np.zeros((len(problems), max((len(row) for row in slots), default=0)))
        variables = np.full((len(problems), width), -1)
        qubos = np.zeros((len(problems), width, width))
        for row, ((_, v, q), values) in enumerate(zip(problems, slots)):
            angles[row, : len(values)], variables[row, : len(v)], qubos[row, : len(v), : len(v)] = values, v, q
        extra = {
            "variables": variables, "qubos": qubos,
            "expectations": np.array([runs[i].expectation for i, _, _ in problems]),  # <H> at the angles, simulated
        }
        rows = np.array([i for i, _, _ in problems], dtype=int)
        return Request(stage, "bits", None, angles, rows, np.array([len(v) for _, v, _ in problems], dtype=int), extra)


def check_submitted(stage: int, arrays: dict, problems: list[Problem]) -> None:
    """The QUBOs the model computes now are those the stage's circuits were optimised for."""
    same = len(problems) == len(arrays["rows"]) and all(
        i == arrays["rows"][row] and len(v) == arrays["qubits"][row]
        and np.array_equal(v, arrays["variables"][row, : len(v)])
        and np.allclose(q, arrays["qubos"][row, : len(v), : len(v)], rtol=1e-4, atol=1e-6)
        for row, (i, v, q) in enumerate(problems)
    )
    if not same:
        raise HardwareError(
            f"stage {stage}'s circuits were submitted for other QUBOs than the model now computes "
            "(the checkpoint, its data slice or the code changed since submission); submit it again"
        )


def best_samples(shape: torch.Size, problems: list[Problem], bits: np.ndarray) -> torch.Tensor:
    """``x`` ``(P, n)``: each QUBO's lowest-energy sample on its free variables, 0 elsewhere."""
    x = np.zeros(tuple(shape))
    for row, (i, variables, qubo) in enumerate(problems):
        samples = bits[row, :, : len(variables)].astype(float)  # (shots, m)
        x[i, variables] = samples[np.argmin(np.einsum("si,ij,sj->s", samples, qubo, samples))]
    return torch.as_tensor(x)


def bits_programs(solver: QaoaSolver, qubits: np.ndarray, sampler: DeviceSampler) -> list[tuple[Program, np.ndarray]]:
    """Each qubit count's sampling circuit in the device's ISA (the ``sampler``'s, transpiled once), with
    the stage rows it samples."""
    return [(sampler.program(solver.template(m), m), np.flatnonzero(qubits == m)) for m in sorted(set(qubits.tolist()))]


def sampling_metrics(solver: QaoaSolver, stage: int, arrays: dict, bits: np.ndarray) -> dict[str, float]:
    """The device's samples of a stage against exact answers on the same QUBOs: whether its best sample
    reached the optimum (the ``exact`` solver's energy, by enumeration), the energy gap, and how often it
    sampled an optimum against the probability the simulated circuit (same angles) gives it."""
    found, gaps, frequency, probability = [], [], [], []
    for row, m in enumerate(arrays["qubits"]):
        qubo = arrays["qubos"][row, :m, :m]
        basis = index_bits(np.arange(2**m), m).astype(float)  # (2^m, m), wire order
        spectrum = np.einsum("ki,ij,kj->k", basis, qubo, basis)
        optimum = spectrum.min()
        tolerance = 1e-9 * max(1.0, np.abs(qubo).max())
        samples = bits[row, :, :m].astype(float)
        energies = np.einsum("si,ij,sj->s", samples, qubo, samples)
        gaps.append(energies.min() - optimum)
        found.append(gaps[-1] <= tolerance)
        frequency.append(np.mean(energies <= optimum + tolerance))
        slots = arrays["angles"][row, : len([g for g in solver.template(m) if g.angle is not None])]
        simulated = np.abs(solver.states(m, slots[None])[0]) ** 2
        probability.append(simulated[spectrum <= optimum + tolerance].sum())
    prefix = f"stage_{stage}"
    error = np.abs(np.array(frequency) - np.array(probability))
    return {
        f"{prefix}/optimum_found": float(np.mean(found)), f"{prefix}/mean_energy_gap": float(np.mean(gaps)),
        f"{prefix}/max_energy_gap": float(np.max(gaps)), f"{prefix}/optimum_frequency": float(np.mean(frequency)),
        f"{prefix}/optimum_probability_simulated": float(np.mean(probability)),
        f"{prefix}/mean_abs_error": float(error.mean()), f"{prefix}/max_abs_error": float(error.max()),
    }
