"""A stage's circuits for a device: one ISA circuit per kernel kind, its observables, and its cost.

Every circuit of a stage has the same shape (only the angles differ), so a stage is one
parameterised circuit, transpiled once with a preset pass manager for the device, and one Estimator
pub that broadcasts it over the stage's angle rows. Observables are diagonal, so each circuit is
measured once in the Z basis:

- ``fidelity``: the projector ``|0...0><0...0| = prod_q (I + Z_q) / 2`` (``2^n`` Z strings);
- ``z``: ``Z_q`` for every qubit ``q``.

``randomized`` and ``bits`` programs (:func:`sampler_program`) are slot circuits measured on every
qubit, for Sampler pubs: the bitstrings themselves (randomized-measurement fidelities; the ``qaoa``
solver's sampling circuits, :mod:`.sampling`). The logical circuits are
:mod:`qattn.executors.circuits`', the same sampled Aer runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import generate_preset_pass_manager

from qattn.circuits import FeatureMap
from qattn.executors.circuits import fmap_circuit, parameter_columns

from .devices import HardwareError


@dataclass
class Program:
    kind: str
    circuit: QuantumCircuit  # in the device's ISA
    observables: object  # a SparsePauliOp (fidelity), a (1, n) nested list of them (z), None (bits, randomized)
    columns: list[int]  # our angle columns in the order of circuit.parameters

    def pub(self, angles: np.ndarray, shots: int | None = None) -> tuple:
        """The Estimator pub of ``(M, slots)`` angle rows: values ``(M,)`` (fidelity) or ``(M, n)`` (z),
        to the precision of ``shots`` (default: the options'); for ``bits`` and ``randomized``, the
        Sampler pub: ``(M, shots)`` bitstrings."""
        values = angles[:, self.columns]
        if self.kind in ("bits", "randomized"):
            return (self.circuit, values) if shots is None else (self.circuit, values, int(shots))
        pub = (self.circuit, self.observables, values[:, None, :] if self.kind == "z" else values)
        return pub if shots is None else (*pub, precision(shots))

    @property
    def depth(self) -> int:
        return self.circuit.depth()

    @property
    def two_qubit_gates(self) -> int:
        return self.circuit.num_nonlocal_gates()

    def seconds(self, backend) -> float:
        """One execution's duration on the device, from its calibrated durations: the gates, then the
        slowest readout among the qubits used (NaN where the device lists no durations)."""
        target = backend.target
        qubits = self.circuit.layout.final_index_layout() if self.circuit.layout else range(self.circuit.num_qubits)
        try:
            readout = max(target["measure"][(q,)].duration or 0.0 for q in qubits)
            gates = self.circuit.remove_final_measurements(inplace=False) if self.kind in ("bits", "randomized") else self.circuit
            return float(gates.estimate_duration(target, unit="s")) + readout
        except Exception:  # noqa: BLE001 - QiskitError or KeyError: a target without durations
            return float("nan")


def precision(shots: int) -> float:
    """The Estimator precision that Qiskit Runtime turns into exactly ``shots`` shots (``ceil(1/p^2)``)."""
    return (1.0 + 1e-9) / np.sqrt(shots)


def observables(n_qubits: int, kind: str) -> object:
    if kind == "fidelity":
        terms = [("Z" * len(s), list(s), 2.0**-n_qubits) for r in range(n_qubits + 1) for s in combinations(range(n_qubits), r)]
        return SparsePauliOp.from_sparse_list(terms, n_qubits)
    return [[SparsePauliOp.from_sparse_list([("Z", [q], 1.0)], n_qubits) for q in range(n_qubits)]]


def transpiled(
    circuit: QuantumCircuit, backend, optimization_level: int = 2, seed_transpiler: int | None = None
) -> QuantumCircuit:
    """``circuit`` in ``backend``'s ISA, by the preset pass manager (qubit ``i`` is wire ``i`` before layout)."""
    manager = generate_preset_pass_manager(
        optimization_level=optimization_level, backend=backend, seed_transpiler=seed_transpiler
    )
    return manager.run(circuit)


def build_program(fmap: FeatureMap, kind: str, backend, optimization_level: int = 2, seed_transpiler: int | None = None) -> Program:
    """The stage's circuit transpiled for ``backend`` (qubit ``i`` is wire ``i`` before layout)."""
    if fmap.n_qubits > backend.num_qubits:
        raise HardwareError(f"the model's heads use {fmap.n_qubits} qubits; {backend.name} has {backend.num_qubits}")
    if kind == "randomized":
        return sampler_program(fmap_circuit(fmap, kind), backend, optimization_level, seed_transpiler, kind)
    isa = transpiled(fmap_circuit(fmap, kind), backend, optimization_level, seed_transpiler)
    obs = observables(fmap.n_qubits, kind)
    if kind == "fidelity":
        obs = obs.apply_layout(isa.layout)
    else:
        obs = [[o.apply_layout(isa.layout) for o in obs[0]]]
    return Program(kind, isa, obs, parameter_columns(isa))


def sampler_program(
    circuit: QuantumCircuit, backend, optimization_level: int = 2, seed_transpiler: int | None = None, kind: str = "bits",
) -> Program:
    """A slot circuit (parameters from :func:`qattn.circuits.to_qiskit.slot_circuit`) measured on every
    qubit and transpiled for ``backend``; classical bit ``q`` holds qubit ``q`` whatever the layout."""
    if circuit.num_qubits > backend.num_qubits:
        raise HardwareError(f"the circuit needs {circuit.num_qubits} qubits; {backend.name} has {backend.num_qubits}")
    measured = circuit.measure_all(inplace=False)
    isa = transpiled(measured, backend, optimization_level, seed_transpiler)
    return Program(kind, isa, None, parameter_columns(isa))
