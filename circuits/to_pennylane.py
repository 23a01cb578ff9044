"""Compile backend-neutral gates to PennyLane operations and matrices (one table, no if/elif chain)."""

from __future__ import annotations

from collections.abc import Iterable

import pennylane as qml
import torch

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


def pennylane_matrix(gate: Gate, dtype: torch.dtype) -> torch.Tensor:
    """The gate's matrix as PennyLane defines it, ``(..., 2^k, 2^k)`` on its ``k`` wires (first wire
    most significant); a batch of angles gives a batch of matrices."""
    op = PENNYLANE_GATES[gate.name]
    matrix = op.compute_matrix() if gate.angle is None else op.compute_matrix(gate.angle)
    matrix = torch.as_tensor(matrix)
    if matrix.is_complex() and not dtype.is_complex:  # a real family's gates (RY, CNOT, ...) are real
        matrix = matrix.real
    return matrix.to(dtype)
