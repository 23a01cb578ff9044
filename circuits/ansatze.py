"""Ansätze: data-independent trainable circuits (one unitary per head, built once per forward)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations
from typing import Any, ClassVar

from .base import CircuitFamily, Gate

PATTERNS = ("linear", "ring", "full")


def entangling_pairs(n_qubits: int, pattern: str) -> list[tuple[int, int]]:
    """Qubit pairs of an entangling layer: ``linear`` chain, closed ``ring``, or ``full`` (all pairs)."""
    if pattern == "full":
        return list(combinations(range(n_qubits), 2))
    pairs = [(q, q + 1) for q in range(n_qubits - 1)]
    if pattern == "ring" and n_qubits > 2:
        pairs.append((n_qubits - 1, 0))
    return pairs


@dataclass(frozen=True)
class HardwareEfficient(CircuitFamily):
    """``layers`` x [a rotation from ``rotations`` on every qubit, then ``entangler`` on ``pattern`` pairs].

    Weights: ``(layers, n_qubits, len(rotations))``.
    """

    paper: ClassVar[str] = (
        "Kandala et al., Hardware-efficient variational quantum eigensolver for small molecules "
        "and quantum magnets, arXiv:1704.05018"
    )
    rotations: tuple[str, ...] = ("RY", "RZ")
    entangler: str = "CNOT"
    pattern: str = "linear"
    layers: int = 2

    def __post_init__(self) -> None:
        if not self.rotations or any(r not in ("RX", "RY", "RZ") for r in self.rotations):
            raise ValueError(f"rotations must be drawn from RX, RY, RZ, got {self.rotations!r}")
        if self.entangler not in ("CNOT", "CZ"):
            raise ValueError(f"entangler must be 'CNOT' or 'CZ', got {self.entangler!r}")
        if self.pattern not in PATTERNS:
            raise ValueError(f"pattern must be one of {', '.join(PATTERNS)}, got {self.pattern!r}")
        if not (isinstance(self.layers, int) and self.layers >= 1):
            raise ValueError(f"layers must be a positive integer, got {self.layers!r}")

    @property
    def real(self) -> bool:
        return set(self.rotations) == {"RY"}  # CNOT and CZ are real too

    def weight_shape(self, n_qubits: int) -> tuple[int, ...]:
        return (self.layers, n_qubits, len(self.rotations))

    def gates(self, n_qubits: int, x: Any, w: Any) -> Iterator[Gate]:
        for layer in range(self.layers):
            for q in range(n_qubits):
                for r, rotation in enumerate(self.rotations):
                    yield Gate(rotation, (q,), w[layer, q, r])
            for pair in entangling_pairs(n_qubits, self.pattern):
                yield Gate(self.entangler, pair)


@dataclass(frozen=True)
class StronglyEntangling(CircuitFamily):
    """``layers`` x [general rotation RZ·RY·RZ on every qubit, then CNOT(q, q+r mod n)].

    The CNOT range ``r = layer mod (n-1) + 1`` grows with depth, as in PennyLane's
    ``StronglyEntanglingLayers``. Weights: ``(layers, n_qubits, 3)``.
    """

    paper: ClassVar[str] = "Schuld et al., Circuit-centric quantum classifiers, arXiv:1804.00633"
    layers: int = 2

    def __post_init__(self) -> None:
        if not (isinstance(self.layers, int) and self.layers >= 1):
            raise ValueError(f"layers must be a positive integer, got {self.layers!r}")

    def weight_shape(self, n_qubits: int) -> tuple[int, ...]:
        return (self.layers, n_qubits, 3)

    def gates(self, n_qubits: int, x: Any, w: Any) -> Iterator[Gate]:
        for layer in range(self.layers):
            for q in range(n_qubits):
                yield Gate("RZ", (q,), w[layer, q, 0])
                yield Gate("RY", (q,), w[layer, q, 1])
                yield Gate("RZ", (q,), w[layer, q, 2])
            if n_qubits > 1:
                reach = layer % (n_qubits - 1) + 1
                for q in range(n_qubits):
                    yield Gate("CNOT", (q, (q + reach) % n_qubits))
