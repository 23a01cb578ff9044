"""Paired statistics for comparing two models trained on the same data (scipy; nothing hand-written).

- :func:`seed_difference`: the mean difference of a metric over seeds, paired by seed, with the 95%
  confidence interval of the paired t-test (n - 1 degrees of freedom).
- :func:`mcnemar`: McNemar's exact test over test documents of two models: whether the documents only
  one of them gets right split evenly (a two-sided binomial test on the discordant pairs).
- :func:`bootstrap_difference`: the paired bootstrap's 95% interval of the accuracy difference over
  test documents (documents resampled, both models' answers on a document kept together).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Difference:
    """``mean`` of a - b with its confidence interval ``low..high``; ``n`` pairs."""

    mean: float
    low: float
    high: float
    n: int

    def includes_zero(self) -> bool:
        return self.low <= 0.0 <= self.high


def seed_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Difference | None:
    """Mean of ``a[i] - b[i]`` (the same seed's runs) with the paired t interval; None with fewer than 2 pairs.
    Equal differences on every seed (two deterministic models) give a zero-width interval."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired values need equal lengths, got {len(a)} and {len(b)}")
    if len(a) < 2:
        return None
    diff = a - b
    if np.ptp(diff) == 0.0:  # no spread: the t interval is the point itself (scipy would give NaN)
        return Difference(float(diff[0]), float(diff[0]), float(diff[0]), len(diff))
    interval = stats.ttest_rel(a, b).confidence_interval(confidence)
    return Difference(float(diff.mean()), float(interval.low), float(interval.high), len(diff))


@dataclass(frozen=True)
class McNemar:
    """Documents only ``a`` gets right (``a_only``), only ``b`` gets right (``b_only``); the exact p-value."""

    a_only: int
    b_only: int
    p_value: float


def correct(labels: Sequence[int], predictions: Sequence[int]) -> np.ndarray:
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.shape != predictions.shape:
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} documents")
    return labels == predictions


def mcnemar(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> McNemar:
    """McNemar's exact test (a binomial test of the discordant documents at p = 1/2, two-sided)."""
    a_correct, b_correct = np.asarray(a_correct, dtype=bool), np.asarray(b_correct, dtype=bool)
    if a_correct.shape != b_correct.shape:
        raise ValueError(f"paired answers need the same documents, got {len(a_correct)} and {len(b_correct)}")
    a_only, b_only = int((a_correct & ~b_correct).sum()), int((~a_correct & b_correct).sum())
    p_value = 1.0 if a_only + b_only == 0 else stats.binomtest(a_only, a_only + b_only, 0.5).pvalue
    return McNemar(a_only, b_only, float(p_value))


def bootstrap_difference(a_correct: Sequence[bool], b_correct: Sequence[bool], *, resamples: int = 10_000,
                         confidence: float = 0.95, seed: int = 0) -> Difference:
    """Accuracy of a minus b over the documents, with the paired bootstrap's percentile interval."""
    a, b = np.asarray(a_correct, dtype=float), np.asarray(b_correct, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired answers need the same documents, got {len(a)} and {len(b)}")
    mean = float(a.mean() - b.mean())
    if np.array_equal(a, b):  # every resample gives 0 (scipy warns of a degenerate distribution)
        return Difference(mean, mean, mean, len(a))
    result = stats.bootstrap(
        (a, b), lambda x, y, axis=-1: x.mean(axis) - y.mean(axis), paired=True, vectorized=True,
        n_resamples=resamples, confidence_level=confidence, method="percentile", random_state=seed,
    )
    return Difference(mean, float(result.confidence_interval.low), float(result.confidence_interval.high), len(a))
