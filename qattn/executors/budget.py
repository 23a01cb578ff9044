"""Shots from an error budget: how many shots each fidelity circuit needs for the attention weights
to be as accurate as asked, and the error a given allocation is predicted to give.

The attention weights of a row are ``a = softmax(c F)`` over its unmasked keys, with ``F`` the
estimated fidelities and ``c`` the head's temperature. A fidelity estimated from ``n`` shots is a
binomial frequency: variance ``v = F(1 - F) / n``. To first order ``da = J c dF`` with the softmax
Jacobian ``J_ij = a_i (delta_ij - a_j)``, so independent estimates give

    Var(da_i) = c^2 a_i^2 [ v_i (1 - 2 a_i) + sum_j a_j^2 v_j ]

and, each ``da_i`` being close to normal, the expected total-variation distance of the row
``TV = 1/2 sum_i |da_i|`` is ``1/2 sqrt(2/pi) sum_i sd(da_i)``. A hot head (large ``c``) and a peaked
row need more shots; a key far below the row's maximum (``a_j`` near 0) barely moves any weight and
needs few. :func:`allocate` minimises the total shots subject to the mean of that prediction over
all rows equalling the target (a Lagrange condition solved by fixed-point iteration; the prediction
is homogeneous in the shots, so each iteration rescales exactly onto the target).

The fidelities and weights the allocation is computed for (the prior) come from exact simulation
(``budgeted``) or from a cheap first pass on the device (``adaptive``, :mod:`qattn.executors.rows`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

HALF_MEAN_ABS = 0.5 * math.sqrt(2 / math.pi)  # E|N(0, s^2)| / s, halved for total variation


@dataclass(frozen=True)
class ShotBudget:
    """A target on the attention weights instead of a fixed shot count.

    ``target``: the mean, over rows, of the expected total-variation distance between a row of
    attention weights and the exact one. ``prior``: where the allocation's fidelities come from,
    ``exact`` simulation or an ``adaptive`` first pass of ``pilot_shots`` per circuit. Shots are
    rounded up to levels ``2^(k/2)`` (a device runs one job per shot count), between ``min_shots``
    and ``max_shots``."""

    target: float
    prior: Literal["exact", "adaptive"] = "exact"
    pilot_shots: int = 64
    min_shots: int = 16
    max_shots: int = 1 << 20

    def __post_init__(self) -> None:
        if not (isinstance(self.target, (int, float)) and 0 < self.target < 1):
            raise ValueError(f"the target error is a mean total-variation distance in (0, 1), got {self.target!r}")
        if self.prior not in ("exact", "adaptive"):
            raise ValueError(f"prior must be 'exact' or 'adaptive', got {self.prior!r}")
        if not 1 <= self.min_shots <= self.max_shots or self.pilot_shots < 1:
            raise ValueError(f"need 1 <= min_shots <= max_shots and pilot_shots >= 1, got {self}")


def row_weights(fidelity: np.ndarray, scale: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(R, S)`` softmax of ``scale[:, None] * fidelity`` over each row's unmasked keys (0 elsewhere)."""
    scores = np.where(mask, scale[:, None] * fidelity, -np.inf)
    top = scores.max(-1, keepdims=True)
    top[~np.isfinite(top)] = 0.0
    weights = np.where(mask, np.exp(scores - top), 0.0)
    total = weights.sum(-1, keepdims=True)
    return np.divide(weights, total, out=np.zeros_like(weights), where=total > 0)


def binomial_variance(fidelity: np.ndarray, shots: np.ndarray | float) -> np.ndarray:
    p = np.clip(fidelity, 0.0, 1.0)
    return p * (1.0 - p) / shots


def weight_sd(weights: np.ndarray, scale: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """``(R, S)`` standard deviations of the weights, from the scores' variances ``variance / c^2``
    (fidelity variances; masked entries must carry weight 0)."""
    v = scale[:, None] ** 2 * variance
    shared = (weights**2 * v).sum(-1, keepdims=True)
    return np.sqrt(np.clip(weights**2 * (v * (1 - 2 * weights) + shared), 0.0, None))


def predicted_tv(weights: np.ndarray, scale: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """``(R,)`` expected total-variation distance of each row, to first order."""
    return HALF_MEAN_ABS * weight_sd(weights, scale, variance).sum(-1)


def allocate(
    fidelity: np.ndarray, scale: np.ndarray, mask: np.ndarray, budget: ShotBudget, iterations: int = 8,
) -> np.ndarray:
    """``(R, S)`` shots per circuit (0 where masked) meeting ``budget.target`` on the mean predicted
    row TV with the fewest shots, for rows of fidelities ``(R, S)`` under per-row ``scale`` ``(R,)``."""
    fidelity = np.clip(fidelity, 0.0, 1.0)
    weights = row_weights(fidelity, scale, mask)
    q = np.where(mask, fidelity * (1 - fidelity), 0.0)
    used = mask.any(-1)
    shots = np.where(mask, 1.0, 0.0)
    for _ in range(iterations):
        sd = weight_sd(weights, scale, np.divide(q, shots, out=np.zeros_like(q), where=shots > 0))
        inv = np.divide(1.0, sd, out=np.zeros_like(sd), where=sd > 0)
        # d(sum_i sd_i)/d(v_j) up to a factor: c^2 [a_j^2 (1 - 2 a_j) / sd_j + a_j^2 sum_i a_i^2 / sd_i]
        sensitivity = scale[:, None] ** 2 * weights**2 * ((1 - 2 * weights) * inv + (weights**2 * inv).sum(-1, keepdims=True))
        shots = np.sqrt(np.clip(sensitivity * q, 0.0, None))
        shots = rescaled(shots, weights, scale, q, used, budget.target)
    return quantized(np.where(mask, shots, 0.0), mask, budget)


def rescaled(shots, weights, scale, q, used, target) -> np.ndarray:
    """``shots`` times the factor that puts the mean predicted TV on ``target`` (it scales as 1/sqrt)."""
    variance = np.divide(q, shots, out=np.zeros_like(q), where=shots > 0)
    error = predicted_tv(weights, scale, variance)[used].mean() if used.any() else 0.0
    return shots * (error / target) ** 2 if error > 0 else shots


def quantized(shots: np.ndarray, mask: np.ndarray, budget: ShotBudget) -> np.ndarray:
    """Shots rounded up to the levels ``2^(k/2)`` within the budget's bounds (integers; 0 where masked)."""
    clipped = np.clip(shots, budget.min_shots, budget.max_shots)
    levels = np.ceil(np.power(2.0, np.ceil(2 * np.log2(clipped)) / 2)).astype(np.int64)
    return np.where(mask, np.minimum(levels, budget.max_shots), 0)


def pilot_prior(values: np.ndarray, shots: np.ndarray) -> np.ndarray:
    """Fidelities for planning from a pilot pass's frequencies: shrunk towards 1/2 by half a shot each
    way (Jeffreys), so a pair seen as exactly 0 or 1 still counts as uncertain."""
    return (values * shots + 0.5) / (shots + 1.0)
