"""``sa``: simulated annealing from D-Wave's dwave-samplers, one problem at a time on the CPU (the default there).

Each problem is annealed on its free variables only (the held ones are left out of the model, so they
stay 0): ``num_reads`` independent Metropolis anneals of ``num_sweeps`` sweeps each, the lowest energy
kept. Against OpenJij (``benchmarks/sa_libraries.py``) dwave-samplers anneals as well and is faster on
QAMA-shaped problems (heads' blocks plus same-token penalties) and small ones, though ~2.5x slower on
fully dense 260-variable ones; it seeds every read independently and leaves global random state alone,
where OpenJij repeats one read when seeded and reseeds NumPy. Optional: ``pip install 'qattn[annealing]'``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch

from qattn.solvers.base import QuboSolver, problem_key

INSTALL_HINT = "pip install 'qattn[annealing]'"
SCHEDULES = ("geometric", "linear")


def annealer() -> Any:
    """dwave-samplers' ``SimulatedAnnealingSampler``, imported on first use."""
    try:
        from dwave.samplers import SimulatedAnnealingSampler
    except ImportError:
        raise ImportError(f"the 'sa' QUBO solver needs dwave-samplers: {INSTALL_HINT}") from None
    return SimulatedAnnealingSampler()


def default_beta_range(Q: np.ndarray) -> tuple[float, float]:
    """Start and end inverse temperatures of the anneal for the QUBO ``x^T Q x`` (symmetric ``Q``).

    In spin form (``x = (1 + s) / 2``) spin ``i`` feels the field ``h_i + sum_j J_ij s_j`` with
    ``J_ij = Q_ij / 2`` and ``h_i = Q_ii / 2 + sum_{j != i} Q_ij / 2``; flipping it costs twice that field.
    Hot: the costliest flip anywhere (every bias aligned) is accepted half the time, so the first sweeps
    mix freely (D-Wave's rule). Cold: a flip costing 1% of a typical field (the median over variables
    of ``sqrt(h_i^2 + sum_j J_ij^2)``) is accepted 1% of the time, so the last sweeps only descend.
    D-Wave's own cold rule uses the smallest bias, which for real-valued couplings is near zero and
    spends most sweeps frozen.
    """
    J = Q / 2
    np.fill_diagonal(J, 0.0)
    h = np.diag(Q) / 2 + J.sum(axis=1)
    largest = float((np.abs(h) + np.abs(J).sum(axis=1)).max(initial=0.0))
    if largest == 0.0:  # no biases at all: every assignment is optimal
        return 1.0, 1.0
    typical = np.sqrt(h**2 + (J**2).sum(axis=1))
    typical = float(np.median(typical[typical > 0]))
    hot = math.log(2) / (2 * largest)
    cold = math.log(100) / (2 * 0.01 * typical)
    return hot, max(hot, cold)


class SimulatedAnnealingSolver(QuboSolver):
    """Simulated annealing (dwave-samplers), problem by problem; no limit on the number of variables.

    ``num_reads`` anneals per problem, the best kept; ``num_sweeps`` Metropolis sweeps (one update try
    per variable) per anneal; inverse temperatures from ``beta_range[0]`` (hot) to ``beta_range[1]``
    (cold) spaced by ``beta_schedule``, the range by default set per problem by
    :func:`default_beta_range`. Each problem's anneals are seeded from ``seed`` and its number of free
    variables (:func:`~qattn.solvers.base.problem_key`): the same problem gets the same solution on every
    call, whatever else shares its batch and in whatever order. The defaults take
    about 20 ms per QAMA-shaped 260-variable problem and 50 ms per fully dense one, on one core.
    """

    name = "sa"
    install_hint = INSTALL_HINT

    def __init__(
        self,
        *,
        seed: int = 0,
        num_reads: int = 4,
        num_sweeps: int = 250,
        beta_range: tuple[float, float] | None = None,
        beta_schedule: Literal["geometric", "linear"] = "geometric",
    ) -> None:
        super().__init__(seed=seed)
        for option, value in (("num_reads", num_reads), ("num_sweeps", num_sweeps)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{option} must be a positive int, got {value!r}")
        if beta_range is not None:
            if len(beta_range) != 2 or not all(math.isfinite(b) and b > 0 for b in beta_range):
                got = repr(beta_range)
                raise ValueError(f"beta_range must be two positive inverse temperatures (hot, cold), got {got}")
            if beta_range[0] > beta_range[1]:
                raise ValueError(f"beta_range goes from hot to cold (small beta to large), got {beta_range!r}")
            beta_range = (float(beta_range[0]), float(beta_range[1]))
        if beta_schedule not in SCHEDULES:
            raise ValueError(f"beta_schedule must be one of {SCHEDULES}, got {beta_schedule!r}")
        annealer()  # fail here, with the install hint, rather than at the first forward pass
        self.num_reads, self.num_sweeps = num_reads, num_sweeps
        self.beta_range, self.beta_schedule = beta_range, beta_schedule

    def _solve(self, Q, free):
        import dimod  # installed with dwave-samplers

        sampler = annealer()
        Q, free = Q.to(torch.float64).cpu().numpy(), free.cpu().numpy()
        x = np.zeros(free.shape)
        for p in range(len(Q)):
            (index,) = np.nonzero(free[p])
            if len(index) == 0:
                continue
            sub = Q[p][np.ix_(index, index)]  # the free variables' problem
            seed = problem_key(self.seed, np.ones(len(index), dtype=bool)) >> 33  # dwave-samplers: below 2**31
            result = sampler.sample(
                dimod.BQM(sub, "BINARY"),  # from a dense matrix the pair (i, j) gets sub_ij + sub_ji, as in x^T Q x
                num_reads=self.num_reads,
                num_sweeps=self.num_sweeps,
                beta_range=self.beta_range or default_beta_range(sub),
                beta_schedule_type=self.beta_schedule,
                seed=seed,
            )
            best = result.record.sample[np.argmin(result.record.energy)]
            x[p, index[np.asarray(result.variables)]] = best
        return torch.from_numpy(x)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(seed={self.seed}, num_reads={self.num_reads}, num_sweeps={self.num_sweeps}, "
            f"beta_range={self.beta_range}, beta_schedule={self.beta_schedule!r})"
        )
