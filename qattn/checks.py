"""Argument checks shared by the layers and kernels: say what was wrong and what is expected."""

from __future__ import annotations

import math
import numbers


def positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if value < 1:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def probability(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__} ({value!r})")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)


def check_heads(embed_dim: object, num_heads: object) -> None:
    positive_int("embed_dim", embed_dim)
    positive_int("num_heads", num_heads)
    if embed_dim % num_heads:
        raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")


QUBO_WEIGHT_FLOORS = {"penalty": 0.0}
"""Annealing attention's QUBO weights (``quadratic``, ``linear``, ``penalty``) that have a least value: a
negative penalty would reward heads for selecting the same token."""


def qubo_weight(name: str, value: object) -> float:
    """A weight of annealing attention's QUBO, checked as the layer and the config both check it: a finite
    number (a NaN or infinite weight makes every QUBO degenerate, and solvers refuse it), at least its floor."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} ({value!r})")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    floor = QUBO_WEIGHT_FLOORS.get(name)
    if floor is not None and value < floor:
        raise ValueError(f"{name} must be >= {floor:g}, got {value}")
    return float(value)
