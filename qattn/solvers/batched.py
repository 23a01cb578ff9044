"""``batched``: one simulated annealer over every QUBO of a forward pass at once, as tensors (CPU or CUDA).

An attention layer hands the solver one QUBO per sequence and chunk (hundreds per batch); solving them
one by one in a library costs a Python round trip each. Here all problems, and ``restarts`` independent
runs of each, anneal together: every step is a few tensor operations over ``(problems, restarts, ...)``,
on the device the QUBOs are on (QAMA ships a batched GPU search for the same reason).

Metropolis updates need the energy change of a flip, which depends on the coupled variables; variables
that share no coupling can flip in the same step. In annealing attention's QUBO
(:class:`~qattn.solvers.base.GroupedQubo`) the tokens of one head are all coupled, and heads only through
the same token, so one step updates one token per head, all different (token ``(i + h) mod T`` of head
``h`` at step ``i``): a sweep is ``T`` steps, whatever the number of heads. A dense QUBO is one group,
one variable per step. The schedule is geometric in the inverse temperature, per problem, from hot (an
uphill flip of the typical size at the random start accepted with probability 1/8) to cold (1e-6); a
zero-temperature descent follows, and the restart with the lowest energy wins.
"""

from __future__ import annotations

import math

import torch

from qattn.solvers.base import GroupedQubo, QuboSolver


HOT, COLD = 3 * math.log(2), 3 * math.log(100)  # see BatchedAnnealer.beta_range


def rotate(t: torch.Tensor, dims: tuple[int, ...], groups: int, back: bool = False) -> torch.Tensor:
    """Group ``h``'s variables rolled by ``h`` along ``dims`` (the group axis is 1): position ``i`` of group
    ``h`` holds variable ``(i + h) mod T``, so one step's variables, all different, are one column.
    ``back``: the inverse (variable ``t`` from position ``(t - h) mod T``)."""
    size = t.shape[dims[0]]
    shift = -1 if back else 1
    position, group = torch.arange(size, device=t.device), torch.arange(groups, device=t.device)
    index = (position[None, :] + shift * group[:, None]) % size
    for dim in dims:  # (H, T) index broadcast over the other axes
        shape = [1] * t.dim()
        shape[1], shape[dim] = groups, size
        t = torch.gather(t, dim, index.view(shape).expand(*t.shape[:dim], size, *t.shape[dim + 1 :]))
    return t


class BatchedAnnealer(QuboSolver):
    """Tensor simulated annealing: ``sweeps`` annealing sweeps, then at most ``descent`` zero-temperature
    sweeps, for ``restarts`` independent seeded runs per problem; the best is returned."""

    name = "batched"
    structured = True

    def __init__(self, *, seed: int = 0, sweeps: int = 8, restarts: int = 4, descent: int = 2) -> None:
        super().__init__(seed=seed)
        for key, value, least in (("sweeps", sweeps, 1), ("restarts", restarts, 1), ("descent", descent, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ValueError(f"{key} must be an int >= {least}, got {value!r}")
        self.sweeps, self.restarts, self.descent = sweeps, restarts, descent

    def _solve(self, Q, free):
        if not isinstance(Q, GroupedQubo):  # a dense QUBO: one group
            diag = torch.diagonal(Q, dim1=1, dim2=2)
            Q = GroupedQubo((Q - torch.diag_embed(diag)).unsqueeze(1), diag.unsqueeze(1), Q.new_zeros(Q.shape[0]))
        problems, groups, size = Q.linear.shape
        if groups > size:  # one token per head and step needs distinct tokens: solve as one dense group
            return self._solve(Q.dense(), free)
        device, dtype = Q.linear.device, Q.linear.dtype
        generator = torch.Generator(device=device).manual_seed(self.seed)
        # rotated coordinates (see rotate): step i updates column i of every group
        coupling = 2 * rotate(Q.coupling, (2, 3), groups).unsqueeze(1)  # (P, 1, H, T, T): field change per flip
        can_flip = rotate(free.view(problems, groups, size), (2,), groups).unsqueeze(1)  # (P, 1, H, T)
        x = torch.rand(problems, self.restarts, groups, size, generator=generator, device=device) < 0.5
        x = (x & can_flip).to(dtype)  # (P, R, H, T)
        token = (torch.arange(size, device=device)[None, :] + torch.arange(groups, device=device)[:, None]) % size
        selected = torch.zeros(problems, self.restarts, size, dtype=dtype, device=device)  # heads per token
        selected.index_add_(2, token.flatten(), x.flatten(2))
        # field: energy change of setting a variable from 0 to 1 but for the penalty (added when read);
        # +inf for held variables, so no flip of theirs is ever accepted
        field = rotate(Q.linear, (2,), groups).unsqueeze(1) + (coupling @ x.unsqueeze(-1)).squeeze(-1)
        field = field.masked_fill(~can_flip, float("inf"))
        penalty = 2 * Q.penalty.view(problems, 1, 1)

        hot, cold = self.beta_range(field, can_flip, penalty)
        state = (x, field, selected, coupling, token, penalty)
        for sweep in range(self.sweeps):
            t = sweep / max(self.sweeps - 1, 1)
            beta = (hot ** (1 - t) * cold**t).view(problems, 1, 1)
            # Metropolis: accept a flip of energy change d when d < -ln(u) / beta, u uniform in (0, 1]
            u = 1 - torch.rand(size, problems, self.restarts, groups, generator=generator, device=device, dtype=dtype)
            self.sweep(*state, thresholds=-torch.log(u) / beta)
        for _ in range(self.descent):
            if not self.sweep(*state, thresholds=None):
                break
        x = rotate(x.transpose(1, 2), (3,), groups, back=True).transpose(1, 2).reshape(problems, self.restarts, -1)
        best = Q.energy(x).argmin(dim=1)  # (P,)
        return x[torch.arange(problems, device=device), best]

    def beta_range(self, field, can_flip, penalty):
        """Inverse temperatures ``(P,)`` to anneal from and to, from the flip costs at the random start:
        hot accepts an uphill flip of the typical size with probability 1/8, cold with 1e-6 (tuned on random
        and attention-shaped QUBOs: ``benchmarks/qubo_solvers.py``)."""
        typical = (field.abs() + penalty.unsqueeze(-1)).masked_fill(~can_flip, 0).sum((1, 2, 3))
        typical = (typical / (can_flip.sum((1, 2, 3)) * field.shape[1]).clamp_min(1)).clamp_min(1e-12)
        return HOT / typical, COLD / typical

    @staticmethod
    def sweep(x, field, selected, coupling, token, penalty, thresholds) -> bool:
        """One pass over all variables, in place. ``thresholds`` ``(T, P, R, H)``: accept a flip whose energy
        change is below; None: only flips that lower the energy. Returns whether any variable flipped."""
        flipped = False
        for i in range(x.shape[-1]):
            xs = x[..., i]  # (P, R, H): token (i + h) mod T of head h
            sign = 1 - 2 * xs  # +1: a flip sets the variable, -1: clears it
            tokens = token[:, i]
            delta = sign * (field[..., i] + penalty * (selected[..., tokens] - xs))
            accept = delta < (0 if thresholds is None else thresholds[i])
            step = sign * accept
            if thresholds is None:
                flipped = flipped or bool(accept.any())
            x[..., i] += step
            field.addcmul_(step.unsqueeze(-1), coupling[..., i, :])  # the same head's tokens
            selected.index_add_(2, tokens, step)
        return flipped

    def __repr__(self) -> str:
        options = f"sweeps={self.sweeps}, restarts={self.restarts}, descent={self.descent}"
        return f"BatchedAnnealer(seed={self.seed}, {options})"
