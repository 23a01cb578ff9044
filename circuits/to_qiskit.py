"""Compile backend-neutral circuits to Qiskit ``QuantumCircuit`` objects with named parameters."""

from __future__ import annotations

from collections.abc import Iterable
from math import prod

import numpy as np
from qiskit.circuit import ParameterVector, QuantumCircuit
from qiskit.circuit.library import CXGate, CZGate, HGate, RXGate, RYGate, RZGate, RZZGate

from .base import CircuitFamily, Gate
from .feature_map import FeatureMap

QISKIT_GATES = {
    "H": HGate,
    "RX": RXGate,
    "RY": RYGate,
    "RZ": RZGate,
    "CNOT": CXGate,
    "CZ": CZGate,
    "RZZ": RZZGate,
}


def parameter_array(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Qiskit parameters arranged in ``shape`` (so families can index them as ``w[l, q, r]``)."""
    vector = ParameterVector(name, prod(shape))
    return np.array(list(vector), dtype=object).reshape(shape)


def append_gates(circuit: QuantumCircuit, gates: Iterable[Gate]) -> QuantumCircuit:
    """Append gates; wire ``i`` becomes qubit ``i`` (see :mod:`qattn.circuits.qubit_order`)."""
    for gate in gates:
        cls = QISKIT_GATES[gate.name]
        circuit.append(cls() if gate.angle is None else cls(gate.angle), list(gate.wires))
    return circuit


def to_qiskit(circuit: CircuitFamily | FeatureMap, n_qubits: int | None = None) -> QuantumCircuit:
    """A parameterised ``QuantumCircuit``: features are parameters ``x[i]``, weights ``w[k]``.

    A :class:`FeatureMap` carries its own qubit count; a bare family needs ``n_qubits``.
    Bind values with ``assign_parameters`` in the order of ``circuit.parameters``
    (Qiskit sorts them by name: all ``w`` after all ``x``).
    """
    if isinstance(circuit, FeatureMap):
        n, gates_of = circuit.n_qubits, circuit.gates
        n_inputs, shape = circuit.input_size, circuit.weight_shape
    else:
        if n_qubits is None:
            raise TypeError("to_qiskit needs n_qubits for a bare circuit family")
        n = n_qubits
        n_inputs, shape = circuit.input_size(n), circuit.weight_shape(n)
        gates_of = lambda x, w: circuit.gates(n, x, w)  # noqa: E731
    x = ParameterVector("x", n_inputs)
    w = parameter_array("w", shape) if shape else None
    return append_gates(QuantumCircuit(n, name=type(circuit).__name__), gates_of(x, w))


def bind(circuit: QuantumCircuit, x=None, w=None) -> QuantumCircuit:
    """Bind feature values ``x`` and weights ``w`` (array-likes; ``w`` in any shape) by parameter name."""
    values = {"x": x, "w": w}
    binding = {}
    for param in circuit.parameters:
        source = values[param.vector.name]
        if source is None:
            raise ValueError(f"circuit has parameter {param.name} but no {param.vector.name!r} values were given")
        binding[param] = float(np.ravel(source)[param.index])
    return circuit.assign_parameters(binding)


def slot_circuit(gates: Iterable[Gate], n_qubits: int, name: str = "theta") -> tuple[QuantumCircuit, int]:
    """The circuit with one fresh parameter ``theta[k]`` per angled gate, in gate order.

    Executors bind concrete angles (computed in torch, so features and weights keep their gradients)
    to these slots; every slot is a rotation ``exp(-i theta P / 2)`` with ``P^2 = I``, so
    parameter-shift rules hold per slot.
    """
    gates = list(gates)
    slots = ParameterVector(name, sum(g.angle is not None for g in gates))
    circuit, k = QuantumCircuit(n_qubits), 0
    for gate in gates:
        cls = QISKIT_GATES[gate.name]
        if gate.angle is None:
            circuit.append(cls(), list(gate.wires))
        else:
            circuit.append(cls(slots[k]), list(gate.wires))
            k += 1
    return circuit, len(slots)
