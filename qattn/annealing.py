"""QAMA: attention as a QUBO solved by an annealer (Quantum Annealing Multi-head Attention).

Du et al., arXiv:2504.11083; public code github.com/Dxee-e/QAMA (``QAMultiheadAttention.py``,
``QUBO.py``). Per sequence, every head ``h`` and token ``n`` gets a binary variable ``x[h, n]`` (the
head *selects* the token) and the annealer minimises

    E(x) = - a  sum_h  sum_{n != m} J[h, n, m] x[h, n] x[h, m]           couplings: query-key similarity
           - b  T   sum_h  sum_n     s[h, n] x[h, n]                      linear terms: from the values
           + c' sum_n  sum_{h != g}  x[h, n] x[g, n]                      cross-head penalty

with ``J = sym(q k^T / sqrt(head_dim))`` (symmetric, zero diagonal), ``s = mean(v * e)`` for a learned
vector ``e`` (QAMA's ``E2V``), ``T`` tokens, and ``c' = c/2 sqrt(2/pi) T / (H - 1)`` pushing heads to
select different tokens (``a, b, c`` = ``quadratic, linear, penalty``, QAMA's defaults 1, 0.16, 0.8).
The solution is detached; each head's output at token ``n`` is its share of the energy at that
solution, ``H[h, n] = -(x[h, n] sum_m J[h, n, m] x[h, m] + s[h, n] x[h, n])``, times ``e``. Gradients
reach queries, keys, values and ``e`` through ``H`` with ``x`` held fixed (straight-through), exactly as
QAMA trains it; the shell's output projection then mixes the heads.

Where qattn differs from QAMA's code, and why:

- Masks (QAMA has none). A pair ``(n, m)`` the mask forbids contributes no coupling: ``J[h, n, m] = 0``
  (the QUBO uses the symmetric part of the masked ``J``, and ``H`` the masked rows, so ``sum_n H`` is the
  QUBO's coupling and linear energy). A token no query may attend to (a padded key) is never
  selected: its variable is held at 0 by the solver. ``T`` is the number of such selectable tokens of
  each sequence, not the padded length, so a padded chunk's QUBO is the QUBO of its real tokens.
- A query whose every key is masked gets the shell's treatment: zero output and weights with
  ``need_weights=False``, NaN with ``need_weights=True`` (as ``torch.nn.MultiheadAttention``).
- Attention weights (QAMA returns none): ``w[h, n, m] = x[h, n] x[h, m] / k`` over the ``k`` selected tokens
  ``m`` that query ``n`` may attend to, when the head selected ``n`` itself; rows of unselected queries are
  0. They show which pairs enter the energy; the output is not ``w @ v``.
- Projections are the shell's (``nn.Linear`` with the usual biases, a dropout on ``H`` during training,
  and an output projection); QAMA normalises q, k, v inputs with LayerNorms and has no output
  projection (qattn's encoder blocks are pre-norm already).
- Self-attention only: a variable is one token as query and as key, so queries and keys must have the
  same length; torch's ``add_bias_kv`` / ``add_zero_attn`` (an extra key without a query) are refused.
- Solvers are qattn's (:mod:`qattn.solvers`): QAMA's C++ SA, Gurobi, Kaiwu SA and coherent Ising machine
  backends need their builds or vendor licences; qattn has ``exact``, ``sa``, ``batched`` and ``qaoa``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from qattn.checks import qubo_weight
from qattn.kernels import AttentionKernel
from qattn.solvers import GroupedQubo, QuboSolver, resolve_solver

QAMA_COEFFICIENTS = {"quadratic": 1.0, "linear": 0.16, "penalty": 0.8}  # QUBO.py's DEFAULT_MODEL_ARGS


def qama_qubo(
    J: torch.Tensor,
    s: torch.Tensor,
    free: torch.Tensor,
    *,
    quadratic: float = 1.0,
    linear: float = 0.16,
    penalty: float = 0.8,
) -> GroupedQubo:
    """QAMA's QUBO of each sequence, heads as groups of token variables (variable ``h * T + n``).

    ``J`` ``(B, H, T, T)`` couplings (zero where masked), ``s`` ``(B, H, T)`` linear terms, ``free`` bool
    ``(B, H, T)`` selectable variables. Coefficients as in QAMA's ``QUBO.prepare_coefficients``; terms of
    held variables are 0.
    """
    heads, tokens = J.shape[1], J.shape[2]
    count = free.any(dim=1).sum(dim=-1).to(J.dtype)  # (B,): selectable tokens, QAMA's sequence length
    keep = free.to(J.dtype)
    coupling = (J + J.transpose(-1, -2)) / 2 * (1 - torch.eye(tokens, dtype=J.dtype, device=J.device))
    coupling = -quadratic * coupling * keep.unsqueeze(-1) * keep.unsqueeze(-2)
    linear_terms = -linear * count[:, None, None] * s * keep
    per_pair = penalty / 2 * math.sqrt(2 / math.pi) * count / (heads - 1) if heads > 1 else torch.zeros_like(count)
    return GroupedQubo(coupling, linear_terms, per_pair)


class AnnealingKernel(AttentionKernel):
    """QAMA's attention per head (see the module docstring); ``solver`` a name from
    :data:`qattn.solvers.SOLVERS` or a :class:`~qattn.solvers.QuboSolver` instance."""

    def __init__(
        self,
        num_heads: int,
        head_dim: int,
        *,
        solver: str | QuboSolver = "sa",
        quadratic: float = QAMA_COEFFICIENTS["quadratic"],
        linear: float = QAMA_COEFFICIENTS["linear"],
        penalty: float = QAMA_COEFFICIENTS["penalty"],
    ) -> None:
        super().__init__()
        self.feature_dim = head_dim
        self.solver = resolve_solver(solver)
        weights = {"quadratic": quadratic, "linear": linear, "penalty": penalty}
        self.coefficients = {key: qubo_weight(key, value) for key, value in weights.items()}  # as the config checks
        self.value_to_energy = nn.Parameter(torch.randn(head_dim))  # QAMA's E2V: values -> s, energy -> output

    def attend(self, q, k, v, mask, *, blind_rows_zero, dropout):
        batch, heads, tokens, _ = q.shape
        if k.shape[2] != tokens:
            raise ValueError(
                "annealing attention is self-attention: each token is one QUBO variable per head, as query and "
                f"as key, so query and key lengths must match (got {tokens} and {k.shape[2]})"
            )
        if batch * tokens == 0:
            return q.new_zeros(*q.shape[:3], v.shape[-1]), q.new_zeros(batch, heads, tokens, tokens)
        dtype = q.dtype
        work = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
        q, k, v = q.to(work), k.to(work), v.to(work)
        e = self.value_to_energy.to(work)

        J = (q @ k.transpose(-1, -2)) / math.sqrt(self.feature_dim)  # (B, H, T, T)
        J = (J + J.transpose(-1, -2)) / 2 * (1 - torch.eye(tokens, dtype=work, device=q.device))
        allowed = torch.ones_like(J, dtype=torch.bool) if mask is None else torch.isfinite(mask).expand_as(J)
        J = J.masked_fill(~allowed, 0.0)
        s = (v * e).mean(dim=-1)  # (B, H, T)
        free = allowed.any(dim=-2)  # (B, H, T): some query may attend to the token
        Q = qama_qubo(J.detach(), s.detach(), free, **self.coefficients)
        x = self.solver.solve(Q, free.reshape(batch, -1)).x.view(batch, heads, tokens).to(work)  # detached

        energy = -(x * (J @ x.unsqueeze(-1)).squeeze(-1) + s * x)  # (B, H, T): straight-through at fixed x
        if dropout > 0.0:
            energy = F.dropout(energy, p=dropout)
        out = energy.unsqueeze(-1) * e  # (B, H, T, hd)
        pairs = x.unsqueeze(-1) * x.unsqueeze(-2) * allowed  # (B, H, T, T): selected pairs a query may use
        weights = pairs / pairs.sum(dim=-1, keepdim=True).clamp_min(1)
        blind = ~allowed.any(dim=-1, keepdim=True)  # (B, H, T, 1)
        if blind.any():
            fill = 0.0 if blind_rows_zero else float("nan")
            out, weights = out.masked_fill(blind, fill), weights.masked_fill(blind, fill)
        return out.to(dtype), weights.to(dtype)

    def extra_repr(self) -> str:
        terms = ", ".join(f"{key}={value}" for key, value in self.coefficients.items())
        return f"solver={self.solver!r}, {terms}"
