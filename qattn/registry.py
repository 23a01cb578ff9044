"""Name -> object registries with errors that list the valid names.

An entry may be *lazy*: declared by import path (``"qattn.kernels:FidelityKernel"``) together with
the few attributes config validation reads (``quantum``, ``max_qubits``), and imported on first
:meth:`Registry.get`. So ``import qattn.config`` checks kernel and executor names without importing
torch, PennyLane or Qiskit. The score kernels are declared here (their module needs torch); the
executors in :mod:`qattn.executors`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Lazy:
    """An entry imported on first use: ``target`` is ``"module:attribute"``; ``attributes`` are known
    without importing it (and checked against the object when it is imported)."""

    target: str
    attributes: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        module, _, name = self.target.partition(":")
        entry = getattr(importlib.import_module(module), name)
        for key, value in self.attributes.items():
            if getattr(entry, key, None) != value:
                actual = getattr(entry, key, None)
                raise TypeError(f"{self.target}.{key} is {actual!r}, but it is registered as {value!r}")
        return entry


def lazy_exports(module: str, homes: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """PEP 562 ``__getattr__`` and ``__dir__`` for ``module``: each name of ``homes`` is imported from its
    module (absolute, or relative to ``module``) on first use. ``__getattr__, __dir__ = lazy_exports(...)``."""

    def __getattr__(name: str) -> Any:
        if name in homes:
            return getattr(importlib.import_module(homes[name], module), name)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted([*vars(sys.modules[module]), *homes])

    return __getattr__, __dir__


class Registry(Generic[T]):
    """A dictionary of named entries (kernels, circuits, executors) that fails helpfully."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T | Lazy] = {}

    def add(self, name: str, entry: T) -> T:
        if not isinstance(name, str) or not name:
            raise TypeError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def add_lazy(self, name: str, target: str, **attributes: Any) -> None:
        """Register ``"module:attribute"``, imported on first :meth:`get`; ``attributes`` (e.g.
        ``max_qubits=12``) are readable through :meth:`attribute` before that."""
        self.add(name, Lazy(target, attributes))

    def remove(self, name: str) -> T:
        entry = self.get(name)
        del self._entries[name]
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""
        return lambda entry: self.add(name, entry)

    def get(self, name: str) -> T:
        entry = self._entry(name)
        if isinstance(entry, Lazy):
            entry = self._entries[name] = entry.load()
        return entry

    def check(self, name: str) -> str:
        """``name``, if it is registered; else the error that lists the valid names (nothing is imported)."""
        self._entry(name)
        return name

    def attribute(self, name: str, key: str) -> Any:
        """``getattr(self.get(name), key)``, without importing a lazy entry that declares ``key``."""
        entry = self._entry(name)
        if isinstance(entry, Lazy) and key in entry.attributes:
            return entry.attributes[key]
        return getattr(self.get(name), key)

    def _entry(self, name: str) -> T | Lazy:
        if not isinstance(name, str):
            raise TypeError(f"{self.kind} must be given by name (a string), got {type(name).__name__}")
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(
                f"unknown {self.kind} {name!r}; valid {self.kind}s: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


KERNELS: Registry = Registry("kernel")
"""Score kernels by name (the classes are in :mod:`qattn.kernels`)."""
KERNELS.add_lazy("dot", "qattn.kernels:DotKernel", quantum=False)
KERNELS.add_lazy("fidelity", "qattn.kernels:FidelityKernel", quantum=True)
KERNELS.add_lazy("gaussian", "qattn.kernels:GaussianKernel", quantum=True)
KERNELS.add_lazy("uniform", "qattn.kernels:UniformKernel", quantum=False)


def quantum_kernels() -> list[str]:
    """Names of the registered kernels that score with circuits."""
    return [name for name in KERNELS.names() if KERNELS.attribute(name, "quantum")]
