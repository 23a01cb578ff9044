"""Executors run circuits: chosen by name (``executor="pennylane"``) or injected as an instance.

The classes are imported on first use (``from qattn.executors import AerExecutor`` works as usual), so
reading :data:`EXECUTORS`' names and qubit limits, as config validation does, imports no quantum SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qattn.registry import Registry, lazy_exports

if TYPE_CHECKING:
    from .aer import AerExecutor
    from .aer_sampled import SampledAerExecutor
    from .base import Executor, StatevectorExecutor
    from .budget import ShotBudget
    from .pennylane import PennyLaneExecutor
    from .rows import CircuitExecutor

EXECUTORS: Registry[type[Executor]] = Registry("executor")
EXECUTORS.add_lazy("pennylane", "qattn.executors.pennylane:PennyLaneExecutor", max_qubits=12)
EXECUTORS.add_lazy("aer", "qattn.executors.aer:AerExecutor", max_qubits=20)

_CLASSES = {
    "AerExecutor": ".aer",
    "CircuitExecutor": ".rows",
    "Executor": ".base",
    "PennyLaneExecutor": ".pennylane",
    "SampledAerExecutor": ".aer_sampled",
    "ShotBudget": ".budget",
    "StatevectorExecutor": ".base",
}
__getattr__, __dir__ = lazy_exports(__name__, _CLASSES)


def aer_executor(*, shots: int | None = None, **options: Any) -> AerExecutor | SampledAerExecutor:
    """Qiskit Aer with the options of a config's ``[model.aer]``: exact statevectors when ``shots`` is None,
    else sampled with that many shots per circuit."""
    if shots is None:
        from .aer import AerExecutor

        return AerExecutor(**options)
    from .aer_sampled import SampledAerExecutor

    return SampledAerExecutor(shots=shots, **options)


def resolve_executor(executor: str | Executor) -> Executor:
    """An executor name (default options) or a configured instance -> the instance."""
    from .base import Executor

    if isinstance(executor, Executor):
        return executor
    if not isinstance(executor, str):
        raise TypeError(f"an executor must be a name or an Executor instance, got {type(executor).__name__}")
    return EXECUTORS.get(executor)()


__all__ = [
    "EXECUTORS", "AerExecutor", "CircuitExecutor", "Executor", "PennyLaneExecutor", "SampledAerExecutor", "ShotBudget",
    "StatevectorExecutor", "aer_executor", "resolve_executor",
]
