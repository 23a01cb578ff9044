"""Attention kernels: what a head does between the shell's projections and its output projection.

The attention shell (:mod:`qattn.attention`) owns projections, heads, masks and the output projection;
its kernel turns each head's queries, keys and values into outputs and attention weights
(:meth:`AttentionKernel.attend`). A score kernel (:class:`ScoreKernel`) only says how similar a query is
to a key, and the softmax-weighted sum of values does the rest. QAMA's annealing kernel
(:mod:`qattn.annealing`) selects tokens by solving a QUBO instead. Score kernels are chosen by name from
:data:`KERNELS`:

- ``dot``: scaled dot product, the classical baseline.
- ``uniform``: no score at all, every unmasked key the same weight: the ablation that shows what scoring adds.
- ``fidelity``: ``tau_h |<phi_K(k)|phi_Q(q)>|^2`` with separate query and key circuits per head.
- ``gaussian``: ``-tau_h ||f_Q(q) - f_K(k)||^2`` of expectation-value features (QSANN).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from qattn.checks import positive_int
from qattn.circuits import CircuitFamily, FeatureMap, resolve_circuit
from qattn.executors import Executor, resolve_executor
from qattn.registry import KERNELS, quantum_kernels  # noqa: F401  (declared there: config reads them without torch)


class AttentionKernel(nn.Module):
    """Base class of what the shell calls per head. ``feature_dim`` is the per-head width the shell
    projects queries and keys to (values are projected to ``head_dim``)."""

    quantum: ClassVar[bool] = False
    feature_dim: int

    def attend(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        mask: torch.Tensor | None,
        *,
        blind_rows_zero: bool,
        dropout: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``q`` ``(B, H, N, F)``, ``k`` ``(B, H, S, F)``, ``v`` ``(B, H, S, hd)``, ``mask`` additive
        (``-inf`` = not allowed), broadcastable to ``(B, H, N, S)``, or None -> each head's output
        ``(B, H, N, hd)`` and attention weights ``(B, H, N, S)``.

        A query whose every key is masked (a *blind* row) gets NaN weights and output, as torch with
        ``need_weights=True``, or with ``blind_rows_zero`` zero weights and output, as torch's
        ``need_weights=False`` path. ``dropout`` is the probability to apply now (0 in eval mode)."""
        raise NotImplementedError


def attention_weights(scores: torch.Tensor, mask: torch.Tensor | None, blind_rows_zero: bool) -> torch.Tensor:
    """Softmax of the masked ``scores`` over keys. A query whose every key is masked gets NaN weights,
    as in torch with ``need_weights=True`` (documented there), or, with ``blind_rows_zero``, zero weights
    and zero gradients, as torch's ``need_weights=False`` path (``scaled_dot_product_attention``) gives:
    zero values, so ``out_proj``'s bias as its output."""
    if mask is None or not blind_rows_zero:
        return F.softmax(scores, dim=-1)
    blind = torch.isneginf(mask).all(-1, keepdim=True)
    return F.softmax(scores.masked_fill(blind, 0.0), dim=-1).masked_fill(blind, 0.0)


class ScoreKernel(AttentionKernel):
    """Base class of the softmax kernels: :meth:`forward` scores every query-key pair; :meth:`attend`
    weights the values by the softmax of the masked scores, as ``torch.nn.MultiheadAttention`` does."""

    def attend(self, q, k, v, mask, *, blind_rows_zero, dropout):
        batch, heads, tgt_len, src_len = q.shape[0], q.shape[1], q.shape[2], k.shape[2]
        if batch * tgt_len * src_len == 0:
            scores = q.new_zeros(batch, heads, tgt_len, src_len)  # nothing to score, no circuit to run
        elif mask is None:
            scores = self(q, k)  # (B, H, N, S)
        else:
            needed = torch.isfinite(mask).expand(batch, mask.shape[1] if mask.dim() == 4 else 1, tgt_len, src_len)
            scores = self(q, k, needed) + mask
        weights = attention_weights(scores, mask, blind_rows_zero)
        if dropout > 0.0:
            weights = F.dropout(weights, p=dropout)
        return weights @ v, weights

    def forward(self, q: torch.Tensor, k: torch.Tensor, needed: torch.Tensor | None = None) -> torch.Tensor:
        """``q``: ``(B, H, N, F)``, ``k``: ``(B, H, S, F)`` -> scores ``(B, H, N, S)``. ``needed``
        (bool, broadcastable to the scores) marks those the shell does not mask; scores elsewhere
        may be anything (hardware executors skip their circuits)."""
        raise NotImplementedError


class DotKernel(ScoreKernel):
    """``q k^T / sqrt(head_dim)``: the scores of ``torch.nn.MultiheadAttention``."""

    def __init__(self, num_heads: int, head_dim: int) -> None:
        super().__init__()
        self.feature_dim = head_dim

    def forward(self, q, k, needed=None):
        return (q * math.sqrt(1.0 / self.feature_dim)) @ k.transpose(-1, -2)


class UniformKernel(ScoreKernel):
    """Every query weighs its unmasked keys equally (a masked mean of the values): attention without
    scores, the ablation a reader needs to see what query-key similarity adds. Queries and keys are not
    used, so the shell's projections to them are one feature wide."""

    def __init__(self, num_heads: int, head_dim: int) -> None:
        super().__init__()
        self.feature_dim = 1

    def forward(self, q, k, needed=None):
        return q.new_zeros(q.shape[0], q.shape[1], q.shape[2], k.shape[2])


def circuit_dtype(dtype: torch.dtype) -> torch.dtype:
    """The real dtype circuits are simulated in for features of ``dtype``: float16 and bfloat16 run in
    float32 (their states are complex64: torch has no complex bfloat16, and CPU kernels lack complex
    half), the kernel's scores return in the input's dtype; float32 and float64 run as they are."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


class QuantumKernel(ScoreKernel):
    """Shared parts of the circuit kernels.

    Per head: a learned input scale on each encoded feature, separate query and key circuit weights
    (a shared unitary would cancel in the overlap, ``<U S(k)|U S(q)> = <S(k)|S(q)>``), and a learned
    temperature that keeps softmax informative when scores concentrate. Circuit weights start near
    zero, so each head begins as the encoder's own kernel and drifts from there (a small-angle start
    also avoids the flat landscapes of random deep circuits, Grant et al., arXiv:1903.05076).
    """

    quantum = True

    def __init__(
        self,
        num_heads: int,
        head_dim: int,
        *,
        n_qubits: int = 4,
        encoder: str | CircuitFamily = "angle_ry",
        circuit: str | CircuitFamily = "hardware_efficient",
        reuploads: int = 1,
        executor: str | Executor = "pennylane",
        init_std: float = 0.1,
    ) -> None:
        super().__init__()
        positive_int("n_qubits", n_qubits)
        positive_int("reuploads", reuploads)
        self.executor = resolve_executor(executor)
        self.executor.check_qubits(n_qubits)
        self.feature_map = FeatureMap(resolve_circuit(encoder), resolve_circuit(circuit), n_qubits, reuploads)
        self.feature_dim = self.feature_map.input_size
        weight_shape = (num_heads, *self.feature_map.weight_shape)
        self.input_scale = nn.Parameter(torch.ones(num_heads, self.feature_dim))
        self.query_weights = nn.Parameter(init_std * torch.randn(weight_shape))
        self.key_weights = nn.Parameter(init_std * torch.randn(weight_shape))
        self.log_temperature = nn.Parameter(torch.full((num_heads,), math.log(self.initial_temperature())))

    def initial_temperature(self) -> float:
        return 1.0

    def circuit_parameters(self) -> list[nn.Parameter]:
        """The parameters that live inside circuits (the rest of the kernel is classical)."""
        return [self.query_weights, self.key_weights]

    def circuit_inputs(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Encoding angles (features scaled per head and feature) and circuit weights of queries and
        keys, ``x_q, w_q, x_k, w_k``, in the precision the circuits run in (:func:`circuit_dtype`).
        The casts are differentiable: half-precision parameters get their gradients."""
        dtype = circuit_dtype(q.dtype)
        scale = self.input_scale.to(dtype)[:, None, :]
        w_q, w_k = self.query_weights.to(dtype), self.key_weights.to(dtype)
        return q.to(dtype) * scale, w_q, k.to(dtype) * scale, w_k

    def extra_repr(self) -> str:
        return f"feature_map={self.feature_map}, executor={self.executor}"


class FidelityKernel(QuantumKernel):
    """``tau_h |<phi(k; W_K)|phi(q; W_Q)>|^2``: a learned unitary metric ``<S(k)|U_K^† U_Q|S(q)>``.

    Fidelities of ``n``-qubit states sit in [0, 1] and concentrate near ``2^-n``; ``tau`` starts at
    ``2^(n/2)`` so the softmax sees contrast from the first step.
    """

    def initial_temperature(self) -> float:
        return 2 ** (self.feature_map.n_qubits / 2)

    def forward(self, q, k, needed=None):
        x_q, w_q, x_k, w_k = self.circuit_inputs(q, k)
        tau = self.log_temperature.to(x_q.dtype).exp()  # folded in by the executor, cheaper than on (N, S)
        fid = self.executor.fidelities(self.feature_map, x_q, w_q, x_k, w_k, scale=tau, needed=needed)
        return fid.to(q.dtype)  # (B, H, N, S)


class GaussianKernel(QuantumKernel):
    """QSANN-style scores ``-tau_h ||f_Q(q) - f_K(k)||^2`` with ``f = (<Z_0>, ..., <Z_{n-1}>)``.

    Li et al., Quantum self-attention neural networks for text classification, arXiv:2205.05625.
    On hardware it needs O(N) circuits per head (expectation values per token), not O(N^2).
    """

    def forward(self, q, k, needed=None):
        x_q, w_q, x_k, w_k = self.circuit_inputs(q, k)
        f_q, f_k = self.executor.z_expectation_pair(self.feature_map, x_q, w_q, x_k, w_k, needed=needed)
        dtype = x_q.dtype
        # tau ||a - b||^2 = ||√tau a - √tau b||^2
        root_tau = self.log_temperature.to(dtype).mul(0.5).exp()[:, None, None]
        a, b = root_tau * f_q.to(dtype), root_tau * f_k.to(dtype)
        # -||a - b||^2 = 2 a.b - |a|^2 - |b|^2: one matmul of the features extended by their norms, the
        # only N x S tensor the scores allocate
        ones_a, ones_b = torch.ones_like(a[..., :1]), torch.ones_like(b[..., :1])
        a = torch.cat([2 * a, -a.square().sum(-1, keepdim=True), -ones_a], -1)  # (B, H, N, n + 2)
        b = torch.cat([b, ones_b, b.square().sum(-1, keepdim=True)], -1)  # (B, H, S, n + 2)
        return (a @ b.mT).to(q.dtype)
