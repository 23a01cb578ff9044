"""What every QUBO solver does: a batch of QUBOs in, a batch of binary solutions and energies out.

A QUBO here is a symmetric matrix ``Q`` (``(P, n, n)`` for ``P`` problems of ``n`` variables) whose
energy ``E(x) = x^T Q x`` is minimised over ``x`` in ``{0, 1}^n``; the diagonal holds the linear terms
(``x_i^2 = x_i``). ``free`` (bool ``(P, n)``, default all) marks the variables a solver may set: the
others are held at 0 (annealing attention's padded tokens), whatever their coefficients say.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch


@dataclass
class Solutions:
    """``x``: ``(P, n)`` in {0, 1}, ``Q``'s dtype and device; ``energy``: ``(P,)``, ``x^T Q x``."""

    x: torch.Tensor
    energy: torch.Tensor


def qubo_energy(Q: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``x^T Q x`` per problem: ``Q`` ``(..., n, n)``, ``x`` ``(..., n)`` -> ``(...)``."""
    return torch.einsum("...n,...nm,...m->...", x, Q, x)


class QuboSolver(ABC):
    """Base class. Subclasses implement :meth:`_solve`; :meth:`solve` checks the input and scores the result.

    Constructors are keyword-only and seeded: the same seed and problems give the same solutions.
    """

    name: ClassVar[str]
    max_variables: ClassVar[int | None] = None  # None: no limit of the method itself
    install_hint: ClassVar[str | None] = None  # for solvers built on an optional library

    def __init__(self, *, seed: int = 0) -> None:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        self.seed = seed

    @torch.no_grad()
    def solve(self, Q: torch.Tensor, free: torch.Tensor | None = None) -> Solutions:
        Q, free = self.check(Q, free)
        if Q.shape[0] == 0 or Q.shape[1] == 0:
            x = Q.new_zeros(Q.shape[:2])
        else:
            x = self._solve(Q, free).to(dtype=Q.dtype, device=Q.device) * free.to(Q.dtype)
        return Solutions(x, qubo_energy(Q, x))

    @abstractmethod
    def _solve(self, Q: torch.Tensor, free: torch.Tensor) -> torch.Tensor:
        """``Q`` ``(P, n, n)`` symmetric (detached), ``free`` bool ``(P, n)`` -> ``x`` ``(P, n)`` in {0, 1}."""

    def check(self, Q: torch.Tensor, free: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(Q, torch.Tensor) or Q.dim() != 3 or Q.shape[1] != Q.shape[2]:
            shape = tuple(Q.shape) if isinstance(Q, torch.Tensor) else type(Q).__name__
            raise ValueError(f"Q must be a (problems, n, n) tensor of QUBO matrices, got {shape}")
        if not torch.is_floating_point(Q):
            raise TypeError(f"Q must be floating point, got {Q.dtype}")
        n = Q.shape[-1]
        if self.max_variables is not None and n > self.max_variables:
            raise ValueError(
                f"solver {self.name!r} takes at most {self.max_variables} variables per problem, got {n}; "
                "use the 'sa' or 'batched' solver for larger problems (or fewer tokens/heads per problem)"
            )
        if free is None:
            free = torch.ones(Q.shape[:2], dtype=torch.bool, device=Q.device)
        elif free.shape != Q.shape[:2] or free.dtype != torch.bool:
            raise ValueError(f"free must be a bool tensor of shape {tuple(Q.shape[:2])}, got {free.dtype} {tuple(free.shape)}")
        Q = Q.detach()
        return (Q + Q.transpose(1, 2)) / 2, free

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seed={self.seed})"
