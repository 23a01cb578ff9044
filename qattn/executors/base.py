"""What a score kernel asks of an executor, and the shared statevector implementation.

Shapes: features ``x`` are ``(B, H, N, F)`` (batch, head, token, feature); weights are
``(H, *feature_map.weight_shape)``, one set per head. Executors are injected into kernels by name
or as instances; a model never builds a simulator or hardware client itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from functools import cache
from typing import ClassVar

import numpy as np
import torch

from qattn.circuits import FeatureMap
from qattn.circuits.qubit_order import z_signs

from .statevectors import fidelity_scores


class Executor(ABC):
    """Runs feature-map circuits for the quantum score kernels."""

    name: ClassVar[str]
    max_qubits: ClassVar[int]

    def check_qubits(self, n_qubits: int) -> None:
        if not 1 <= n_qubits <= self.max_qubits:
            raise ValueError(
                f"n_qubits={n_qubits} is out of range for executor {self.name!r} "
                f"(1..{self.max_qubits}); use fewer qubits per head"
            )

    @abstractmethod
    def fidelities(
        self,
        fmap: FeatureMap,
        x_q: torch.Tensor,
        w_q: torch.Tensor,
        x_k: torch.Tensor,
        w_k: torch.Tensor,
        scale: torch.Tensor | None = None,
        needed: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``scale_h |<phi(x_k; w_k)|phi(x_q; w_q)>|^2`` for every query/key pair: ``(B, H, N, S)``.

        ``scale`` (``(H,)``, positive, default 1) is a per-head factor; an executor may fold it into
        a smaller tensor than the ``N x S`` scores. ``needed`` (bool, broadcastable to
        ``(B, H, N, S)``, None: all) marks the scores attention uses (the rest are masked): an
        executor that pays per circuit (sampled Aer, IBM hardware) runs only those; exact ones compute all."""

    @abstractmethod
    def z_expectations(self, fmap: FeatureMap, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``<phi(x; w)| Z_q |phi(x; w)>`` for every wire q: ``(B, H, N, n_qubits)``."""

    def z_expectation_pair(self, fmap, x_q, w_q, x_k, w_k, needed=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Query and key features; an executor may compute both in one execution. ``needed``: as
        in :meth:`fidelities` (a query or key is needed when any of its scores is)."""
        return self.z_expectations(fmap, x_q, w_q), self.z_expectations(fmap, x_k, w_k)


class StatevectorExecutor(Executor):
    """An exact simulator: prepares every token's state once, then overlaps are one batched matmul.

    Never a circuit per pair: ``N + S`` states per (batch, head) and an ``N x S`` complex matmul.
    """

    @abstractmethod
    def states(self, fmap: FeatureMap, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``phi(x; w)`` for every (batch, head, token): ``(B, H, N, 2^n)`` complex, wire order of
        :mod:`qattn.circuits.qubit_order`."""

    def state_pair(self, fmap, x_q, w_q, x_k, w_k) -> tuple[torch.Tensor, torch.Tensor]:
        """Query and key states; an executor may prepare both in one execution."""
        return self.states(fmap, x_q, w_q), self.states(fmap, x_k, w_k)

    def fidelities(self, fmap, x_q, w_q, x_k, w_k, scale=None, needed=None):
        psi_q, psi_k = self.state_pair(fmap, x_q, w_q, x_k, w_k)  # (B, H, N, D), (B, H, S, D)
        return fidelity_scores(psi_q, psi_k, scale=scale)  # (B, H, N, S): scale |<k|q>|^2

    def z_expectations(self, fmap, x, w):
        return self.z_from_states(fmap, self.states(fmap, x, w))

    @staticmethod
    def z_from_states(fmap: FeatureMap, psi: torch.Tensor) -> torch.Tensor:
        """``(..., 2^n)`` states -> ``(..., n)`` exact ``<Z_q>``."""
        probs = squared_magnitude(psi)
        return probs @ z_sign_tensor(fmap.n_qubits, probs.dtype, probs.device)


@cache
def z_sign_tensor(n_qubits: int, dtype: torch.dtype, device: torch.device, copies: int = 1) -> torch.Tensor:
    """:func:`~qattn.circuits.qubit_order.z_signs` as a tensor (``copies`` of it stacked, for rows of
    amplitudes in parts), made once per dtype and device."""
    return torch.as_tensor(np.tile(z_signs(n_qubits), (copies, 1)), dtype=dtype, device=device)


def used_pairs(needed: torch.Tensor | None, shape: tuple[int, ...]) -> torch.Tensor:
    """The (B, H, N, S) pairs whose fidelity attention uses, flattened (``needed`` None: all)."""
    return torch.ones(shape, dtype=torch.bool).flatten() if needed is None else needed.expand(shape).flatten()


def used_tokens(needed: torch.Tensor | None, query_shape: tuple[int, ...], keys: int) -> torch.Tensor:
    """The (B, H, N) queries, then the (B, H, S) keys, whose features attention uses, flattened: a
    token is used when any of its scores is (``needed`` None: all)."""
    batch, heads, tokens = query_shape
    if needed is None:
        return torch.ones(batch * heads * (tokens + keys), dtype=torch.bool)
    needed = needed.expand(batch, heads, tokens, keys)
    return torch.cat([needed.any(-1).flatten(), needed.any(-2).flatten()])


def per_head(scale: torch.Tensor | None, scores: torch.Tensor) -> torch.Tensor:
    """``scores`` ``(B, H, N, S)`` times a per-head ``scale`` ``(H,)`` (None: unchanged)."""
    return scores if scale is None else scale[:, None, None] * scores


def squared_magnitude(t: torch.Tensor) -> torch.Tensor:
    """``|t|^2`` for real or complex tensors (real amplitudes skip complex arithmetic entirely; complex
    ones go through :class:`SquaredModulus`, whose backward allocates no N x S temporaries)."""
    return SquaredModulus.apply(t.real, t.imag) if t.is_complex() else t.square()


class SquaredModulus(torch.autograd.Function):
    """``re^2 + im^2`` of two real tensors. Same values and gradients as the autograd expression; its
    backward allocates only the two gradients it returns, where autograd's allocates five temporaries
    the size of the N x S scores (``benchmarks/fidelity_profile.py`` times both)."""

    @staticmethod
    def forward(ctx, re: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(re, im)
        return (re * re).addcmul_(im, im)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        re, im = ctx.saved_tensors
        twice = grad * 2
        return twice * re, twice.mul_(im)


def complex_dtype(real: torch.dtype) -> torch.dtype:
    """The complex dtype of the same precision: float32 -> complex64, float64 -> complex128."""
    return torch.complex128 if real == torch.float64 else torch.complex64
