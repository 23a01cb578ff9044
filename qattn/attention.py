"""The attention shell shared by classical, circuit and annealing multi-head attention.

One module owns projections, heads, masks and the output projection; its kernel does what differs per
head (:mod:`qattn.kernels`): a softmax of dot-product or circuit scores over the values, or QAMA's
annealed token selection (:mod:`qattn.annealing`). Its call is ``torch.nn.MultiheadAttention``'s, so
every layer drops into a model written for the torch one:

    out, weights = attn(query, key, value, key_padding_mask=None, need_weights=True,
                        attn_mask=None, average_attn_weights=True, is_causal=False)

``tests/test_torch_mha.py`` ports the cases of torch's own ``MultiheadAttention`` tests that apply.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from qattn.annealing import QAMA_COEFFICIENTS, AnnealingKernel
from qattn.checks import check_heads, positive_int, probability
from qattn.circuits import CircuitFamily
from qattn.executors import Executor
from qattn.kernels import KERNELS, AttentionKernel, QuantumKernel, quantum_kernels
from qattn.solvers import QuboSolver


def additive_mask(mask: torch.Tensor, name: str, dtype: torch.dtype) -> torch.Tensor:
    """A bool mask (True = not allowed) or a float mask (added to scores) -> a float mask to add."""
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))
    if not torch.is_floating_point(mask):
        raise TypeError(f"{name} must be a bool or floating-point tensor, got {mask.dtype}")
    return mask.to(dtype)


def project(linear: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``linear(x)``; a bias in another dtype than ``x`` is cast to ``x``'s, as torch's attention does
    (a float16 bias with a float64 query gives a float64 result, the bias's values promoted)."""
    if linear.bias is not None and linear.bias.dtype != x.dtype:
        return F.linear(x, linear.weight, linear.bias.to(x.dtype))
    return linear(x)


class AttentionShell(nn.Module):
    """Multi-head attention around a score kernel. Prefer the two public subclasses."""

    # What torch's Transformer modules probe before choosing their fused fast path: this shell keeps
    # separate q/k/v projections and no packed in_proj, so they call forward() instead.
    _qkv_same_embed_dim = False
    in_proj_weight = None
    in_proj_bias = None

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        kernel: AttentionKernel,
        *,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = True,
    ) -> None:
        super().__init__()
        check_heads(embed_dim, num_heads)
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.kdim = positive_int("kdim", kdim) if kdim is not None else embed_dim
        self.vdim = positive_int("vdim", vdim) if vdim is not None else embed_dim
        self.dropout = probability("dropout", dropout)
        self.batch_first = batch_first
        self.kernel = kernel
        feature_dim = kernel.feature_dim
        self.q_proj = nn.Linear(embed_dim, num_heads * feature_dim, bias=bias)
        self.k_proj = nn.Linear(self.kdim, num_heads * feature_dim, bias=bias)
        self.v_proj = nn.Linear(self.vdim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        for proj in (self.q_proj, self.k_proj, self.v_proj):
            nn.init.xavier_uniform_(proj.weight)
        for proj in (self.q_proj, self.k_proj, self.v_proj, self.out_proj):
            if proj.bias is not None:
                nn.init.zeros_(proj.bias)
        # torch's add_bias_kv: a learned key and value appended to every sequence, in projected space
        # (the key in the kernel's per-head feature width), initialised as torch does.
        self.bias_k = self.bias_v = None
        if add_bias_kv:
            self.bias_k = nn.Parameter(nn.init.xavier_normal_(torch.empty(1, 1, num_heads * feature_dim)))
            self.bias_v = nn.Parameter(nn.init.xavier_normal_(torch.empty(1, 1, embed_dim)))
        self.add_zero_attn = bool(add_zero_attn)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = True,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        unbatched = query.dim() == 2
        query, key, value = self._to_batch_first(query, key, value, unbatched)
        batch, tgt_len, _ = query.shape
        src_len = key.shape[1]
        if unbatched and key_padding_mask is not None:
            if key_padding_mask.dim() != 1:
                got = tuple(key_padding_mask.shape)
                raise ValueError(f"key_padding_mask must have shape (S,)=({src_len},) for unbatched input, got {got}")
            key_padding_mask = key_padding_mask.unsqueeze(0)
        heads, features = self.num_heads, self.kernel.feature_dim

        q, k, v = project(self.q_proj, query), project(self.k_proj, key), project(self.v_proj, value)
        mask = self._combined_mask(key_padding_mask, attn_mask, is_causal, batch, tgt_len, src_len, q.dtype)
        k, v, mask = self._append_keys(k, v, mask)
        src_len = k.shape[1]
        # Explicit sizes, never -1: an empty batch or sequence has no size to infer.
        q = q.view(batch, tgt_len, heads, features).transpose(1, 2)  # (B, H, N, F)
        k = k.view(batch, src_len, heads, features).transpose(1, 2)  # (B, H, S, F)
        v = v.view(batch, src_len, heads, self.head_dim).transpose(1, 2)  # (B, H, S, hd)

        dropout = self.dropout if self.training else 0.0
        out, weights = self.kernel.attend(q, k, v, mask, blind_rows_zero=not need_weights, dropout=dropout)
        out = out.transpose(1, 2).reshape(batch, tgt_len, self.embed_dim)  # (B, N, E)
        out = project(self.out_proj, out)
        if unbatched:
            out, weights = out.squeeze(0), weights.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        return out, weights.mean(dim=-3) if average_attn_weights else weights

    def _to_batch_first(self, query, key, value, unbatched):
        if any(t.is_nested for t in (query, key, value)):
            raise ValueError(
                "nested tensors are not supported: pad the sequences to one length and pass key_padding_mask "
                "(True at the padding)"
            )
        expected = 2 if unbatched else 3
        for name, t, dim in (("query", query, self.embed_dim), ("key", key, self.kdim), ("value", value, self.vdim)):
            if t.dim() != expected or t.shape[-1] != dim:
                layout = "(L, E)" if unbatched else ("(B, L, E)" if self.batch_first else "(L, B, E)")
                raise ValueError(
                    f"{name} must be {layout} with last dim {dim} like query's layout, got shape {tuple(t.shape)}"
                )
        if unbatched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
        elif not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        if key.shape[:2] != value.shape[:2]:
            raise ValueError(f"key and value must have the same batch and length, got {tuple(key.shape)} and {tuple(value.shape)}")
        if key.shape[0] != query.shape[0]:
            raise ValueError(f"query and key must have the same batch size, got {query.shape[0]} and {key.shape[0]}")
        return query, key, value

    def _append_keys(self, k, v, mask):
        """torch's ``add_bias_kv`` and ``add_zero_attn``: the learned key/value, then a zero key/value,
        after the ``S`` given ones (projected ``k`` ``(B, S, H*F)``, ``v`` ``(B, S, E)``); the masks gain
        unmasked columns for them, so every query may attend to them."""
        batch = k.shape[0]
        extra_k, extra_v = [], []
        if self.bias_k is not None:
            extra_k.append(self.bias_k.to(k.dtype).expand(batch, 1, -1))
            extra_v.append(self.bias_v.to(v.dtype).expand(batch, 1, -1))
        if self.add_zero_attn:
            extra_k.append(k.new_zeros(batch, 1, k.shape[-1]))
            extra_v.append(v.new_zeros(batch, 1, v.shape[-1]))
        if not extra_k:
            return k, v, mask
        k, v = torch.cat([k, *extra_k], dim=1), torch.cat([v, *extra_v], dim=1)
        return k, v, None if mask is None else F.pad(mask, (0, len(extra_k)))

    def _combined_mask(self, key_padding_mask, attn_mask, is_causal, batch, tgt_len, src_len, dtype):
        """Sum of the additive masks, broadcastable to ``(B, H, N, S)``, or None."""
        mask = None
        if attn_mask is None and is_causal:  # torch requires the mask too; here the hint alone suffices
            attn_mask = torch.ones(tgt_len, src_len, dtype=torch.bool, device=self.q_proj.weight.device).triu(1)
        if attn_mask is not None:
            shapes = {(tgt_len, src_len), (batch * self.num_heads, tgt_len, src_len)}
            if tuple(attn_mask.shape) not in shapes:
                raise ValueError(
                    f"attn_mask must have shape (N, S)=({tgt_len}, {src_len}) or "
                    f"(B*num_heads, N, S)=({batch * self.num_heads}, {tgt_len}, {src_len}), "
                    f"got {tuple(attn_mask.shape)}"
                )
            mask = additive_mask(attn_mask, "attn_mask", dtype)
            if mask.dim() == 3:
                mask = mask.view(batch, self.num_heads, tgt_len, src_len)
        if key_padding_mask is not None:
            if tuple(key_padding_mask.shape) != (batch, src_len):
                raise ValueError(
                    f"key_padding_mask must have shape (B, S)=({batch}, {src_len}), got {tuple(key_padding_mask.shape)}"
                )
            padding = additive_mask(key_padding_mask, "key_padding_mask", dtype)[:, None, None, :]  # (B, 1, 1, S)
            mask = padding if mask is None else mask + padding
        return mask

    def extra_repr(self) -> str:
        text = f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, batch_first={self.batch_first}"
        text += ", add_bias_kv=True" if self.bias_k is not None else ""
        return text + (", add_zero_attn=True" if self.add_zero_attn else "")


class ClassicalMultiheadAttention(AttentionShell):
    """Classical twin: the shell with the ``dot`` kernel; numerically ``torch.nn.MultiheadAttention``.

    ``qk_dim`` narrows the per-head width of queries and keys (values keep ``embed_dim // num_heads``),
    e.g. to a quantum kernel's ``n_qubits`` for a comparison at equal feature width; ``kernel="uniform"``
    gives every unmasked key the same weight (no scores: the ablation)."""

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = True,
        qk_dim: int | None = None,
        kernel: str = "dot",
    ) -> None:
        check_heads(embed_dim, num_heads)
        if kernel not in ("dot", "uniform"):
            raise ValueError(f"classical attention's kernel is 'dot' or 'uniform', got {kernel!r}")
        width = embed_dim // num_heads if qk_dim is None else positive_int("qk_dim", qk_dim)
        kernel = KERNELS.get(kernel)(num_heads, width)
        super().__init__(
            embed_dim,
            num_heads,
            kernel,
            dropout=dropout,
            bias=bias,
            add_bias_kv=add_bias_kv,
            add_zero_attn=add_zero_attn,
            kdim=kdim,
            vdim=vdim,
            batch_first=batch_first,
        )


class QuantumMultiheadAttention(AttentionShell):
    """QAMA-style multi-head attention: each head scores query-key pairs with quantum circuits.

    Queries and keys are projected to ``n_qubits`` features per head (the encoder's input), encoded
    by ``encoder``, transformed by a trainable ``circuit`` (separate weights for queries and keys),
    and scored by ``kernel`` (``fidelity`` or ``gaussian``). Values, softmax and the output
    projection are classical and identical to :class:`ClassicalMultiheadAttention`.

    ``encoder`` and ``circuit`` take a catalogue name (``qattn.circuits.CATALOGUE``) or a
    :class:`~qattn.circuits.CircuitFamily` instance; ``executor`` a name (``qattn.EXECUTORS``) or
    an :class:`~qattn.executors.Executor` instance.

    ``add_bias_kv`` and ``add_zero_attn`` are torch's, in the kernel's feature space: ``bias_k`` is a
    projected key (``n_qubits`` features per head) that goes through the key circuits like any key, and
    the zero key is the all-zero feature vector, with a zero value.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        n_qubits: int = 4,
        kernel: str = "fidelity",
        encoder: str | CircuitFamily = "angle_ry",
        circuit: str | CircuitFamily = "hardware_efficient",
        reuploads: int = 1,
        executor: str | Executor = "pennylane",
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = True,
    ) -> None:
        check_heads(embed_dim, num_heads)
        kernel_cls = KERNELS.get(kernel)
        if not kernel_cls.quantum:
            raise ValueError(
                f"kernel {kernel!r} is classical; QuantumMultiheadAttention takes one of: {', '.join(quantum_kernels())} "
                "(use ClassicalMultiheadAttention for the dot-product baseline)"
            )
        score_kernel = kernel_cls(
            num_heads,
            embed_dim // num_heads,
            n_qubits=n_qubits,
            encoder=encoder,
            circuit=circuit,
            reuploads=reuploads,
            executor=executor,
        )
        super().__init__(
            embed_dim,
            num_heads,
            score_kernel,
            dropout=dropout,
            bias=bias,
            add_bias_kv=add_bias_kv,
            add_zero_attn=add_zero_attn,
            kdim=kdim,
            vdim=vdim,
            batch_first=batch_first,
        )


class AnnealingMultiheadAttention(AttentionShell):
    """QAMA's own formulation: each head selects tokens by solving a QUBO (:mod:`qattn.annealing`).

    ``solver`` is a name from :data:`qattn.solvers.SOLVERS` (``exact``, ``sa``, ``batched``, ``qaoa``)
    or a configured :class:`~qattn.solvers.QuboSolver` instance; ``quadratic``, ``linear`` and ``penalty``
    weigh the QUBO's couplings, linear terms and cross-head penalty (QAMA's defaults). Self-attention only:
    query and key sequences have the same length.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        solver: str | QuboSolver = "sa",
        quadratic: float = QAMA_COEFFICIENTS["quadratic"],
        linear: float = QAMA_COEFFICIENTS["linear"],
        penalty: float = QAMA_COEFFICIENTS["penalty"],
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = True,
    ) -> None:
        check_heads(embed_dim, num_heads)
        if add_bias_kv or add_zero_attn:
            raise ValueError(
                "annealing attention does not support add_bias_kv or add_zero_attn: QAMA gives each token one QUBO "
                "variable, as query and as key, and an extra key has no query to pair with"
            )
        kernel = AnnealingKernel(
            num_heads, embed_dim // num_heads, solver=solver, quadratic=quadratic, linear=linear, penalty=penalty
        )
        super().__init__(
            embed_dim, num_heads, kernel, dropout=dropout, bias=bias, kdim=kdim, vdim=vdim, batch_first=batch_first
        )


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Trainable parameters split into ``quantum`` (circuit weights) and ``classical`` (the rest)."""
    quantum = {id(p) for m in model.modules() if isinstance(m, QuantumKernel) for p in m.circuit_parameters()}
    counts = {"quantum": 0, "classical": 0}
    for p in model.parameters():
        if p.requires_grad:
            counts["quantum" if id(p) in quantum else "classical"] += p.numel()
    return counts
