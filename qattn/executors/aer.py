"""Qiskit Aer executors: exact statevectors here, shot sampling in :mod:`.aer_sampled`; CPU or GPU.

    AerExecutor()                                       # exact: every token's statevector, overlaps by matmul
    SampledAerExecutor(shots=4096, seed=7)              # sampled: compute-uncompute fidelities, Z counts
    SampledAerExecutor(shots=4096, noise="FakeManilaV2")  # sampled with that device's noise model and layout
    SampledAerExecutor(shots=4096, cluster=Client("tcp://10.0.0.5:8786"), max_job_size=256)  # spread over Dask
    aer_executor(shots=None or N, **options)            # either, by shots (what a config's [model.aer] builds)

:class:`AerSimulation` is what both share: options, the device's noise, one program per circuit
kind (:mod:`qattn.executors.circuits`) built once, and running a program's rows in process or on a
cluster.

Angles are computed in torch from the backend-neutral gates (so features and weights keep their
gradients) and bound to a circuit with one parameter slot per angled gate, differentiated by exact
parameter-shift rules (:mod:`qattn.executors.shift`). Each forward is one Aer call carrying all parameter bindings of the batch (never one call per
circuit), and each backward one more call with all shifted bindings. Sampled modes run through
Aer's ``SamplerV2`` primitive, the interface the IBM runtime executor shares.

Scaling out: given a ``cluster`` (any ``concurrent.futures.Executor``-style object with ``submit``:
a ``dask.distributed.Client``, a process pool; or a Dask scheduler address), each Aer call is split
into sub-jobs of ``max_job_size`` bindings that run on it. This is Aer's own ``executor`` /
``max_job_size`` contract, done here because Aer 0.18 accepts those options but no longer splits jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor as Pool
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from qiskit import QuantumCircuit

from qattn.circuits import FeatureMap, Gate
from qattn.circuits.qubit_order import qiskit_samples_to_wire_order, qiskit_states_to_wire_order

from .base import StatevectorExecutor, complex_dtype
from .circuits import feature_map_gates, kind_circuit, parameter_columns, readout, slot_angles
from .shift import STATE_RULE, ShiftRule

Evaluate = Callable[..., np.ndarray]  # (M, slots) angles[, (M,) shots] -> (M, outputs)


def fake_backend(name: str):
    """An IBM device's snapshot (noise, coupling map, basis) from qiskit-ibm-runtime's fake provider."""
    try:
        from qiskit_ibm_runtime import fake_provider
    except ImportError:
        raise ImportError("device noise needs qiskit-ibm-runtime: pip install 'qattn[ibm]'") from None
    names = sorted(n for n in dir(fake_provider) if n.startswith("Fake") and "Provider" not in n)
    if name not in names:
        raise ValueError(f"unknown fake backend {name!r}; valid: {', '.join(names)}")
    return getattr(fake_provider, name)()


class AerSimulation:
    """Options and programs of an Aer executor, exact or sampled: validated once, each circuit kind
    built (and, for a device's noise, transpiled) once per feature map."""

    name: ClassVar[str] = "aer"
    max_qubits: ClassVar[int] = 20

    def setup(
        self, *, shots: int | None, noise: str | None, method: str, device: str, seed: int | None,
        seed_transpiler: int | None, cluster: Pool | str | None, max_job_size: int | None,
    ) -> None:
        from qiskit_aer import AerSimulator

        if shots is not None and (isinstance(shots, bool) or not isinstance(shots, int) or shots < 1):
            raise ValueError(f"shots must be a positive integer or None (exact), got {shots!r}")
        if noise is not None and shots is None:
            raise ValueError("a noisy simulation samples: give shots as well as noise")
        available = AerSimulator().available_devices()
        if device not in available:
            raise ValueError(
                f"device={device!r} is not available to Qiskit Aer here (available: {', '.join(available)}); "
                "for GPUs install qiskit-aer-gpu (pip install 'qattn[gpu]') on a machine with an NVIDIA GPU"
            )
        methods = AerSimulator().available_methods()
        if method not in methods:
            raise ValueError(f"unknown Aer method {method!r}; valid: {', '.join(methods)}")
        self.shots, self.noise, self.method, self.device = shots, noise, method, device
        self.seed, self.seed_transpiler = seed, seed_transpiler
        if max_job_size is not None and (isinstance(max_job_size, bool) or not isinstance(max_job_size, int) or max_job_size < 1):
            raise ValueError(f"max_job_size must be a positive integer (circuit bindings per sub-job), got {max_job_size!r}")
        if cluster is not None and max_job_size is None:
            raise ValueError("a cluster needs max_job_size: the circuit bindings per sub-job it receives (e.g. 256)")
        self.max_job_size = max_job_size
        self.cluster = connect_cluster(cluster) if isinstance(cluster, str) else cluster
        self.backend = fake_backend(noise) if noise else None
        self._programs: dict[tuple, Evaluate] = {}

    def __repr__(self) -> str:
        spread = f", cluster={self.cluster!r}, max_job_size={self.max_job_size}" if self.cluster is not None else ""
        return (f"{type(self).__name__}(shots={self.shots}, noise={self.noise!r}, method={self.method!r}, "
                f"device={self.device!r}{spread})")

    def check_qubits(self, n_qubits: int) -> None:
        super().check_qubits(n_qubits)
        if self.backend is not None and n_qubits > self.backend.num_qubits:
            raise ValueError(f"n_qubits={n_qubits} exceeds {self.noise}'s {self.backend.num_qubits} qubits")

    def program(self, fmap: FeatureMap, kind: str) -> Evaluate:
        """The function of slot angles (and, sampled, per-row shots) behind a kind's circuits."""
        key = (fmap, kind)
        if key not in self._programs:
            self._programs[key] = self.gate_program(feature_map_gates(fmap), fmap.n_qubits, kind)
        return self._programs[key]

    def gate_program(self, gates: list[Gate], n_qubits: int, kind: str) -> Evaluate:
        """The same for any backend-neutral circuit (its gates' angles are ignored: each angled gate is
        a slot, in gate order). Kinds: ``states`` (exact executors), ``fidelity``, ``z``,
        ``randomized`` and ``bits``: the sampled bitstrings, ``(M, shots, n)`` bool in wire order."""
        if (kind == "states") != (self.shots is None):
            raise ValueError(f"an Aer executor with shots={self.shots} has no {kind!r} program")
        key = (tuple((g.name, g.wires) for g in gates), n_qubits, kind)
        if key not in self._programs:
            program = self.build_program(gates, n_qubits, kind)
            self._programs[key] = lambda values, shots=None: self.run_program(program, values, shots)
        return self._programs[key]

    def bits(self, gates: list[Gate], n_qubits: int, slots: np.ndarray, shots: int) -> np.ndarray:
        """``(M, shots, n)`` bitstrings (wire order) of the slot circuit ``gates`` at each row of ``slots``
        (a sampled executor; what a ``qaoa`` solver's sampler does)."""
        return self.gate_program(gates, n_qubits, "bits")(slots, np.full(len(slots), shots))

    def build_program(self, gates: list[Gate], n_qubits: int, kind: str) -> AerProgram:
        circuit = kind_circuit(gates, n_qubits, kind)
        if kind == "states":
            circuit.save_statevector()
            method = "statevector" if self.method == "automatic" else self.method
            return AerProgram(circuit, kind, n_qubits, {"method": method, "device": self.device})
        circuit.measure_all()
        options = {"method": self.method, "device": self.device}
        if self.backend is not None:  # the device's layout, basis gates and noise
            from qiskit.transpiler import generate_preset_pass_manager
            from qiskit_aer import AerSimulator

            simulator = AerSimulator.from_backend(self.backend, device=self.device)
            manager = generate_preset_pass_manager(optimization_level=1, backend=simulator, seed_transpiler=self.seed_transpiler)
            circuit = manager.run(circuit)
            options = {"noise_model": simulator.options.noise_model, "device": self.device}
        return AerProgram(circuit, kind, n_qubits, options, self.shots, parameter_columns(circuit))

    def run_program(self, program: AerProgram, values: np.ndarray, shots: np.ndarray | None = None) -> np.ndarray:
        """``program`` on ``(M, slots)`` angles (``shots`` per row, default the program's): in this
        process, or, given a ``cluster``, as sub-jobs of ``max_job_size`` rows on it. Chunk ``i`` is
        seeded ``seed + i`` wherever it runs, so a seeded run gives the same values in process and on a
        cluster with the same ``max_job_size``."""
        size = self.max_job_size or len(values) or 1
        starts = range(0, len(values), size)
        chunks = [(values[i : i + size], None if shots is None else shots[i : i + size]) for i in starts] or [(values, shots)]
        seeds = [None if self.seed is None else self.seed + i for i in range(len(chunks))]
        if self.cluster is None:
            return np.concatenate([program(chunk, seed, rows) for (chunk, rows), seed in zip(chunks, seeds)])
        futures = [self.cluster.submit(program, chunk, seed, rows) for (chunk, rows), seed in zip(chunks, seeds)]
        return np.concatenate([future.result() for future in futures])


class AerExecutor(AerSimulation, StatevectorExecutor):
    """Exact statevectors from Aer (the sampled executor is :class:`~qattn.executors.aer_sampled.SampledAerExecutor`;
    :func:`qattn.executors.aer_executor` picks one by ``shots``)."""

    def __init__(
        self, *, noise: str | None = None, method: str = "automatic", device: str = "CPU", seed: int | None = None,
        seed_transpiler: int | None = None, cluster: Pool | str | None = None, max_job_size: int | None = None,
    ) -> None:
        self.setup(shots=None, noise=noise, method=method, device=device, seed=seed, seed_transpiler=seed_transpiler,
                   cluster=cluster, max_job_size=max_job_size)

    def states(self, fmap: FeatureMap, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        angles = slot_angles(fmap, x, w)  # (B, H, N, G)
        psi = self.run_states(fmap, angles.reshape(-1, angles.shape[-1]), complex_dtype(x.dtype))
        return psi.view(*angles.shape[:3], -1)

    def state_pair(self, fmap, x_q, w_q, x_k, w_k):
        """Query and key states in one Aer call."""
        a_q, a_k = slot_angles(fmap, x_q, w_q), slot_angles(fmap, x_k, w_k)
        flat_q, flat_k = a_q.reshape(-1, a_q.shape[-1]), a_k.reshape(-1, a_k.shape[-1])
        psi = self.run_states(fmap, torch.cat([flat_q, flat_k]), complex_dtype(x_q.dtype))
        psi_q, psi_k = psi.split([len(flat_q), len(flat_k)])
        return psi_q.view(*a_q.shape[:3], -1), psi_k.view(*a_k.shape[:3], -1)

    def run_states(self, fmap: FeatureMap, angles: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``(M, G)`` slot angles -> ``(M, 2^n)`` statevectors (wire order), differentiable, one call."""
        return ShiftRule.apply(angles, self.program(fmap, "states"), STATE_RULE, dtype)

    def z_expectation_pair(self, fmap, x_q, w_q, x_k, w_k, needed=None):
        """Query and key ``<Z_q>`` features from one Aer call's states."""
        psi_q, psi_k = self.state_pair(fmap, x_q, w_q, x_k, w_k)
        return self.z_from_states(fmap, psi_q), self.z_from_states(fmap, psi_k)


@dataclass(frozen=True)
class AerProgram:
    """One slot circuit and how to simulate it: a picklable function of ``(M, slots)`` angles, so a
    chunk of bindings can run in another process or on another machine (a Dask worker)."""

    circuit: QuantumCircuit
    kind: str  # "states": statevectors; sampled kinds read out by qattn.executors.circuits.readout
    n_qubits: int
    options: dict  # AerSimulator options: method or noise_model, device
    shots: int | None = None
    columns: list[int] | None = None  # sampled: our angle columns in the order of circuit.parameters

    def __call__(self, values: np.ndarray, seed: int | None, shots: np.ndarray | None = None) -> np.ndarray:
        if self.kind == "states":
            from qiskit_aer import AerSimulator

            simulator = AerSimulator(**self.options, seed_simulator=seed)
            result = simulator.run(self.circuit, parameter_binds=[bindings(self.circuit, values)]).result()
            states = np.stack([np.asarray(result.data(i)["statevector"]) for i in range(len(values))])
            return qiskit_states_to_wire_order(states, self.n_qubits)
        from qiskit_aer.primitives import SamplerV2

        shots = np.full(len(values), self.shots) if shots is None else np.asarray(shots)
        levels = list(dict.fromkeys(shots.tolist()))  # one pub per shot count, in order of first appearance
        groups = [np.flatnonzero(shots == level) for level in levels]
        sampler = SamplerV2(default_shots=self.shots, seed=seed, options={"backend_options": self.options})
        pubs = [(self.circuit, values[rows][:, self.columns], int(level)) for rows, level in zip(groups, levels)]
        results = sampler.run(pubs).result() if pubs else []
        parts = [readout(self.kind, qiskit_samples_to_wire_order(r.data.meas)) for r in results]
        if len(parts) == 1:
            return parts[0]
        out = np.empty((len(values), *parts[0].shape[1:]), dtype=parts[0].dtype)
        for rows, part in zip(groups, parts):
            out[rows] = part
        return out


def connect_cluster(address: str):
    """A Dask ``distributed.Client`` for the scheduler at ``address`` (e.g. ``tcp://10.0.0.5:8786``)."""
    try:
        from distributed import Client
    except ImportError:
        raise ImportError("a cluster address needs Dask: pip install 'qattn[dask]'") from None
    try:
        return Client(address, timeout="10s")
    except (OSError, TimeoutError) as err:
        raise ValueError(
            f"cannot reach the Dask scheduler at {address!r} ({type(err).__name__}: {str(err)[:160]}); start one with "
            "`dask scheduler` and workers with `dask worker <address>` on the machines that should simulate"
        ) from None


def bindings(circuit, values: np.ndarray) -> dict:
    """``parameter_binds`` for one circuit: each slot parameter gets its column of ``values``."""
    return {p: values[:, p.index] for p in circuit.parameters}
