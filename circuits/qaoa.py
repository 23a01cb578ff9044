"""QAOA for an Ising Hamiltonian, described once like every other circuit of qattn.

For ``H = sum_i h_i Z_i + sum_{i<j} J_ij Z_i Z_j`` and ``p`` layers of angles ``(gamma_l, beta_l)``:

    |gamma, beta> = prod_l [ exp(-i beta_l sum_i X_i) exp(-i gamma_l H) ] H^n |0...0>

``exp(-i gamma H)`` is one ``RZ(2 gamma h_i)`` per qubit and one ``RZZ(2 gamma J_ij)`` per pair (every
pair, so one circuit shape serves every problem of ``n`` variables); the mixer is ``RX(2 beta)`` per qubit.
Inputs ``x`` are the Hamiltonian's coefficients, ``h`` then ``J``'s upper triangle in
``itertools.combinations`` order; weights ``w`` are ``(p, 2)``: ``w[l] = (gamma_l, beta_l)``.

It is not in the attention catalogue (it reads a Hamiltonian, not token features): the ``qaoa`` QUBO
solver (:mod:`qattn.solvers.qaoa`) uses it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations
from typing import Any, ClassVar

from .base import CircuitFamily, Gate


@dataclass(frozen=True)
class QAOA(CircuitFamily):
    """``layers`` QAOA layers (cost, then mixer) after Hadamards on every qubit."""

    paper: ClassVar[str] = "Farhi, Goldstone & Gutmann, A Quantum Approximate Optimization Algorithm, arXiv:1411.4028"
    layers: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.layers, bool) or not isinstance(self.layers, int) or self.layers < 1:
            raise ValueError(f"QAOA layers must be a positive integer, got {self.layers!r}")

    def input_size(self, n_qubits: int) -> int:
        return n_qubits + n_qubits * (n_qubits - 1) // 2

    def weight_shape(self, n_qubits: int) -> tuple[int, ...]:
        return (self.layers, 2)

    def gates(self, n_qubits: int, x: Any, w: Any) -> Iterator[Gate]:
        for q in range(n_qubits):
            yield Gate("H", (q,))
        pairs = list(combinations(range(n_qubits), 2))
        for layer in range(self.layers):
            gamma, beta = w[layer, 0], w[layer, 1]
            for q in range(n_qubits):
                yield Gate("RZ", (q,), 2 * gamma * x[q])
            for k, (i, j) in enumerate(pairs):
                yield Gate("RZZ", (i, j), 2 * gamma * x[n_qubits + k])
            for q in range(n_qubits):
                yield Gate("RX", (q,), 2 * beta)
