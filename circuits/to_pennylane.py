"""Compile backend-neutral gates to PennyLane operations (one table, no if/elif chain)."""

from __future__ import annotations

from collections.abc import Iterable

import pennylane as qml

from .base import Gate

PENNYLANE_GATES = {
    "H": qml.Hadamard,
    "RX": qml.RX,
    "RY": qml.RY,
    "RZ": qml.RZ,
    "CNOT": qml.CNOT,
    "CZ": qml.CZ,
    "RZZ": qml.IsingZZ,
}


def apply_pennylane(gates: Iterable[Gate]) -> None:
    """Queue the gates inside a PennyLane quantum function (a QNode, ``qml.matrix``, a tape)."""
    for gate in gates:
        op = PENNYLANE_GATES[gate.name]
        if gate.angle is None:
            op(wires=list(gate.wires))
        else:
            op(gate.angle, wires=list(gate.wires))

