"""Predicted attention-weight error and cost of each fidelity estimator, before anything runs.

A planning pass (exact simulation standing in for the device) records every fidelity kernel call:
its exact fidelities, the head temperatures, which pairs attention uses, and the token states.
From one such record the error of every estimator follows, in the same first-order model
(:mod:`qattn.executors.budget`): the expected total-variation distance of a row of weights is
``1/2 sqrt(2/pi) sum_i sd(da_i)``.

- ``fixed`` and ``budgeted`` pairwise circuits: binomial variances, independent per pair.
- ``randomized``: the estimate is a mean over ``K`` independent rotations, so every weight's
  deviation is a mean of ``K`` i.i.d. terms and its standard deviation falls as ``1/sqrt(K)``
  exactly. A few simulated rotations (exact outcome distributions, ``M`` shots each; correlations
  between pairs that share a token included) give the error of one rotation, hence the ``K`` a
  target needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .base import squared_magnitude
from .budget import HALF_MEAN_ABS, ShotBudget, allocate, binomial_variance, predicted_tv, row_weights
from .randomized import apply_x, histograms, random_rotations, sample_bits


@dataclass
class Call:
    """One fidelity kernel call: ``G = B x H`` groups (a batch entry's head) of ``N`` queries and ``S`` keys."""

    fidelity: np.ndarray  # (G, N, S) exact
    scale: np.ndarray  # (G,) head temperature
    mask: np.ndarray  # (G, N, S) pairs attention uses
    states_q: np.ndarray  # (G, N, 2^n)
    states_k: np.ndarray  # (G, S, 2^n)

    @classmethod
    def record(cls, fmap, inputs, scale, needed) -> Call:
        """From a kernel call's inputs (``x_q, w_q, x_k, w_k``), exactly simulated."""
        from .pennylane import PennyLaneExecutor

        exact = PennyLaneExecutor()
        with torch.no_grad():
            x_q, w_q, x_k, w_k = (t.detach() for t in inputs)
            psi_q, psi_k = exact.state_pair(fmap, x_q, w_q, x_k, w_k)
            fid = squared_magnitude(psi_q @ psi_k.mH)  # |<k|q>|^2, from the states just simulated
        batch, heads, tokens, keys = fid.shape
        mask = torch.ones(fid.shape, dtype=torch.bool) if needed is None else needed.expand(fid.shape)
        tau = torch.ones(heads) if scale is None else scale.detach()
        return cls(
            fid.double().numpy().reshape(-1, tokens, keys), np.tile(tau.double().numpy(), batch),
            mask.numpy().reshape(-1, tokens, keys), psi_q.numpy().reshape(batch * heads, tokens, -1),
            psi_k.numpy().reshape(batch * heads, keys, -1),
        )

    @property
    def rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fidelities, per-row scale and mask as ``(R, S)``, ``(R,)``, ``(R, S)`` (R = G x N)."""
        groups, tokens, keys = self.fidelity.shape
        return self.fidelity.reshape(-1, keys), np.repeat(self.scale, tokens), self.mask.reshape(-1, keys)

    @property
    def used_rows(self) -> np.ndarray:
        return self.mask.reshape(-1, self.mask.shape[-1]).any(-1)

    @property
    def pairs(self) -> int:
        return int(self.mask.sum())

    @property
    def tokens(self) -> int:
        """Queries and keys attention uses: the circuits per rotation of the randomized estimator."""
        return int(self.mask.any(-1).sum() + self.mask.any(-2).sum())


def fixed_error(call: Call, shots: int) -> np.ndarray:
    """``(R,)`` predicted row TV with ``shots`` per pairwise circuit."""
    fid, scale, mask = call.rows
    return predicted_tv(row_weights(fid, scale, mask), scale, np.where(mask, binomial_variance(fid, shots), 0.0))


def budgeted_shots(call: Call, budget: ShotBudget) -> np.ndarray:
    """``(R, S)`` shots the budget allocates (on the exact fidelities)."""
    fid, scale, mask = call.rows
    return allocate(fid, scale, mask, budget)


def allocated_error(call: Call, shots: np.ndarray) -> np.ndarray:
    fid, scale, mask = call.rows
    variance = np.where(mask, binomial_variance(fid, np.maximum(shots, 1)), 0.0)
    return predicted_tv(row_weights(fid, scale, mask), scale, variance)


def randomized_unit_error(call: Call, shots: int, rotations: int = 32, seed: int = 0) -> np.ndarray:
    """``(R,)`` predicted row TV of the randomized estimator with ONE rotation of ``shots`` shots per
    token (divide by ``sqrt(K)`` for ``K`` rotations), from ``rotations`` simulated ones."""
    rng = np.random.default_rng(seed)
    groups, tokens, keys = call.fidelity.shape
    n_qubits = int(np.log2(call.states_q.shape[-1]))
    sd = np.zeros((groups, tokens, keys))
    for g in range(groups):
        mask = call.mask[g]
        if not mask.any():
            continue
        rot = random_rotations(n_qubits, rotations, rng)
        p_q = histograms(sample_bits(call.states_q[g], rot, shots, rng))  # (N, K, D)
        p_k = histograms(sample_bits(call.states_k[g], rot, shots, rng))  # (S, K, D)
        single = np.einsum("nkd,skd->kns", p_q, apply_x(p_k))  # (K, N, S): one estimate per rotation
        weights = row_weights(call.fidelity[g], np.full(tokens, call.scale[g]), mask)  # (N, S)
        delta = np.where(mask, single - call.fidelity[g], 0.0) * call.scale[g]  # score deviations
        moved = weights * (delta - (weights * delta).sum(-1, keepdims=True))  # (K, N, S): J c dF per rotation
        sd[g] = np.sqrt((moved**2).mean(0))  # unbiased: E[moved] = 0 to first order
    return HALF_MEAN_ABS * sd.reshape(-1, keys).sum(-1)
