"""Bitstrings from a device: Qiskit Runtime's Sampler on ``bits`` programs, for work that needs samples
rather than the expectation values the attention stages estimate (the ``qaoa`` solver's one sampling
circuit per QUBO).

    sampler = DeviceSampler("fake_manila", optimization_level=2, seed=1)   # or an IBM device name
    solver = QaoaSolver(mode="sampled", sampler=sampler, shots=256)        # what the solver is handed
    sampler.plan(solver, Q, free)                                          # its QPU cost, before anything runs

The same devices (:func:`qattn.runtime.devices.resolve_device`: ``fake_<name>`` in local testing mode,
any other name through the saved account), the same ISA programs (:mod:`qattn.runtime.programs`) and the
same executor-based primitives and execution modes as ``qattn ibm``. The call waits for its jobs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from qattn.circuits import Gate
from qattn.circuits.qubit_order import qiskit_samples_to_wire_order
from qattn.circuits.to_qiskit import slot_circuit

from .devices import Device, HardwareError, resolve_device
from .programs import Program, sampler_program

MAX_EXECUTIONS = 10_000_000  # per job (circuits x shots); IBM's documented limit


def sample(
    device: Device, pubs: list[tuple[Program, np.ndarray]], shots: int, *, seed_simulator: int | None = None,
    mode: str = "batch", max_executions: int = MAX_EXECUTIONS,
) -> list[np.ndarray]:
    """Each ``bits`` program on its ``(M, slots)`` angle rows, ``shots`` times: per pub a bool
    ``(M, shots, n)`` array in wire order. Rows are split into jobs of at most ``max_executions``
    executions, all in one Batch (or Session); ``seed_simulator`` seeds local testing mode only."""
    from qiskit_ibm_runtime import Batch, Session
    from qiskit_ibm_runtime.executor_sampler import Sampler

    if any(program.kind != "bits" for program, _ in pubs):
        raise ValueError("sample() takes bits programs (qattn.runtime.programs.sampler_program)")
    options: dict = {"default_shots": shots}
    if device.local and seed_simulator is not None:
        options["simulator"] = {"seed_simulator": seed_simulator}
    per_job = max(1, max_executions // shots)
    chunks = [(i, start) for i, (_, angles) in enumerate(pubs) for start in range(0, len(angles), per_job)]
    context = Session if mode == "session" else Batch
    with context(backend=device.mode) as runtime:
        sampler = Sampler(mode=runtime, options=options)
        pubs_sent = [[pubs[i][0].pub(pubs[i][1][start : start + per_job])] for i, start in chunks]
        jobs = [runtime_step(device, sampler.run, sent) for sent in pubs_sent]
        results = [runtime_step(device, job.result)[0].data.meas for job in jobs]
    bits: list[list[np.ndarray]] = [[] for _ in pubs]
    for (i, _), samples in zip(chunks, results):
        bits[i].append(qiskit_samples_to_wire_order(samples))
    return [np.concatenate(parts) if parts else np.zeros((0, shots, program.circuit.num_clbits), dtype=bool)
            for parts, (program, _) in zip(bits, pubs)]


def runtime_step(device: Device, call, *args):
    """A Qiskit Runtime call; any failure becomes a :class:`HardwareError` that names the device."""
    try:
        return call(*args)
    except Exception as err:  # noqa: BLE001 - input, network, service and job errors alike
        raise HardwareError(
            f"Qiskit Runtime's Sampler failed on {device.name} ({type(err).__name__}: {str(err)[:300]})"
        ) from None


@dataclass
class SamplingPlan:
    """What one circuit per QUBO of ``variables`` free variables costs on the device."""

    variables: int
    circuits: int
    executions: int
    depth: int
    two_qubit_gates: int
    qpu_seconds: float


class DeviceSampler:
    """A device sampling slot circuits (a ``qaoa`` solver's :class:`~qattn.solvers.qaoa.BitSampler`): each
    circuit shape transpiled once for the device, rows sampled through :func:`sample`. The device is
    opened on first use, so building a model that names one contacts nothing yet."""

    def __init__(self, device: str | Device, *, optimization_level: int = 2, seed: int | None = None) -> None:
        self.device_name = device if isinstance(device, str) else device.name
        if not isinstance(device, str):  # an open device: the cached property below is filled already
            self.__dict__["device"] = device
        self.optimization_level, self.seed = optimization_level, seed
        self._programs: dict[tuple, Program] = {}

    def __repr__(self) -> str:
        return f"DeviceSampler({self.device_name!r}, optimization_level={self.optimization_level}, seed={self.seed})"

    @cached_property
    def device(self) -> Device:
        return resolve_device(self.device_name)

    def check_qubits(self, n_qubits: int) -> None:
        if n_qubits > self.device.backend.num_qubits:
            raise HardwareError(
                f"{n_qubits} free variables need {n_qubits} qubits; {self.device.name} has "
                f"{self.device.backend.num_qubits}: choose a larger device or fewer tokens/heads per problem"
            )

    def program(self, gates: list[Gate], n_qubits: int) -> Program:
        """The slot circuit of ``gates`` measured on every qubit, in the device's ISA (transpiled once)."""
        key = (tuple((g.name, g.wires) for g in gates), n_qubits)
        if key not in self._programs:
            self.check_qubits(n_qubits)
            circuit, _ = slot_circuit(gates, n_qubits, "a")
            self._programs[key] = sampler_program(circuit, self.device.backend, self.optimization_level, self.seed)
        return self._programs[key]

    def bits(self, gates: list[Gate], n_qubits: int, slots: np.ndarray, shots: int) -> np.ndarray:
        """``(M, shots, n)`` bool bitstrings (wire order) of the circuit at each row of ``slots``."""
        return sample(self.device, [(self.program(gates, n_qubits), slots)], shots, seed_simulator=self.seed)[0]

    def plan(self, solver, Q: torch.Tensor, free: torch.Tensor | None = None) -> list[SamplingPlan]:
        """What ``solver`` (a :class:`~qattn.solvers.qaoa.QaoaSolver`) solving these QUBOs here costs, before
        anything is sent: per free-variable count, one circuit per QUBO, ``solver.shots`` executions each,
        its ISA depth and two-qubit gates, and QPU time as ``qattn ibm plan`` estimates it (executions x
        (circuit + readout + repetition delay))."""
        counts = Counter(len(variables) for _, variables, _ in solver.problems(Q, free))
        plans = []
        for m, circuits in sorted(counts.items()):
            program, executions = self.program(solver.template(m), m), circuits * solver.shots
            seconds = executions * (program.seconds(self.device.backend) + self.device.rep_delay)
            plans.append(SamplingPlan(m, circuits, executions, program.depth, program.two_qubit_gates, seconds))
        return plans
