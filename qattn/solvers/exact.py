"""``exact``: every assignment enumerated; the reference the other solvers are measured against."""

from __future__ import annotations

import torch

from qattn.solvers.base import QuboSolver


def assignments(index: torch.Tensor, n: int, dtype: torch.dtype) -> torch.Tensor:
    """Assignments number ``index`` (``(K,)``) of ``n`` binary variables, ``(K, n)``: bit i of k is variable i."""
    return ((index[:, None] >> torch.arange(n, device=index.device)) & 1).to(dtype)


def all_assignments(n: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The ``2^n`` assignments of ``n`` binary variables, ``(2^n, n)``, in counting order."""
    return assignments(torch.arange(2**n, device=device), n, dtype)


class ExactSolver(QuboSolver):
    """Enumerates all ``2^n`` assignments (blocks of ``block`` at a time) and keeps the lowest energy;
    ties go to the first in counting order. Up to 20 variables per problem (a million assignments)."""

    name = "exact"
    max_variables = 20

    def __init__(self, *, seed: int = 0, block: int = 1 << 16) -> None:
        super().__init__(seed=seed)  # deterministic: the seed is accepted for the common interface
        self.block = block

    def _solve(self, Q, free):
        problems, n = free.shape
        dtype = torch.float64
        Q = Q.to(dtype)
        best_energy = torch.full((problems,), float("inf"), dtype=dtype, device=Q.device)
        best_index = torch.zeros(problems, dtype=torch.long, device=Q.device)
        fixed = (~free).to(dtype)  # (P, n): an assignment using a held variable is not allowed
        for start in range(0, 2**n, self.block):
            index = torch.arange(start, min(start + self.block, 2**n), device=Q.device)
            x = assignments(index, n, dtype)  # (K, n)
            energy = torch.einsum("kn,pnm,km->pk", x, Q, x)  # (P, K)
            energy = energy.masked_fill((x @ fixed.T).T > 0, float("inf"))
            value, at = energy.min(dim=1)
            better = value < best_energy
            best_energy = torch.where(better, value, best_energy)
            best_index = torch.where(better, index[at], best_index)
        return assignments(best_index, n, Q.dtype)
