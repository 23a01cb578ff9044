"""PennyLane executor: exact, differentiable (torch backprop) statevector simulation.

Per forward pass it runs, for each upload ``r`` of the feature map:

1. the ansatz of every head as ``(H, 2^n, 2^n)`` unitaries: compiled once into a few whole-tensor ops
   (:func:`~qattn.executors.statevectors.compile_ansatz`), or gate by gate with the catalogue's gate matrices
   batched over heads. The trainable part is data-independent, so it is built once, not once per token;
2. the encoder on all ``B*H*N`` token states: for a product encoder on ``|0>`` (angle encodings) the
   exact Kronecker product of its single-qubit states (:func:`~qattn.executors.statevectors.product_states`),
   otherwise one broadcast QNode execution (starting from the previous upload's states via ``StatePrep``);
3. one batched matmul applying each head's unitary to its tokens; or, with one upload, the query and
   key unitaries folded into one metric ``U_K^† U_Q`` for the fidelities
   (:func:`~qattn.executors.statevectors.fidelity_scores`), and Z features without complex states.

No Python loop over tokens, heads or gates, no circuit per pair.
"""

from __future__ import annotations

import functools
from functools import cache
from typing import ClassVar

import pennylane as qml
import torch

from qattn.circuits import CircuitFamily, FeatureMap
from qattn.circuits.to_pennylane import apply_pennylane

from .base import StatevectorExecutor, complex_dtype, z_sign_tensor
from .statevectors import compile_ansatz, fidelity_scores, product_states, unitary


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
        ``H`` of weights), built once per forward pass: the trainable part does not depend on tokens.
        A compiled ansatz (:func:`~qattn.executors.statevectors.compile_ansatz`) takes a few ops in all;
        another is simulated gate by gate."""
        heads, uploads = w.shape[:2]
        dim = 2**fmap.n_qubits
        plan = compile_ansatz(fmap.ansatz, fmap.n_qubits)
        if plan is not None:
            u = plan.unitaries(w.reshape(heads * uploads, -1))
        else:
            dtype = w.dtype if fmap.real else complex_dtype(w.dtype)
            flat = batch_last(w.reshape(heads * uploads, *w.shape[2:]))  # angles (H*R,) at every index
            u = unitary(fmap.ansatz_gates(flat), fmap.n_qubits, heads * uploads, dtype, w.device)
        return u.view(heads, uploads, dim, dim).transpose(0, 1)

    def encoded_states(self, fmap: FeatureMap, x: torch.Tensor, start: torch.Tensor | None = None) -> torch.Tensor:
        """``S(x)`` applied to ``start`` (default ``|0>``) for every row of ``x`` ``(..., F)``: ``(..., 2^n)``.

        A product encoder on ``|0>`` (angle encodings) is the exact Kronecker product of its wires'
        states (:func:`~qattn.executors.statevectors.product_states`); anything else is one broadcast QNode
        execution. Real encoders keep real amplitudes."""
        real = fmap.encoder.real and (start is None or not start.is_complex())
        dtype = x.dtype if real else complex_dtype(x.dtype)
        if start is None and (psi := product_states(fmap.encoder, fmap.n_qubits, x, dtype)) is not None:
            return psi
        flat_start = None if start is None else start.flatten(0, -2)
        state = encoder_qnode(fmap.encoder, fmap.n_qubits, self.device)(x.flatten(0, -2), flat_start)
        state = state.real.to(dtype) if real else state.to(dtype)
        return state.view(*x.shape[:-1], -1)

    def states(self, fmap: FeatureMap, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        psi = None
        for u in self.ansatz_unitaries(fmap, w):  # (H, D, D) per upload
            psi = self.encoded_states(fmap, x, psi)  # (B, H, N, D)
            dtype = promote(psi, u)
            psi = psi.to(dtype) @ u.to(dtype).mT  # U S(x) per head
        return psi

    def one_upload(self, fmap, x_q, w_q, x_k, w_k):
        """With one upload: the query and key heads' unitaries ``(H, D, D)`` from one build, and the
        bare encodings of queries and keys from one encoding of both. The unitaries are a few small
        matrices: they are built in float64 whatever the inputs' precision (free, and float32 rounding
        then enters only where the tokens do), and cast where they meet the states."""
        w = torch.cat([w_q, w_k])
        if w.dtype == torch.float32 and w.device.type != "mps":  # MPS has no float64
            w = w.double()
        u_q, u_k = self.ansatz_unitaries(fmap, w)[0].chunk(2)
        s_q, s_k = self.encoded_states(fmap, torch.cat([x_q, x_k], -2)).split([x_q.shape[-2], x_k.shape[-2]], -2)
        return u_q, u_k, s_q, s_k

    def z_expectation_pair(self, fmap, x_q, w_q, x_k, w_k, needed=None):
        if fmap.reuploads > 1:
            return super().z_expectation_pair(fmap, x_q, w_q, x_k, w_k, needed)
        u_q, u_k, s_q, s_k = self.one_upload(fmap, x_q, w_q, x_k, w_k)
        return z_features(fmap, s_q, u_q), z_features(fmap, s_k, u_k)

    def fidelities(self, fmap, x_q, w_q, x_k, w_k, scale=None, needed=None):
        """With one upload, ``<S(k)|U_K^† U_Q|S(q)>``: both heads' unitaries fold into one metric
        ``M = U_K^† U_Q`` per head (and ``sqrt(scale)`` into ``M``), applied to the queries only;
        keys stay bare encodings, and real encodings (``angle_ry``) keep real arithmetic in the
        ``N x S`` overlaps even when ``M`` is complex. With re-uploading the states are prepared in full."""
        if fmap.reuploads > 1:
            return super().fidelities(fmap, x_q, w_q, x_k, w_k, scale)
        u_q, u_k, s_q, s_k = self.one_upload(fmap, x_q, w_q, x_k, w_k)
        return fidelity_scores(s_q, s_k, u_k.mH @ u_q, scale)


def promote(*tensors: torch.Tensor) -> torch.dtype:
    return functools.reduce(torch.promote_types, (t.dtype for t in tensors))


def z_features(fmap: FeatureMap, s: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``<Z_q>`` of ``U_h s`` for states ``s`` ``(B, H, T, D)`` and unitaries ``u`` ``(H, D, D)``:
    ``(B, H, T, n)``. Real states with a complex unitary keep real arithmetic: the Re and Im rows of
    ``U`` in one matmul, their squares against the Z signs twice over."""
    if s.is_complex() or not u.is_complex():
        dtype = s.dtype if not u.is_complex() else complex_dtype(s.real.dtype)
        return StatevectorExecutor.z_from_states(fmap, s.to(dtype) @ u.to(dtype).mT)
    parts = s @ torch.cat([u.real, u.imag], -2).to(s.dtype).mT  # (B, H, T, 2D): [Re U s | Im U s]
    return parts.square() @ z_sign_tensor(fmap.n_qubits, s.dtype, s.device, copies=2)
