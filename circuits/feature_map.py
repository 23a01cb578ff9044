"""A feature map: encoder and trainable ansatz on ``n_qubits``, optionally re-uploaded.

``phi(x) = W_R S(x) ... W_2 S(x) W_1 S(x) |0>`` with ``R = reuploads``. With one upload this is the
usual "encode, then train a unitary"; more uploads interleave data and trainable layers, which makes
the model a richer (Fourier-series) function of the features (Pérez-Salinas et al.,
Data re-uploading for a universal quantum classifier, arXiv:1907.02085).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import CircuitFamily, Gate, check_gates


@dataclass(frozen=True)
class FeatureMap:
    encoder: CircuitFamily
    ansatz: CircuitFamily
    n_qubits: int
    reuploads: int = 1

    def __post_init__(self) -> None:
        if not (isinstance(self.reuploads, int) and self.reuploads >= 1):
            raise ValueError(f"reuploads must be a positive integer, got {self.reuploads!r}")
        if self.encoder.weight_shape(self.n_qubits) != ():
            raise ValueError(f"{type(self.encoder).__name__} has trainable weights; it cannot encode")
        if self.ansatz.input_size(self.n_qubits) != 0:
            raise ValueError(f"{type(self.ansatz).__name__} reads input features; it cannot be an ansatz")
        check_gates(list(self.gates(np.zeros(self.input_size), np.zeros(self.weight_shape))), self.n_qubits)

    @property
    def real(self) -> bool:
        """Real amplitudes throughout (see :attr:`CircuitFamily.real`)."""
        return self.encoder.real and self.ansatz.real

    @property
    def input_size(self) -> int:
        return self.encoder.input_size(self.n_qubits)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """``(reuploads, *ansatz weight shape)``: one trainable block per upload."""
        return (self.reuploads, *self.ansatz.weight_shape(self.n_qubits))

    def encoder_gates(self, x: Any) -> list[Gate]:
        return list(self.encoder.gates(self.n_qubits, x, None))

    def ansatz_gates(self, w: Any) -> list[Gate]:
        """The ansatz of one upload; ``w`` has the ansatz's weight shape."""
        return list(self.ansatz.gates(self.n_qubits, None, w))

    def gates(self, x: Any, w: Any) -> Iterator[Gate]:
        """The whole circuit; ``w`` has :attr:`weight_shape`."""
        for upload in range(self.reuploads):
            yield from self.encoder_gates(x)
            yield from self.ansatz_gates(w[upload])
