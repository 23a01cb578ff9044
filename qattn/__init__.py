"""qattn: quantum-classical hybrid multi-head attention for PyTorch.

    from qattn import QuantumMultiheadAttention, ClassicalMultiheadAttention
    attn = QuantumMultiheadAttention(64, 4, n_qubits=4, kernel="fidelity")
    out, weights = attn(x, x, x)          # same call as torch.nn.MultiheadAttention
"""

from qattn.attention import (
    AttentionShell,
    ClassicalMultiheadAttention,
    QuantumMultiheadAttention,
    parameter_counts,
)
from qattn.circuits import CATALOGUE, CircuitFamily, FeatureMap
from qattn.executors import EXECUTORS, Executor
from qattn.kernels import KERNELS, ScoreKernel

__version__ = "0.1.0"

__all__ = [
    "CATALOGUE",
    "EXECUTORS",
    "KERNELS",
    "AttentionShell",
    "CircuitFamily",
    "ClassicalMultiheadAttention",
    "Executor",
    "FeatureMap",
    "QuantumMultiheadAttention",
    "ScoreKernel",
    "parameter_counts",
]
