"""What every QUBO solver does: a batch of QUBOs in, a batch of binary solutions and energies out.

A QUBO here is a symmetric matrix ``Q`` (``(P, n, n)`` for ``P`` problems of ``n`` variables) whose
energy ``E(x) = x^T Q x`` is minimised over ``x`` in ``{0, 1}^n``; the diagonal holds the linear terms
(``x_i^2 = x_i``). ``free`` (bool ``(P, n)``, default all) marks the variables a solver may set: the
others are held at 0 (annealing attention's padded tokens), whatever their coefficients say.

A stochastic solver draws each problem's random numbers from :func:`problem_key` (its seed and the
problem's own free variables), so a problem's answer does not depend on which others share its batch, in
what order, or how far its padding reaches: a model evaluates the same at any batch size.

Annealing attention's QUBOs have a structure worth keeping (:class:`GroupedQubo`: dense couplings
within each head, heads coupled only through the same token); a solver that can use it says so
(``structured = True``), the others get the dense matrix.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch


@dataclass
class Solutions:
    """``x``: ``(P, n)`` in {0, 1}, ``Q``'s dtype and device; ``energy``: ``(P,)``, ``x^T Q x``."""

    x: torch.Tensor
    energy: torch.Tensor


@dataclass
class GroupedQubo:
    """``H`` groups of ``T`` variables, ordered group-major (variable ``h * T + t``), ``P`` problems:

        E(x) = sum_h x_h^T C_h x_h + sum_h l_h . x_h + r sum_t sum_{h != g} x[h, t] x[g, t]

    ``coupling`` ``C`` ``(P, H, T, T)`` symmetric with zero diagonal, ``linear`` ``l`` ``(P, H, T)``, ``penalty``
    ``r`` ``(P,)``. Annealing attention's QUBO: groups are heads, variables tokens. A dense QUBO is one group."""

    coupling: torch.Tensor
    linear: torch.Tensor
    penalty: torch.Tensor

    @property
    def shape(self) -> torch.Size:
        """``(P, n, n)``, as the dense matrix's."""
        problems, groups, size = self.linear.shape
        return torch.Size((problems, groups * size, groups * size))

    def dense(self) -> torch.Tensor:
        """The symmetric ``Q`` ``(P, H*T, H*T)`` with the same energies."""
        problems, groups, size = self.linear.shape
        eye_h = torch.eye(groups, dtype=self.linear.dtype, device=self.linear.device)
        eye_t = torch.eye(size, dtype=self.linear.dtype, device=self.linear.device)
        Q = torch.einsum("bhnm,hg->bhngm", self.coupling, eye_h)
        Q = Q + self.penalty[:, None, None, None, None] * torch.einsum("hg,nm->hngm", 1 - eye_h, eye_t)
        Q = Q.reshape(problems, groups * size, groups * size)
        return Q + torch.diag_embed(self.linear.reshape(problems, -1))

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """``E(x)`` for ``x`` ``(P, ..., H*T)`` (e.g. several runs per problem) -> ``(P, ...)``."""
        problems, groups, size = self.linear.shape
        x = x.reshape(*x.shape[:-1], groups, size)  # (P, ..., H, T)
        extra = x.dim() - 3
        view = (problems,) + (1,) * extra
        coupling = self.coupling.view(*view, groups, size, size)
        pairs = torch.einsum("...n,...nm,...m->...", x, coupling, x).sum(-1)
        linear = (self.linear.view(*view, groups, size) * x).sum((-1, -2))
        per_token = x.sum(-2)  # (P, ..., T): heads selecting each token
        same = (per_token.square() - x.square().sum(-2)).sum(-1)
        return pairs + linear + self.penalty.view(view) * same


def problem_key(seed: int, free: np.ndarray | torch.Tensor) -> int:
    """A 64-bit key for one problem's random numbers: sha256 of ``seed`` and the problem's free-variable
    pattern ``free`` (bool, its shape included; e.g. ``(H, n)`` on its ``n`` live tokens), never its padding.

    Not its coefficients: a model's scores differ in their last bits with the batch they are computed in
    (float sums in another order), and a hash of those bits would draw other numbers, and so give another
    answer, for what is the same problem. Problems of one pattern share their numbers, which is harmless:
    each is annealed on its own."""
    pattern = np.ascontiguousarray(free.detach().cpu().numpy() if isinstance(free, torch.Tensor) else free, dtype=bool)
    digest = hashlib.sha256(f"{seed} {pattern.shape}".encode())
    digest.update(pattern.tobytes())
    return int.from_bytes(digest.digest()[:8], "little")


def qubo_energy(Q: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``x^T Q x`` per problem: ``Q`` ``(..., n, n)``, ``x`` ``(..., n)`` -> ``(...)``."""
    return torch.einsum("...n,...nm,...m->...", x, Q, x)


class QuboSolver(ABC):
    """Base class. Subclasses implement :meth:`_solve`; :meth:`solve` checks the input and scores the result.

    Constructors are keyword-only and seeded: the same seed and problem give the same solution, whatever
    else is in the batch (:func:`problem_key`).
    """

    name: ClassVar[str]
    max_variables: ClassVar[int | None] = None  # None: no limit of the method itself
    structured: ClassVar[bool] = False  # True: _solve takes a GroupedQubo as it is
    install_hint: ClassVar[str | None] = None  # for solvers built on an optional library

    def __init__(self, *, seed: int = 0) -> None:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        self.seed = seed

    @torch.no_grad()
    def solve(self, Q: torch.Tensor | GroupedQubo, free: torch.Tensor | None = None) -> Solutions:
        """Minimise every problem of ``Q`` (a dense ``(P, n, n)`` tensor or a :class:`GroupedQubo`)."""
        if isinstance(Q, GroupedQubo):
            free = self.check_free(Q.linear, Q.shape, free)
            self.check_size(Q.shape[-1])
            self.check_finite(Q.coupling, Q.linear, Q.penalty)
            if not self.structured:
                return self.solve(Q.dense(), free)
            x = self.solutions(Q, free, Q.linear)
            return Solutions(x, Q.energy(x))
        Q, free = self.check(Q, free)
        x = self.solutions(Q, free, Q)
        return Solutions(x, qubo_energy(Q, x))

    def solutions(self, Q: torch.Tensor | GroupedQubo, free: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        problems, n = free.shape
        if problems == 0 or n == 0:
            return like.new_zeros(problems, n)
        return self._solve(Q, free).to(dtype=like.dtype, device=like.device) * free.to(like.dtype)

    @abstractmethod
    def _solve(self, Q: torch.Tensor, free: torch.Tensor) -> torch.Tensor:
        """``Q`` ``(P, n, n)`` symmetric (detached; a :class:`GroupedQubo` for a ``structured`` solver),
        ``free`` bool ``(P, n)`` -> ``x`` ``(P, n)`` in {0, 1}."""

    def check_size(self, n: int) -> None:
        if self.max_variables is not None and n > self.max_variables:
            raise ValueError(
                f"solver {self.name!r} takes at most {self.max_variables} variables per problem, got {n}; "
                "use the 'sa' or 'batched' solver for larger problems (or fewer tokens/heads per problem)"
            )

    @staticmethod
    def check_free(like: torch.Tensor, shape: torch.Size, free: torch.Tensor | None) -> torch.Tensor:
        if free is None:
            return torch.ones(shape[:2], dtype=torch.bool, device=like.device)
        if free.shape != shape[:2] or free.dtype != torch.bool:
            got = f"{free.dtype} {tuple(free.shape)}"
            raise ValueError(f"free must be a bool tensor of shape {tuple(shape[:2])}, got {got}")
        return free

    @staticmethod
    def check_finite(*coefficients: torch.Tensor) -> None:
        """Every problem's coefficients (tensors of ``P`` rows) finite: a NaN or infinite one leaves no
        minimum to find, and solvers would answer it with arbitrary solutions or a library's traceback."""
        problems = len(coefficients[0])
        bad = torch.zeros(problems, dtype=torch.bool, device=coefficients[0].device)
        for part in coefficients:
            rows = part.detach().reshape(problems, -1)
            suspect = ~torch.isfinite(rows.sum(dim=1))  # only finite terms have a finite sum (and it is fast)
            if suspect.any():  # a NaN or inf, or finite terms whose sum overflowed
                bad |= suspect & ~torch.isfinite(rows).all(dim=1)
        if bad.any():
            first, count = int(bad.nonzero()[0]), int(bad.sum())
            more = f" (and {count - 1} more)" if count > 1 else ""
            raise ValueError(
                f"QUBO problem {first} (of {problems}) has NaN or infinite coefficients{more}; every solver needs "
                "finite ones: give the annealing weights (quadratic, linear, penalty) finite values, and if a "
                "model's scores overflowed, train with a smaller learning rate or gradient clipping"
            )

    def check(self, Q: torch.Tensor, free: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(Q, torch.Tensor) or Q.dim() != 3 or Q.shape[1] != Q.shape[2]:
            shape = tuple(Q.shape) if isinstance(Q, torch.Tensor) else type(Q).__name__
            raise ValueError(f"Q must be a (problems, n, n) tensor of QUBO matrices, got {shape}")
        if not torch.is_floating_point(Q):
            raise TypeError(f"Q must be floating point, got {Q.dtype}")
        self.check_size(Q.shape[-1])
        free = self.check_free(Q, Q.shape, free)
        self.check_finite(Q)
        Q = Q.detach()
        return (Q + Q.transpose(1, 2)) / 2, free

    def __repr__(self) -> str:
        return f"{type(self).__name__}(seed={self.seed})"
