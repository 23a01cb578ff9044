"""The circuits every row-by-row executor runs, written once: one slot circuit per kind, and its angle rows.

A kind is what one circuit estimates for one row of gate angles (one slot per angled gate, in gate
order; :func:`qattn.circuits.to_qiskit.slot_circuit`):

- ``states``: the feature map ``phi(x; w)|0>`` (exact simulators read the statevector);
- ``z``: the same circuit measured in the Z basis: ``<Z_q>`` for every wire;
- ``fidelity``: compute-uncompute, ``phi_K(k)^dagger phi_Q(q)|0>`` measured: ``P(0...0) = |<k|q>|^2``.
  A row holds the query's slots, then the key's;
- ``randomized``: the feature map, then a random local rotation per qubit
  (:func:`qattn.executors.randomized.rotation_gates`), measured: bitstrings from which every
  query-key overlap is computed classically. A row holds the token's slots, then the rotation's;
- ``bits``: any slot circuit measured on every qubit (the ``qaoa`` solver's sampling circuits).

Sampled Aer, the staged IBM executor and the hardware programs all build their circuits here; a
backend only adds its measurement (Aer: ``measure_all``; IBM: Estimator observables or the Sampler's
``measure_all``) and transpilation.
"""

from __future__ import annotations

import numpy as np
import torch
from qiskit import QuantumCircuit

from qattn.circuits import FeatureMap, Gate
from qattn.circuits.to_qiskit import slot_circuit

from .randomized import rotation_gates

KINDS = ("states", "z", "fidelity", "randomized", "bits")
MEASURED = ("z", "fidelity", "randomized", "bits")  # kinds whose circuits end in a Z-basis measurement


def feature_map_gates(fmap: FeatureMap) -> list[Gate]:
    """The feature map's gates (angles are placeholders: executors bind slot angles)."""
    return list(fmap.gates(np.zeros(fmap.input_size), np.zeros(fmap.weight_shape)))


def kind_circuit(gates: list[Gate], n_qubits: int, kind: str) -> QuantumCircuit:
    """The unmeasured logical circuit of ``kind`` for a slot circuit's ``gates``. Parameters: vector
    ``a`` (the row's first part) and, for ``fidelity``, ``b`` (the key's slots, uncomputed)."""
    if kind not in KINDS:
        raise ValueError(f"unknown circuit kind {kind!r}; valid: {', '.join(KINDS)}")
    if kind == "randomized":
        gates = [*gates, *rotation_gates(n_qubits)]
    circuit, _ = slot_circuit(gates, n_qubits, "a")
    if kind == "fidelity":  # compute-uncompute: phi_K(k)^dagger phi_Q(q) |0>
        circuit = circuit.compose(slot_circuit(gates, n_qubits, "b")[0].inverse())
    return circuit


def fmap_circuit(fmap: FeatureMap, kind: str) -> QuantumCircuit:
    return kind_circuit(feature_map_gates(fmap), fmap.n_qubits, kind)


def readout(kind: str, bits: np.ndarray) -> np.ndarray:
    """What a measured circuit estimates from its ``(M, shots, n)`` bitstrings (wire order):
    ``fidelity`` ``(M, 1)`` frequencies of all-zeros, ``z`` ``(M, n)`` means of ``1 - 2 bit``, else the bits."""
    if kind == "fidelity":
        return (~bits.any(-1)).mean(-1, keepdims=True)
    if kind == "z":
        return (1.0 - 2.0 * bits).mean(-2)
    return bits


def slot_angles(fmap: FeatureMap, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``(B, H, N, F)`` features and ``(H, ...)`` weights -> ``(B, H, N, slots)`` gate angles, in torch
    (so features and weights keep their gradients)."""
    batch, heads, tokens, features = x.shape
    per_head = []
    for h in range(heads):
        flat = x[:, h].reshape(-1, features).transpose(0, 1)  # (F, B*N): families index x[i]
        angles = [g.angle for g in fmap.gates(flat, w[h]) if g.angle is not None]
        stacked = torch.stack([torch.as_tensor(a, dtype=x.dtype, device=x.device).expand(batch * tokens) for a in angles], -1)
        per_head.append(stacked.view(batch, tokens, -1))  # (B, N, G)
    return torch.stack(per_head, 1)  # (B, H, N, G)


def parameter_columns(circuit: QuantumCircuit) -> list[int]:
    """Columns of our (slot-ordered, ``a`` slots before ``b`` slots) angle rows, in the order Qiskit
    lists ``circuit.parameters`` (transpiled or not)."""
    vectors = {p.vector.name: p.vector for p in circuit.parameters}
    names = sorted(vectors)
    sizes = {name: len(vectors[name]) for name in names}  # whole vectors: a slot the transpiler dropped still counts
    offset = {name: sum(sizes[m] for m in names[:i]) for i, name in enumerate(names)}
    return [offset[p.vector.name] + p.index for p in circuit.parameters]

