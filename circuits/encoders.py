"""Encoders: fixed circuits that write classical features into a state (no trainable weights)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations
from typing import Any, ClassVar

from .base import CircuitFamily, Gate


@dataclass(frozen=True)
class AngleEncoding(CircuitFamily):
    """One rotation per qubit, angle = feature: ``R(x_0) ⊗ ... ⊗ R(x_{n-1}) |0...0>``.

    With RY the amplitudes stay real and ``|<S(b)|S(a)>|^2 = prod_i cos^2((a_i - b_i)/2)``.
    """

    paper: ClassVar[str] = "LaRose & Coyle, Robust data encodings for quantum classifiers, arXiv:2003.01695"
    rotation: str = "RY"

    def __post_init__(self) -> None:
        if self.rotation not in ("RX", "RY"):
            raise ValueError(f"AngleEncoding rotation must be 'RX' or 'RY', got {self.rotation!r}")

    @property
    def real(self) -> bool:
        return self.rotation == "RY"

    def input_size(self, n_qubits: int) -> int:
        return n_qubits

    def gates(self, n_qubits: int, x: Any, w: Any) -> Iterator[Gate]:
        for q in range(n_qubits):
            yield Gate(self.rotation, (q,), x[q])

    def qubit_states(self, n_qubits: int, x: Any) -> tuple[Any, Any]:
        """``RY(a)|0> = (cos a/2, sin a/2)``, ``RX(a)|0> = (cos a/2, -i sin a/2)``, wire q from feature q."""
        half = x * 0.5
        return half.cos(), half.sin() if self.rotation == "RY" else -1j * half.sin()


@dataclass(frozen=True)
class IQPEncoding(CircuitFamily):
    """IQP / ZZ feature map: ``reps`` times [H on all, RZ(x_i), RZZ(x_i x_j) on every pair i<j].

    The product-of-features phases make the state hard to simulate classically for many qubits.
    """

    paper: ClassVar[str] = (
        "Havlíček et al., Supervised learning with quantum-enhanced feature spaces, arXiv:1804.11326"
    )
    reps: int = 1

    def __post_init__(self) -> None:
        if not (isinstance(self.reps, int) and self.reps >= 1):
            raise ValueError(f"IQPEncoding reps must be a positive integer, got {self.reps!r}")

    def input_size(self, n_qubits: int) -> int:
        return n_qubits

    def gates(self, n_qubits: int, x: Any, w: Any) -> Iterator[Gate]:
        for _ in range(self.reps):
            for q in range(n_qubits):
                yield Gate("H", (q,))
            for q in range(n_qubits):
                yield Gate("RZ", (q,), x[q])
            for i, j in combinations(range(n_qubits), 2):
                yield Gate("RZZ", (i, j), x[i] * x[j])
