"""Executors run circuits: chosen by name (``executor="pennylane"``) or injected as an instance."""

from qattn.registry import Registry

from .aer import AerExecutor
from .base import Executor, StatevectorExecutor
from .pennylane import PennyLaneExecutor

EXECUTORS: Registry[type[Executor]] = Registry("executor")
EXECUTORS.add("pennylane", PennyLaneExecutor)
EXECUTORS.add("aer", AerExecutor)


def resolve_executor(executor: str | Executor) -> Executor:
    """An executor name (default options) or a configured instance -> the instance."""
    if isinstance(executor, Executor):
        return executor
    if not isinstance(executor, str):
        raise TypeError(f"an executor must be a name or an Executor instance, got {type(executor).__name__}")
    return EXECUTORS.get(executor)()


__all__ = ["EXECUTORS", "AerExecutor", "Executor", "PennyLaneExecutor", "StatevectorExecutor", "resolve_executor"]
