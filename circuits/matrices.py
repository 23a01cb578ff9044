"""The matrix of every gate of :data:`~qattn.circuits.base.GATE_SET`, in torch (one table, no quantum SDK).

A gate's matrix acts on its own wires, the first wire most significant (qattn's wire order, see
:mod:`qattn.circuits.qubit_order`), and is PennyLane's definition of that gate (``tests/test_circuits.py``
holds every entry to PennyLane's and Qiskit's). An angle may be a tensor of angles: the matrix then has
the angles' shape in front, ``(..., 2^k, 2^k)``, and keeps their gradient.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .base import Gate


def _rotation(off: Callable[[torch.Tensor], torch.Tensor]):
    """``cos(t/2) I + sin(t/2) G`` for the 2x2 generator part ``off(sin(t/2))`` (a (..., 2, 2) tensor)."""

    def matrix(t: torch.Tensor) -> torch.Tensor:
        c, s = torch.cos(t / 2), torch.sin(t / 2)
        return torch.eye(2, dtype=t.dtype) * c[..., None, None] + off(s)

    return matrix


def _two_by_two(a, b, c, d) -> torch.Tensor:
    return torch.stack([torch.stack([a, b], -1), torch.stack([c, d], -1)], -2)


def _phases(signs: list[int]) -> Callable[[torch.Tensor], torch.Tensor]:
    """A diagonal ``exp(-i t s_j / 2)`` for the signs ``s_j`` of the diagonal's entries."""
    return lambda t: torch.diag_embed(torch.exp(-0.5j * t[..., None] * torch.tensor(signs, dtype=t.dtype)))


FIXED = {
    "H": torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.complex128) / math.sqrt(2),
    "CNOT": torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]], dtype=torch.complex128),
    "CZ": torch.diag(torch.tensor([1, 1, 1, -1], dtype=torch.complex128)),
}
"""Gates without an angle."""

ROTATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "RX": _rotation(lambda s: _two_by_two(0 * s, -1j * s, -1j * s, 0 * s)),
    "RY": _rotation(lambda s: _two_by_two(0 * s, -s, s, 0 * s)),
    "RZ": _phases([1, -1]),
    "RZZ": _phases([1, -1, -1, 1]),  # exp(-i t/2 Z⊗Z)
}
"""Gates of one angle ``t``: ``(..., 2^k, 2^k)`` matrices of a complex ``(...)`` angle tensor."""


def gate_matrix(gate: Gate, dtype: torch.dtype) -> torch.Tensor:
    """The gate's matrix in ``dtype``; a batch of angles gives a batch of matrices. A real ``dtype`` keeps
    the real part, exact for the real gates (H, RY, CNOT, CZ), the only ones a real family emits."""
    if gate.angle is None:
        matrix = FIXED[gate.name]
    else:
        angle = gate.angle if isinstance(gate.angle, torch.Tensor) else torch.tensor(gate.angle, dtype=torch.float64)
        matrix = ROTATIONS[gate.name](angle.to(torch.complex128 if angle.dtype == torch.float64 else torch.complex64))
    if not dtype.is_complex:
        matrix = matrix.real
    return matrix.to(dtype)
