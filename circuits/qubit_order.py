"""The one place where qubit order is fixed.

qattn uses PennyLane's convention everywhere: wire 0 is the *most* significant bit of a basis-state
index (big-endian), so ``|q0 q1 ... q_{n-1}>`` has index ``q0 * 2^(n-1) + ... + q_{n-1}``.
Qiskit numbers qubits the other way (qubit 0 is the least significant bit). Every matrix, state or
bitstring that comes from Qiskit passes through a function here before qattn looks at it.
"""

from __future__ import annotations

import numpy as np


def qiskit_unitary(circuit) -> np.ndarray:
    """The unitary of a bound Qiskit circuit, in qattn's (big-endian) wire order."""
    from qiskit.quantum_info import Operator

    return Operator(circuit).reverse_qargs().data


def qiskit_statevector(circuit) -> np.ndarray:
    """The output state of a bound Qiskit circuit from ``|0...0>``, in qattn's wire order."""
    from qiskit.quantum_info import Statevector

    return Statevector(circuit).reverse_qargs().data


def z_signs(n_qubits: int) -> np.ndarray:
    """``(2^n, n)`` table of Z eigenvalues: entry ``[b, q]`` is +1 if wire q is 0 in basis state b."""
    index = np.arange(2**n_qubits)[:, None]
    bit = (index >> (n_qubits - 1 - np.arange(n_qubits))[None, :]) & 1
    return 1.0 - 2.0 * bit


def qiskit_states_to_wire_order(states: np.ndarray, n_qubits: int) -> np.ndarray:
    """``(M, 2^n)`` Qiskit statevectors (qubit 0 least significant) -> qattn's wire order."""
    tensor = states.reshape(len(states), *[2] * n_qubits)
    return tensor.transpose(0, *range(n_qubits, 0, -1)).reshape(len(states), -1)


def qiskit_bits_to_wire_order(bits: np.ndarray) -> np.ndarray:
    """``(..., n)`` bits as Qiskit prints a bitstring (qubit n-1 first) -> ``[..., q]`` = wire q's bit."""
    return bits[..., ::-1]


def qiskit_samples_to_wire_order(samples) -> np.ndarray:
    """A Qiskit ``BitArray`` of measurements (``(..., shots)``, as a Sampler returns) -> bool
    ``(..., shots, n)`` with ``[..., q]`` = wire q's bit (classical bit q measures qubit q)."""
    packed = np.asarray(samples.array)  # (..., shots, bytes), big-endian bytes: the last bit is clbit 0
    bits = np.unpackbits(packed, axis=-1, bitorder="big")[..., packed.shape[-1] * 8 - samples.num_bits :]
    return qiskit_bits_to_wire_order(bits.astype(bool))
