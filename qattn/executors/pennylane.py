"""PennyLane executor: exact, differentiable (torch backprop) statevector simulation.

Per forward pass it runs, for each upload ``r`` of the feature map:

1. the ansatz of every head as ``(H, 2^n, 2^n)`` unitaries, PennyLane's gate matrices batched over heads.
   The trainable part is data-independent, so it is built once, not once per token;
2. the encoder on all ``B*H*N`` token states as one broadcast QNode execution (starting from the
   previous upload's states via ``StatePrep``), or, for a product encoder on ``|0>`` (angle
   encodings), the exact Kronecker product of its single-qubit states;
3. one batched matmul applying each head's unitary to its tokens; or, for fidelities with one
   upload, the query and key unitaries folded into one metric ``U_K^† U_Q`` (see ``fidelities``).

No Python loop over tokens, no circuit per pair.
"""

from __future__ import annotations

import functools
from functools import cache
from typing import ClassVar

import pennylane as qml
import torch

from qattn.circuits import CircuitFamily, FeatureMap
from qattn.circuits import Gate
from qattn.circuits.to_pennylane import apply_pennylane, pennylane_matrix

from .base import SquaredModulus, StatevectorExecutor, complex_dtype, squared_magnitude


def batch_last(t: torch.Tensor) -> torch.Tensor:
    """Move a leading batch axis to the end, so families index ``t[i]`` and get a batch of angles."""
    return t.movedim(0, -1)


@cache
def encoder_qnode(encoder: CircuitFamily, n_qubits: int, device_name: str) -> qml.QNode:
    """A QNode running ``encoder`` on a batch of inputs, from ``|0>`` or from given states."""
    wires = list(range(n_qubits))

    def circuit(x, state=None):
        if state is not None:
            qml.StatePrep(state, wires=wires, validate_norm=False)
        apply_pennylane(encoder.gates(n_qubits, batch_last(x), None))
        return qml.state()

    device = qml.device(device_name, wires=n_qubits)
    return qml.QNode(circuit, device, interface="torch", diff_method="backprop")


def product_state(qubits: list[tuple[torch.Tensor, torch.Tensor]], dtype: torch.dtype) -> torch.Tensor:
    """Kronecker product of per-wire states ``(amp0, amp1)`` (each ``(T,)``), wire 0 most significant:
    ``(T, 2^n)``. Exact, and far cheaper than simulating the encoder gate by gate."""
    psi = None
    for amp0, amp1 in qubits:
        wire = torch.stack(torch.broadcast_tensors(torch.as_tensor(amp0), torch.as_tensor(amp1)), -1).to(dtype)  # (T, 2)
        psi = wire if psi is None else (psi.unsqueeze(-1) * wire.unsqueeze(-2)).flatten(-2)
    return psi


class PennyLaneExecutor(StatevectorExecutor):
    name: ClassVar[str] = "pennylane"
    # Every (batch, head, token) state is held at once: at 12 qubits that is 64 KiB per token.
    max_qubits: ClassVar[int] = 12

    def __init__(self, *, device: str = "default.qubit") -> None:
        self.device = device

    def __repr__(self) -> str:
        return f"PennyLaneExecutor(device={self.device!r})"

    def ansatz_unitaries(self, fmap: FeatureMap, w: torch.Tensor) -> torch.Tensor:
        """``(R, H, 2^n, 2^n)``: the unitary of every upload's ansatz for every head (any leading batch
        ``H`` of weights), built once per forward pass: the trainable part does not depend on tokens."""
        heads, uploads = w.shape[:2]
        dtype = w.dtype if fmap.real else complex_dtype(w.dtype)
        flat = batch_last(w.reshape(heads * uploads, *w.shape[2:]))  # angles (H*R,) at every index
        u = unitary(fmap.ansatz_gates(flat), fmap.n_qubits, heads * uploads, dtype, w.device)
        return u.view(heads, uploads, *u.shape[-2:]).transpose(0, 1)

    def encoded_states(self, fmap: FeatureMap, x: torch.Tensor, start: torch.Tensor | None = None) -> torch.Tensor:
        """``S(x)`` applied to ``start`` (default ``|0>``) for every row of ``x`` ``(T, F)``: ``(T, 2^n)``.

        A product encoder on ``|0>`` (angle encodings) is the exact Kronecker product of its wires'
        states; anything else is one broadcast QNode execution. Real encoders keep real amplitudes."""
        real = fmap.encoder.real and (start is None or not start.is_complex())
        dtype = x.dtype if real else complex_dtype(x.dtype)
        qubits = fmap.encoder.qubit_states(fmap.n_qubits, x.T) if start is None else None
        if qubits is not None:
            return product_state(qubits, dtype)
        state = encoder_qnode(fmap.encoder, fmap.n_qubits, self.device)(x, start)
        return state.real.to(dtype) if real else state.to(dtype)

    def states(self, fmap: FeatureMap, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        batch, heads, tokens, features = x.shape
        dim = 2**fmap.n_qubits
        flat_x = x.reshape(-1, features)  # (B*H*N, F)
        psi = None
        for u in self.ansatz_unitaries(fmap, w):  # (H, D, D) per upload
            psi = self.encoded_states(fmap, flat_x, psi)
            dtype = promote(psi, u)
            psi = (psi.view(batch, heads, tokens, dim).to(dtype) @ u.to(dtype).mT).reshape(-1, dim)  # U S(x) per head
        return psi.view(batch, heads, tokens, dim)

    def fidelities(self, fmap, x_q, w_q, x_k, w_k, scale=None, needed=None):
        """With one upload, ``<S(k)|U_K^† U_Q|S(q)>``: both heads' unitaries fold into one metric
        ``M = U_K^† U_Q`` per head (and ``sqrt(scale)`` into ``M``), applied to the queries only;
        keys stay bare encodings, and real encodings (``angle_ry``) keep real arithmetic in the
        ``N x S`` overlaps even when ``M`` is complex. With re-uploading the states are prepared in full."""
        if fmap.reuploads > 1:
            return super().fidelities(fmap, x_q, w_q, x_k, w_k, scale)
        u_q, u_k = self.ansatz_unitaries(fmap, torch.cat([w_q, w_k]))[0].chunk(2)  # one call: (H, D, D) each
        metric = u_k.mH @ u_q
        if scale is not None:
            metric = metric * scale.sqrt()[:, None, None]
        encode = lambda x: self.encoded_states(fmap, x.flatten(0, -2)).view(*x.shape[:-1], -1)  # noqa: E731
        return metric_fidelities(encode(x_q), metric, encode(x_k))


def unitary(gates: list[Gate], n_qubits: int, batch: int, dtype: torch.dtype, device: torch.device | None = None) -> torch.Tensor:
    """``(batch, 2^n, 2^n)``: the product of the gates, each PennyLane's matrix (batched over angles)
    applied on its own wires only, a ``2^k x 2^k`` matmul on the running unitary's columns.

    ``qml.matrix`` multiplies full ``2^n x 2^n`` matrices per gate: the same result, several times
    slower forward+backward (``benchmarks/fidelity_profile.py`` times both)."""
    dim = 2**n_qubits
    u = torch.eye(dim, dtype=dtype, device=device).expand(batch, dim, dim).reshape(batch, *[2] * n_qubits, dim)  # (b, wires..., cols)
    for gate in gates:
        k = len(gate.wires)
        wires, front = [1 + q for q in gate.wires], list(range(1, 1 + k))
        rest = u.movedim(wires, front)  # (b, gate wires..., other wires..., cols)
        matrix = pennylane_matrix(gate, dtype).to(u.device).expand(batch, 2**k, 2**k)
        u = (matrix @ rest.reshape(batch, 2**k, -1)).view(rest.shape).movedim(front, wires)
    return u.reshape(batch, dim, dim)


def promote(*tensors: torch.Tensor) -> torch.dtype:
    return functools.reduce(torch.promote_types, (t.dtype for t in tensors))


def metric_fidelities(s_q: torch.Tensor, metric: torch.Tensor, s_k: torch.Tensor) -> torch.Tensor:
    """``|<s_k| M |s_q>|^2`` for every query/key pair: ``(B, H, N, D)``, ``(H, D, D)``, ``(B, H, S, D)``
    -> ``(B, H, N, S)``.

    Real states with a complex metric: the real and imaginary parts of ``<s_k|M|s_q>`` are two real
    matmuls, half the work of one complex matmul."""
    if s_q.is_complex() or s_k.is_complex() or not metric.is_complex():
        dtype = promote(s_q, metric, s_k)
        return squared_magnitude(s_q.to(dtype) @ metric.to(dtype).mT @ s_k.to(dtype).mH)
    dim = s_q.shape[-1]
    m_s_q = s_q @ torch.cat([metric.real, metric.imag], -2).mT  # (B, H, N, 2D): [Re M s_q | Im M s_q]
    re, im = (part @ s_k.mT for part in m_s_q.split(dim, -1))  # (B, H, N, S) each
    return SquaredModulus.apply(re, im)
