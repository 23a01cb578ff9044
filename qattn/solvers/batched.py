"""``batched``: one simulated annealer over every QUBO of a forward pass at once, as tensors (CPU or CUDA).

An attention layer hands the solver one QUBO per sequence and chunk (hundreds per batch); solving them
one by one in a library costs a Python round trip each. Here all problems, and ``restarts`` independent
runs of each, anneal together: every step is a few tensor operations over ``(problems, restarts, ...)``,
on the device the QUBOs are on (QAMA ships a batched GPU search for the same reason).

Metropolis updates need the energy change of a flip, which depends on the coupled variables; variables
that share no coupling can flip in the same step. In annealing attention's QUBO
(:class:`~qattn.solvers.base.GroupedQubo`) the tokens of one head are all coupled, and heads only through
the same token, so one step updates one token per head, all different (live token ``(i + h) mod L`` of
head ``h`` at step ``i``, :func:`schedule`): a sweep is ``L = max(n, H)`` steps for a problem of ``n``
live tokens, whatever its padding. A dense QUBO is one group, one variable per step. The schedule is
geometric in the inverse temperature, per problem, from hot (an uphill flip of the typical size at the
random start accepted with probability 1/8) to cold (1e-6); a zero-temperature descent follows, and the
restart with the lowest energy wins.

Each problem is its own: its random numbers come from the seed and its free variables
(:func:`problem_streams`), its sweep from its live tokens, and its sums are taken in float64, so it gets
the same answer whatever other problems, and whatever padding, share its batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from qattn.solvers.base import GroupedQubo, QuboSolver, problem_key

HOT, COLD = 3 * math.log(2), 3 * math.log(100)  # see BatchedAnnealer.beta_range


def schedule(free: torch.Tensor) -> torch.Tensor:
    """Which token each head updates at each step: ``(P, H, S)``, entry ``[p, h, i]`` the token of head ``h``
    at step ``i`` of problem ``p``'s sweep, or ``T`` (a held dummy) for none.

    A problem's own sweep does not depend on its padding or on the other problems: its ``n`` live tokens
    (free in some head) in order, ``L = max(n, H)`` steps, head ``h`` at step ``i`` on live token
    ``(i + h) mod L`` if there is one, so the heads of a step are on different tokens. ``S`` is the longest
    sweep of the batch; a shorter one idles (updates dummies) for the rest."""
    problems, groups, size = free.shape
    live = free.any(dim=1)  # (P, T)
    order = torch.argsort((~live).to(torch.int8), dim=1, stable=True)  # live tokens first, in order
    count = live.sum(dim=1)  # (P,)
    length = count.clamp_min(groups)  # L
    steps = int(length.max())
    step, head = torch.arange(steps, device=free.device), torch.arange(groups, device=free.device)
    position = (step[None, None, :] + head[None, :, None]) % length[:, None, None]  # (P, H, S)
    real = (step[None, None, :] < length[:, None, None]) & (position < count[:, None, None])
    token = order.gather(1, position.clamp(max=size - 1).view(problems, -1)).view(problems, groups, steps)
    return torch.where(real, token, size)


def problem_streams(free: torch.Tensor, seed: int) -> tuple[list[torch.Generator], list[int], torch.Tensor]:
    """The batch's random streams: one generator per free pattern of a problem's live tokens
    (:func:`~qattn.solvers.base.problem_key`), its sweep length ``max(n, H)``, and which stream each problem
    ``(P,)`` reads: the same problem draws the same numbers in any batch."""
    problems, groups, _ = free.shape
    patterns, live = free.cpu(), free.any(dim=1).cpu()
    keys = [problem_key(seed, patterns[p][:, live[p]]) for p in range(problems)]
    streams: dict[int, int] = {}  # key -> its stream
    lengths = []
    for p, key in enumerate(keys):
        if key not in streams:
            streams[key] = len(streams)
            lengths.append(max(int(live[p].sum()), groups))
    generators = [torch.Generator(device=free.device).manual_seed(key) for key in streams]
    return generators, lengths, torch.tensor([streams[key] for key in keys], device=free.device)


def draw(generators: list[torch.Generator], lengths: list[int], steps: int, shape: tuple[int, ...], like: torch.Tensor,
         ) -> torch.Tensor:
    """Uniform numbers in [0, 1) ``(streams, *shape, S)``: stream ``k``'s first ``lengths[k]`` steps from its
    generator (as many numbers whatever ``S``), the idle steps after them 0."""
    options = {"device": like.device, "dtype": like.dtype}
    rows = [torch.rand(*shape, n, generator=g, **options) for g, n in zip(generators, lengths)]
    return torch.stack([F.pad(row, (0, steps - row.shape[-1])) for row in rows])


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
        restarts, device, dtype = self.restarts, Q.linear.device, Q.linear.dtype
        free = free.view(problems, groups, size)
        generators, lengths, stream = problem_streams(free, self.seed)
        token = schedule(free)  # (P, H, S); token `size` is a held dummy with no coefficients
        steps = token.shape[-1]
        # sweep coordinates: position i of head h is the variable it updates at step i
        coupling = F.pad(Q.coupling, (0, 1, 0, 1)).gather(2, token.unsqueeze(-1).expand(-1, -1, -1, size + 1))
        coupling = 2 * coupling.gather(3, token.unsqueeze(2).expand(-1, -1, steps, -1)).unsqueeze(1)  # (P, 1, H, S, S)
        can_flip = F.pad(free, (0, 1)).gather(2, token).unsqueeze(1)  # (P, 1, H, S)
        x = (draw(generators, lengths, steps, (restarts, groups), Q.linear)[stream] < 0.5) & can_flip  # (P, R, H, S)
        x = x.to(dtype)
        tokens = token.unsqueeze(1).expand(-1, restarts, -1, -1)  # (P, R, H, S)
        selected = x.new_zeros(problems, restarts, size + 1)  # heads selecting each token (and the dummy)
        selected.scatter_add_(2, tokens.flatten(2), x.flatten(2))
        # field: energy change of setting a variable from 0 to 1 but for the penalty (added when read);
        # +inf for held variables, so no flip of theirs is ever accepted. Sums in float64, so a problem's
        # field is the same whatever padding the batch gives it.
        field = F.pad(Q.linear, (0, 1)).gather(2, token).unsqueeze(1).double()
        field = (field + torch.einsum("pqhij,prhj->prhi", coupling.double(), x.double())).to(dtype)
        field = field.masked_fill(~can_flip, float("inf"))
        penalty = 2 * Q.penalty.view(problems, 1, 1)

        hot, cold = self.beta_range(field, can_flip, penalty)
        state = (x, field, selected, coupling, tokens, penalty)
        for sweep in range(self.sweeps):
            t = sweep / max(self.sweeps - 1, 1)
            beta = (hot ** (1 - t) * cold**t).view(problems, 1, 1, 1)
            # Metropolis: accept a flip of energy change d when d < -ln(u) / beta, u uniform in (0, 1]
            u = 1 - draw(generators, lengths, steps, (restarts, groups), Q.linear)[stream]  # (P, R, H, S)
            self.sweep(*state, thresholds=-torch.log(u) / beta)
        for _ in range(self.descent):
            if not self.sweep(*state, thresholds=None):
                break
        x = x.new_zeros(problems, restarts, groups, size + 1).scatter_(3, tokens, x)[..., :size].flatten(2)
        exact = GroupedQubo(Q.coupling.double(), Q.linear.double(), Q.penalty.double())  # ties broken alike anywhere
        best = exact.energy(x.double()).argmin(dim=1)  # (P,)
        return x[torch.arange(problems, device=device), best]

    def beta_range(self, field, can_flip, penalty):
        """Inverse temperatures ``(P,)`` to anneal from and to, from the flip costs at the random start:
        hot accepts an uphill flip of the typical size with probability 1/8, cold with 1e-6 (tuned on random
        and attention-shaped QUBOs: ``benchmarks/qubo_solvers.py``)."""
        typical = (field.abs() + penalty.unsqueeze(-1)).masked_fill(~can_flip, 0).double().sum((1, 2, 3))
        typical = (typical / (can_flip.sum((1, 2, 3)) * field.shape[1]).clamp_min(1)).clamp_min(1e-12).to(field.dtype)
        return HOT / typical, COLD / typical

    @staticmethod
    def sweep(x, field, selected, coupling, tokens, penalty, thresholds) -> bool:
        """One pass over all variables, in place. ``thresholds`` ``(P, R, H, S)``: accept a flip whose energy
        change is below; None: only flips that lower the energy. Returns whether any variable flipped."""
        flipped = False
        for i in range(x.shape[-1]):
            xs = x[..., i]  # (P, R, H): the variable each head updates at step i
            sign = 1 - 2 * xs  # +1: a flip sets the variable, -1: clears it
            token = tokens[..., i]
            delta = sign * (field[..., i] + penalty * (selected.gather(2, token) - xs))
            accept = delta < (0 if thresholds is None else thresholds[..., i])
            step = sign * accept
            if thresholds is None:
                flipped = flipped or bool(accept.any())
            x[..., i] += step
            field.addcmul_(step.unsqueeze(-1), coupling[..., i, :])  # the same head's tokens
            selected.scatter_add_(2, token, step)
        return flipped

    def __repr__(self) -> str:
        options = f"sweeps={self.sweeps}, restarts={self.restarts}, descent={self.descent}"
        return f"BatchedAnnealer(seed={self.seed}, {options})"
