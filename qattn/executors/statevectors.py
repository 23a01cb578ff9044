"""Feature maps simulated in a handful of torch ops per pass, whatever the qubit count or head count.

The PennyLane executor's exact simulation is built from three pieces, each a few whole-tensor ops
(no loop over heads, tokens or gates; ``benchmarks/attention_speed.py`` counts the ops of a pass):

- :func:`compile_ansatz` traces an ansatz once into rotation layers and fixed layers. The rotation
  matrices of every layer, wire and head come from one ``cos`` and one ``sin`` of all angles; each
  wire's rotations fuse into one 2x2 matrix and a layer is their Kronecker product, one gather and one
  product (:class:`KronProduct`). Fixed layers (CNOT chains, CZ) fold into that gather as a row order
  and a phase per row. Any other ansatz runs gate by gate (:func:`unitary`).
- :func:`product_states`: the ``2^n`` amplitudes of a product encoding (angle encoders) from one
  ``cos``/``sin`` of all angles, one broadcast product per wire, with an analytic backward
  (:class:`ProductStates`).
- :func:`fidelity_scores` / :class:`SquaredOverlaps`: ``sum_c (a_c . k)^2`` for every query/key pair,
  the ``N x S`` part of the fidelity kernel (Re and Im overlaps as stacked rows, the temperature folded
  into the metric). Nothing ``N x S`` is saved for the backward: it recomputes the overlaps by blocks
  of rows, so the layer holds no more ``N x S`` memory than a classical one.

Every piece is exact: ``tests/test_statevectors.py`` holds them to PennyLane's and Qiskit's unitaries, to the
gate-by-gate simulation and to finite differences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F

from qattn.circuits import CircuitFamily, Gate
from qattn.circuits.matrices import gate_matrix

#: ``-i P`` for each rotation ``R_P(t) = exp(-i t P / 2) = cos(t/2) I + sin(t/2) (-i P)``.
GENERATORS = {
    "RX": np.array([[0, -1j], [-1j, 0]]),
    "RY": np.array([[0, -1], [1, 0]], dtype=complex),
    "RZ": np.array([[-1j, 0], [0, 1j]]),
}

# -- ansatz unitaries -----------------------------------------------------------------------------


class _Weight:
    """A weight's flat index, traced through a family's gates. Arithmetic on it fails on purpose: an
    angle that is not one bare weight does not compile, and the caller simulates gate by gate."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


@dataclass(frozen=True, eq=False)
class AnsatzPlan:
    """An ansatz compiled for whole-tensor simulation: ``L`` rotation layers, each followed by the fixed
    gates up to the next one.

    Rotation layer ``l`` rotates wire ``q`` by the weights ``slots[l, q, :]`` in order (index ``size``:
    a padded identity, angle 0) about the axes of ``generators[l, q, :]`` (``-iP`` flattened). The fixed
    gates after it are a *monomial* matrix where they can be (CNOT, CZ, SWAP and their products: one
    entry per row, ``F[i, rows[l, i]] = phases[l, i]``), folded into the layer's Kronecker product as a
    reordering of its rows and a phase per row; otherwise a ``dense`` matrix (Hadamards)."""

    n_qubits: int
    size: int
    slots: np.ndarray  # (L, n, r)
    generators: np.ndarray  # (L, n, r, 4) complex
    rows: np.ndarray  # (L, 2^n) row order after each layer
    phases: np.ndarray | None  # (L, 2^n), None: all 1
    dense: tuple[np.ndarray | None, ...]  # per layer, fixed gates that are not monomial
    prefix: np.ndarray | None  # fixed gates before the first rotation layer

    @property
    def real(self) -> bool:
        """Every generator and fixed gate real (RY layers, CNOT, CZ): the unitaries stay real."""
        constants = [self.generators, self.phases, self.prefix, *self.dense]
        return not any(c is not None and np.iscomplexobj(c) and c.imag.any() for c in constants)

    def unitaries(self, w: torch.Tensor) -> torch.Tensor:
        """``(M, 2^n, 2^n)``: the ansatz unitary for every row of flat weights ``w`` ``(M, size)``."""
        dtype = w.dtype if self.real else torch.promote_types(w.dtype, torch.complex64)
        c = _constants(self, w.device, dtype)
        half = F.pad(w, (0, 1))[:, c["slots"]].unsqueeze(-1) * 0.5  # (M, L, n, r, 1); the padding: angle 0
        mats = torch.addcmul(half.cos() * c["identity"], half.sin(), c["generators"]).unflatten(-1, (2, 2))
        positions = mats.unbind(-3)  # each (M, L, n, 2, 2)
        fused = positions[0]
        for later in positions[1:]:  # a wire's rotations in circuit order, the later one on the left
            fused = (later.unsqueeze(-1) * fused.unsqueeze(-3)).sum(-2)
        dim = 2**self.n_qubits
        layers = KronProduct.apply(fused.flatten(-2), c["digits"]).unflatten(-1, (dim, dim))  # (M, L, D, D): F_l K_l
        if self.phases is not None:
            layers = layers * c["phases"]
        u = None
        for layer, dense in zip(layers.unbind(1), c["dense"]):
            u = layer if u is None else layer @ u
            u = u if dense is None else dense @ u
        return u if self.prefix is None else u @ c["prefix"]


@cache
def _constants(plan: AnsatzPlan, device: torch.device, dtype: torch.dtype) -> dict:
    """A plan's constants as tensors, made once per device and dtype."""
    def tensor(value):
        if value is None:
            return None
        return torch.as_tensor(value if dtype.is_complex else value.real, dtype=dtype, device=device)

    # the Kronecker product's gather order for each layer, rows reordered by the fixed gates after it
    digits = kron_digits(plan.n_qubits).reshape(plan.n_qubits, 2**plan.n_qubits, -1)
    digits = np.stack([digits[:, rows, :].reshape(plan.n_qubits, -1) for rows in plan.rows])  # (L, n, D^2)
    return {
        "slots": torch.as_tensor(plan.slots, device=device),
        "identity": tensor(np.array([1, 0, 0, 1], dtype=complex)),
        "generators": tensor(plan.generators),
        "digits": torch.as_tensor(digits, device=device),
        "phases": None if plan.phases is None else tensor(plan.phases)[..., None],  # (L, D, 1)
        "dense": [tensor(d) for d in plan.dense],
        "prefix": tensor(plan.prefix),
    }


@cache
def compile_ansatz(ansatz: CircuitFamily, n_qubits: int) -> AnsatzPlan | None:
    """Trace ``ansatz`` on ``n_qubits`` into an :class:`AnsatzPlan`; None when some gate is not a
    single-qubit rotation by one bare weight or a fixed gate (the caller then simulates gate by gate)."""
    shape = ansatz.weight_shape(n_qubits)
    size = math.prod(shape)
    traced = np.array([_Weight(i) for i in range(size)], dtype=object).reshape(shape)
    try:
        gates = list(ansatz.gates(n_qubits, None, traced))
    except TypeError:  # an angle computed from weights
        return None
    if any(g.angle is not None and (g.name not in GENERATORS or not isinstance(g.angle, _Weight)) for g in gates):
        return None
    layers: list[list[list[Gate]]] = []  # per rotation layer, per wire, its rotations in order
    fixed: list[list[Gate]] = [[]]  # fixed gates before layer 0, then after each layer
    for gate in gates:
        if gate.angle is None:
            fixed[-1].append(gate)
            continue
        if not layers or fixed[-1]:
            layers.append([[] for _ in range(n_qubits)])
            fixed.append([])
        layers[-1][gate.wires[0]].append(gate)
    if not layers:
        return None
    depth = max(len(wire) for layer in layers for wire in layer)
    slots = np.full((len(layers), n_qubits, depth), size)
    generators = np.zeros((len(layers), n_qubits, depth, 4), dtype=complex)
    for index, layer in enumerate(layers):
        for wire, rotations in enumerate(layer):
            for position, gate in enumerate(rotations):
                slots[index, wire, position] = gate.angle.index
                generators[index, wire, position] = GENERATORS[gate.name].flatten()
    dim = 2**n_qubits
    rows, phases, dense = np.tile(np.arange(dim), (len(layers), 1)), np.ones((len(layers), dim), dtype=complex), []
    for index, after in enumerate(fixed[1:]):
        matrix = unitary(after, n_qubits, 1, torch.complex128)[0].numpy()
        nonzero = np.abs(matrix) > 1e-12
        if (nonzero.sum(1) == 1).all():  # monomial: folded into the layer
            rows[index] = nonzero.argmax(1)
            phases[index] = matrix[np.arange(dim), rows[index]]
            dense.append(None)
        else:
            dense.append(matrix)
    prefix = unitary(fixed[0], n_qubits, 1, torch.complex128)[0].numpy() if fixed[0] else None
    return AnsatzPlan(n_qubits, size, slots, generators, rows, None if np.allclose(phases, 1) else phases, tuple(dense), prefix)


def unitary(gates: list[Gate], n_qubits: int, batch: int, dtype: torch.dtype, device: torch.device | None = None) -> torch.Tensor:
    """``(batch, 2^n, 2^n)``: the product of the gates, gate by gate: each gate's matrix (batched
    over angles on a trailing axis) applied on its own wires only, a ``2^k x 2^k`` matmul on the
    running unitary's columns. Any gate of the catalogue; the fallback when an ansatz does not compile,
    and what builds the fixed layers of those that do."""
    dim = 2**n_qubits
    u = torch.eye(dim, dtype=dtype, device=device).expand(batch, dim, dim).reshape(batch, *[2] * n_qubits, dim)  # (b, wires..., cols)
    for gate in gates:
        k = len(gate.wires)
        wires, front = [1 + q for q in gate.wires], list(range(1, 1 + k))
        rest = u.movedim(wires, front)  # (b, gate wires..., other wires..., cols)
        matrix = gate_matrix(gate, dtype).to(u.device).expand(batch, 2**k, 2**k)
        u = (matrix @ rest.reshape(batch, 2**k, -1)).view(rest.shape).movedim(front, wires)
    return u.reshape(batch, dim, dim)


@cache
def kron_digits(n_factors: int) -> np.ndarray:
    """For the Kronecker product of ``n`` 2x2 factors, each flattened to 4 entries, as
    :class:`KronProduct` takes it: ``(n, 4^n)``, which entry ``2 i_q + j_q`` of factor ``q`` every entry
    ``(i, j)`` of the product takes, row by row. Factor 0 is the most significant, as wire 0 is."""
    bits = (np.arange(2**n_factors)[None, :] >> (n_factors - 1 - np.arange(n_factors))[:, None]) & 1  # (n, 2^n)
    return (2 * bits[:, :, None] + bits[:, None, :]).reshape(n_factors, -1)


class KronProduct(torch.autograd.Function):
    """Entry ``e`` of the product is ``prod_q factors[..., q, digits[..., q, e]]``: one gather and one
    product over factors forward (``digits`` broadcasts against the factors' leading axes). The backward
    gives each factor the product of the others (exclusive cumulative products from both ends, exact
    where an entry is zero, as a rotation's often are), summed into the factor's components by one
    ``scatter_add``. Only ``factors`` is saved."""

    @staticmethod
    def forward(ctx, factors: torch.Tensor, digits: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(factors, digits)
        return factors.gather(-1, digits.expand(*factors.shape[:-1], -1)).prod(-2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        factors, digits = ctx.saved_tensors
        index = digits.expand(*factors.shape[:-1], -1)
        entries = factors.conj().gather(-1, index)  # (..., n, E); complex gradients pair with conjugates
        ones = torch.ones_like(entries[..., :1, :])
        before = torch.cat([ones, entries[..., :-1, :]], -2).cumprod(-2)  # prod over factors p < q
        after = torch.cat([entries[..., 1:, :], ones], -2).flip(-2).cumprod(-2).flip(-2)  # p > q
        others = before.mul_(after).mul_(grad.unsqueeze(-2))
        return torch.zeros_like(factors).scatter_add_(-1, index, others), None


# -- encodings ------------------------------------------------------------------------------------


def product_states(encoder: CircuitFamily, n_qubits: int, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor | None:
    """``S(x)|0>`` for every row of ``x`` ``(..., F)``: ``(..., 2^n)``, when ``encoder`` is a product
    encoder (its wires' states from one ``cos``/``sin`` of the whole tensor); otherwise None."""
    wires = encoder.qubit_states(n_qubits, x)
    if wires is None:
        return None
    return ProductStates.apply(torch.stack([amp.to(dtype) for amp in wires], -1))  # (..., n, 2) -> (..., 2^n)


class ProductStates(torch.autograd.Function):
    """The Kronecker product over wires of single-qubit states ``a`` ``(..., n, 2)`` -> ``(..., 2^n)``
    (wire 0 most significant): one broadcast product per wire. The backward contracts the incoming
    gradient with one wire after another, while products of the wires after each give its cofactor:
    nothing but ``a`` is saved, and no reduction runs over a strided axis (autograd's would, once per
    wire). :class:`KronProduct`'s gather would hold ``n`` times the states for every token."""

    @staticmethod
    def forward(ctx, a: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(a)
        lead = a.shape[:-2]
        wires = a.unbind(-2)
        psi = wires[0]
        for wire in wires[1:]:  # views, not unsqueeze/flatten: the same arithmetic in fewer ops
            psi = (psi.view(*lead, -1, 1) * wire.view(*lead, 1, 2)).view(*lead, -1)
        return psi

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (a,) = ctx.saved_tensors
        lead = a.shape[:-2]
        wires = a.conj().unbind(-2)  # (..., 2) each; complex gradients pair with conjugates
        suffixes = [None, wires[-1]]  # kron(a_{q+1}, ..., a_{n-1}), from the last wire on
        for wire in reversed(wires[1:-1]):
            suffixes.append((wire.view(*lead, 2, 1) * suffixes[-1].view(*lead, 1, -1)).view(*lead, -1))
        rest, grads = grad, []  # rest: grad contracted with wires 0..q-1, (..., 2^(n-q))
        for wire, suffix in zip(wires, reversed(suffixes[: len(wires)])):
            if suffix is None:  # the last wire: nothing after it
                grads.append(rest)
                break
            halves = rest.view(*lead, 2, -1)  # wire q's bit, then the wires after it
            grads.append((halves * suffix.view(*lead, 1, -1)).sum(-1))
            rest = (halves * wire.view(*lead, 2, 1)).sum(-2)
        return torch.stack(grads, -2)


# -- the N x S part -------------------------------------------------------------------------------


def fidelity_scores(s_q: torch.Tensor, s_k: torch.Tensor, metric: torch.Tensor | None = None,
                    scale: torch.Tensor | None = None) -> torch.Tensor:
    """``scale_h |<s_k| M_h |s_q>|^2`` for every query/key pair: states ``(B, H, N, D)`` and
    ``(B, H, S, D)``, ``metric`` ``(H, D, D)`` (None: identity), ``scale`` ``(H,)`` (None: 1) ->
    ``(B, H, N, S)``.

    ``sqrt(scale)`` is folded into the metric (or the queries), never applied to the ``N x S`` scores.
    Real states with a complex metric keep real arithmetic: Re and Im of ``M s_q`` are two blocks of
    rows against the same real keys. Complex states give ``[re, im]`` and ``[im, -re]`` blocks against
    interleaved keys."""
    root = None if scale is None else scale.sqrt()[:, None, None]
    if metric is not None and root is not None:
        metric, root = metric * root, None  # folded into the metric: the queries need no scaling
    if not (s_q.is_complex() or s_k.is_complex()):
        if metric is not None and metric.is_complex():  # (B, H, N, D) @ (H, D, 2D) -> (B, H, N, 2, D)
            a = (s_q @ torch.cat([metric.real, metric.imag], -2).to(s_q.dtype).mT).unflatten(-1, (2, -1))
        else:
            a = (s_q if metric is None else s_q @ metric.mT.to(s_q.dtype)).unsqueeze(-2)
        return SquaredOverlaps.apply(a if root is None else a * root[..., None].to(a.dtype), s_k)
    dtype = torch.promote_types(torch.promote_types(s_q.dtype, s_k.dtype), torch.complex64)
    a = s_q.to(dtype) if metric is None else s_q.to(dtype) @ metric.mT.to(dtype)
    a = a if root is None else a * root.to(a.real.dtype)
    rows = torch.stack([torch.view_as_real(a).flatten(-2), torch.view_as_real(a * -1j).flatten(-2)], -2)  # (..., N, 2, 2D)
    return SquaredOverlaps.apply(rows, torch.view_as_real(s_k.to(dtype)).flatten(-2))


class SquaredOverlaps(torch.autograd.Function):
    """``f[..., i, j] = sum_c (a[..., i, c, :] . k[..., j, :])^2`` for real ``a`` ``(..., N, C, D)`` and
    ``k`` ``(..., S, D)``: the fidelity ``Re^2 + Im^2`` with Re and Im as ``C = 2`` rows per query.

    Nothing ``N x S`` is saved. The forward writes the first part's overlaps straight into the scores
    and squares them in place; the other parts, and in the backward every part's overlaps
    ``o_c = a_c k^T`` (``df/da_c = 2 (g * o_c) k``), are recomputed a block of query rows at a time in
    one workspace of at most a quarter of the scores (:func:`row_blocks`). So the layer allocates no
    more ``N x S`` memory than a classical dot-product layer, which on CPUs is time as well as memory:
    every fresh ``N x S`` buffer is page-faulted in (``benchmarks/fidelity_profile.py`` times a square
    into a fresh buffer against one in place)."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(a, k)
        a3, k3 = a.reshape(-1, *a.shape[-3:]), k.reshape(-1, *k.shape[-2:])  # one batch axis: bmm, no matmul plumbing
        f = torch.bmm(a3[:, :, 0], k3.mT).square_()
        workspace = None
        for rows in row_blocks(f) if a.shape[-2] > 1 else ():
            for c in range(1, a.shape[-2]):
                workspace = torch.bmm(a3[:, rows, c], k3.mT, out=workspace_for(workspace, rows))
                f[:, rows].addcmul_(workspace, workspace)
        return f.view(*a.shape[:-2], k.shape[-2])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        a, k = ctx.saved_tensors
        a3, k3, g3 = a.reshape(-1, *a.shape[-3:]), k.reshape(-1, *k.shape[-2:]), grad.reshape(-1, *grad.shape[-2:])
        grad_a, grad_k, workspace = torch.empty_like(a3), torch.zeros_like(k3), None
        for rows in row_blocks(g3):
            for c in range(a.shape[-2]):
                a_c = a3[:, rows, c]
                workspace = torch.bmm(a_c, k3.mT, out=workspace_for(workspace, rows)).mul_(g3[:, rows])
                grad_a[:, rows, c] = torch.bmm(workspace, k3)
                torch.baddbmm(grad_k, workspace.mT, a_c, out=grad_k)  # out=, not baddbmm_: FlopCounterMode counts it
        return grad_a.mul_(2).view_as(a), grad_k.mul_(2).view_as(k)


#: The workspace for recomputed overlaps (the backward's, and the forward's after the first part): a quarter of the
#: ``N x S`` scores, or this many bytes where a quarter is smaller (small buffers come from the heap,
#: without page faults; big ones are mapped afresh, so fewer, larger blocks cost less there).
WORKSPACE_BYTES = 16 * 2**20


def row_blocks(scores: torch.Tensor) -> list[slice]:
    """Blocks of query rows of ``scores`` ``(..., N, S)`` for the recomputed overlaps: at most 4, each
    small enough for a workspace of :data:`WORKSPACE_BYTES` where that takes fewer than 4."""
    rows = scores.shape[-2]
    blocks = min(4, max(1, math.ceil(scores.numel() * scores.element_size() / WORKSPACE_BYTES)), max(rows, 1))
    size = math.ceil(rows / blocks)
    return [slice(start, min(start + size, rows)) for start in range(0, rows, size)]


def workspace_for(workspace: torch.Tensor | None, rows: slice) -> torch.Tensor | None:
    """The workspace for a block of ``rows``, to pass as a matmul's ``out``."""
    if workspace is None or workspace.shape[-2] != rows.stop - rows.start:
        return None  # the first block, or a shorter last one: the matmul allocates
    return workspace
