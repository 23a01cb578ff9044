"""The circuit catalogue: named, backend-neutral circuit families.

Each entry is an instance of a :class:`CircuitFamily` (with default options) under a name that
``QuantumMultiheadAttention(encoder=..., circuit=...)`` accepts. Pass an instance instead of a name to
change options (``HardwareEfficient(pattern="ring", layers=3)``). To add a family, subclass
:class:`CircuitFamily`, then ``CATALOGUE.add("my_name", MyFamily())``: the attention code does not change.

Importable as ``qattn.circuits`` (this folder is the top-level ``circuits/`` of the repository).
"""

from qattn.registry import Registry

from .ansatze import HardwareEfficient, StronglyEntangling, entangling_pairs
from .base import GATE_SET, CircuitFamily, Gate, check_gates
from .encoders import AngleEncoding, IQPEncoding
from .feature_map import FeatureMap
from .qaoa import QAOA

CATALOGUE: Registry[CircuitFamily] = Registry("circuit")
CATALOGUE.add("angle_rx", AngleEncoding(rotation="RX"))
CATALOGUE.add("angle_ry", AngleEncoding(rotation="RY"))
CATALOGUE.add("iqp", IQPEncoding())
CATALOGUE.add("hardware_efficient", HardwareEfficient())
CATALOGUE.add("strongly_entangling", StronglyEntangling())
# RY layers and CNOT chains only (the shape of Qiskit's RealAmplitudes): real states, real arithmetic.
CATALOGUE.add("real_amplitudes", HardwareEfficient(rotations=("RY",)))


def encoder_names() -> list[str]:
    """Catalogue names that can encode (no trainable weights), as ``FeatureMap`` requires of its encoder."""
    return [name for name in CATALOGUE if CATALOGUE.get(name).weight_shape(2) == ()]


def ansatz_names() -> list[str]:
    """Catalogue names that can be the trainable circuit (read no input features), as ``FeatureMap`` requires."""
    return [name for name in CATALOGUE if CATALOGUE.get(name).input_size(2) == 0]


def resolve_circuit(circuit: str | CircuitFamily) -> CircuitFamily:
    """A catalogue name or a family instance -> the family instance."""
    if isinstance(circuit, CircuitFamily):
        return circuit
    if not isinstance(circuit, str):
        raise TypeError(f"a circuit must be a catalogue name or a CircuitFamily, got {type(circuit).__name__}")
    return CATALOGUE.get(circuit)


__all__ = [
    "CATALOGUE",
    "GATE_SET",
    "QAOA",
    "AngleEncoding",
    "CircuitFamily",
    "FeatureMap",
    "Gate",
    "HardwareEfficient",
    "IQPEncoding",
    "StronglyEntangling",
    "ansatz_names",
    "check_gates",
    "encoder_names",
    "entangling_pairs",
    "resolve_circuit",
]
