"""The backend-neutral circuit description every catalogue family is written in.

A circuit family is a pure description: given a qubit count, input features ``x`` and trainable
weights ``w`` it yields :class:`Gate` records. It never imports a quantum SDK. The same description
is compiled to PennyLane operations and to a Qiskit ``QuantumCircuit`` by the per-backend gate
tables in :mod:`qattn.circuits.to_pennylane` and :mod:`qattn.circuits.to_qiskit`.

Indexing convention: a family reads features as ``x[i]`` and weights as ``w[l, q, ...]`` with plain
integer indices. Backends pass whatever supports that: torch tensors whose *trailing* axes are a
batch (so an angle may be a whole batch of angles, executed by broadcasting), or arrays of Qiskit
``Parameter`` objects. Angles are built with ``*`` and ``+`` only, so symbolic parameters work too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

#: Gate names a family may emit, with (number of wires, takes an angle).
GATE_SET: dict[str, tuple[int, bool]] = {
    "H": (1, False),
    "RX": (1, True),
    "RY": (1, True),
    "RZ": (1, True),
    "CNOT": (2, False),
    "CZ": (2, False),
    "RZZ": (2, True),  # exp(-i angle/2 Z⊗Z): PennyLane IsingZZ, Qiskit RZZGate
}


@dataclass(frozen=True)
class Gate:
    """One gate: a name from :data:`GATE_SET`, the wires it acts on, and its angle (if any)."""

    name: str
    wires: tuple[int, ...]
    angle: Any = None


class CircuitFamily(ABC):
    """A named, documented family of circuits on ``n_qubits`` qubits.

    Subclasses set :attr:`paper` (where the family comes from) and implement :meth:`gates`.
    Encoders read ``input_size(n)`` features; ansätze read weights of ``weight_shape(n)``.
    Instances should be frozen dataclasses, so their options are part of their identity.
    """

    paper: ClassVar[str]

    @property
    def real(self) -> bool:
        """True when every gate has a real matrix (RY, H, CNOT, CZ): states then keep real amplitudes,
        and simulators may work in real arithmetic. Families say so themselves; the default is False."""
        return False

    def input_size(self, n_qubits: int) -> int:
        """How many input features the circuit reads (0 for a data-independent ansatz)."""
        return 0

    def weight_shape(self, n_qubits: int) -> tuple[int, ...]:
        """Shape of the trainable weights (``()`` for a fixed encoder)."""
        return ()

    @abstractmethod
    def gates(self, n_qubits: int, x: Any, w: Any) -> Iterator[Gate]:
        """Yield the circuit's gates, reading features as ``x[i]`` and weights as ``w[...]``."""

    def qubit_states(self, n_qubits: int, x: Any) -> tuple[Any, Any] | None:
        """For a product encoder: the single-qubit state ``(amp0, amp1)`` every wire ends in from ``|0>``
        (then the whole state is their Kronecker product and needs no simulation); otherwise None.

        Unlike :meth:`gates`, ``x`` is a whole tensor with the features on its *last* axis (any leading
        batch), and so are ``amp0`` and ``amp1``: wire q's amplitudes at ``[..., q]``, computed for
        every wire and token by a few elementwise ops."""
        return None


def check_gates(gates: list[Gate], n_qubits: int) -> list[Gate]:
    """Validate gate names and wires, so a user-written family fails early and by name."""
    for gate in gates:
        if gate.name not in GATE_SET:
            raise ValueError(f"unknown gate {gate.name!r}; valid gates: {', '.join(GATE_SET)}")
        arity, has_angle = GATE_SET[gate.name]
        wires = gate.wires
        if len(set(wires)) != arity or len(wires) != arity or not all(0 <= q < n_qubits for q in wires):
            raise ValueError(
                f"gate {gate.name} needs {arity} distinct wires in 0..{n_qubits - 1}, got {gate.wires}"
            )
        if has_angle == (gate.angle is None):
            raise ValueError(f"gate {gate.name} {'needs' if has_angle else 'takes no'} angle")
    return gates
