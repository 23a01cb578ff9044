"""qattn: quantum-classical hybrid multi-head attention for PyTorch.

    from qattn import QuantumMultiheadAttention, ClassicalMultiheadAttention
    attn = QuantumMultiheadAttention(64, 4, n_qubits=4, kernel="fidelity")
    out, weights = attn(x, x, x)          # same call as torch.nn.MultiheadAttention

The names below are imported on first use, so ``import qattn.config`` (and the command line's help
and config errors) does not pay for importing torch, PennyLane and Qiskit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qattn.registry import lazy_exports

if TYPE_CHECKING:
    from qattn.attention import AnnealingMultiheadAttention, AttentionShell, ClassicalMultiheadAttention, QuantumMultiheadAttention, parameter_counts
    from qattn.circuits import CATALOGUE, CircuitFamily, FeatureMap
    from qattn.executors import EXECUTORS, Executor
    from qattn.solvers import SOLVERS, QuboSolver
    from qattn.kernels import KERNELS, ScoreKernel
    from qattn.kinds import KINDS

__version__ = "0.1.0"

_HOMES = {
    "AnnealingMultiheadAttention": "qattn.attention",
    "AttentionShell": "qattn.attention",
    "ClassicalMultiheadAttention": "qattn.attention",
    "QuantumMultiheadAttention": "qattn.attention",
    "parameter_counts": "qattn.attention",
    "CATALOGUE": "qattn.circuits",
    "CircuitFamily": "qattn.circuits",
    "FeatureMap": "qattn.circuits",
    "EXECUTORS": "qattn.executors",
    "SOLVERS": "qattn.solvers",
    "QuboSolver": "qattn.solvers",
    "Executor": "qattn.executors",
    "KERNELS": "qattn.registry",
    "KINDS": "qattn.kinds",
    "ScoreKernel": "qattn.kernels",
}

__all__ = list(_HOMES)
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
