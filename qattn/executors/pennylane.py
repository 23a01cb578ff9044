"""PennyLane executor: exact, differentiable (torch backprop) statevector simulation.

Per forward pass it runs, for each upload ``r`` of the feature map:

1. the ansatz of every head as one broadcast ``qml.matrix`` call: ``(H, 2^n, 2^n)`` unitaries.
   The trainable part is data-independent, so it is built once, not once per token;
2. the encoder on all ``B*H*N`` token states as one broadcast QNode execution (starting from the
   previous upload's states via ``StatePrep``), or, for a product encoder on ``|0>`` (angle
   encodings), the exact Kronecker product of its single-qubit states;
3. one batched matmul applying each head's unitary to its tokens.

No Python loop over tokens, no circuit per pair.
"""

from __future__ import annotations

from functools import cache
from typing import ClassVar

import pennylane as qml
import torch

from qattn.circuits import CircuitFamily, FeatureMap
from qattn.circuits.to_pennylane import apply_pennylane

from .base import StatevectorExecutor, complex_dtype


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
        """``(R, H, 2^n, 2^n)``: the unitary of every upload's ansatz for every head, one call."""
        heads, uploads = w.shape[:2]
        flat = w.reshape(heads * uploads, *w.shape[2:])  # (H*R, *ansatz weight shape)
        qfunc = lambda weights: apply_pennylane(fmap.ansatz_gates(batch_last(weights)))  # noqa: E731
        u = qml.matrix(qfunc, wire_order=range(fmap.n_qubits))(flat)
        u = u.reshape(heads, uploads, *u.shape[-2:]).transpose(0, 1)
        return u.real.to(w.dtype) if fmap.real else u.to(complex_dtype(w.dtype))

    def states(self, fmap: FeatureMap, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        batch, heads, tokens, features = x.shape
        dim = 2**fmap.n_qubits
        dtype = x.dtype if fmap.real else complex_dtype(x.dtype)  # real circuits keep real amplitudes
        qnode = encoder_qnode(fmap.encoder, fmap.n_qubits, self.device)
        unitaries = self.ansatz_unitaries(fmap, w)  # (R, H, D, D)
        flat_x = x.reshape(-1, features)  # (B*H*N, F)
        psi = None
        qubits = fmap.encoder.qubit_states(fmap.n_qubits, flat_x.T)  # closed form, or None
        for u in unitaries:
            if psi is None and qubits is not None:
                psi = product_state(qubits, dtype)
            else:
                state = qnode(flat_x, psi)  # (B*H*N, D)
                psi = state.real.to(dtype) if fmap.real else state.to(dtype)
            psi = psi.view(batch, heads, tokens, dim) @ u.transpose(-1, -2)  # (B, H, N, D)
            psi = psi.reshape(-1, dim)
        return psi.view(batch, heads, tokens, dim)
