"""The executor behind ``qattn ibm``: a forward pass that stops where hardware results are missing.

A model's quantum layers run in order and each layer's circuits depend on the layer before, so a
hardware evaluation runs in stages, one per kernel call of the forward pass. The pass is replayed
with the results of the stages already retrieved; the first call without results raises
:class:`Pending` with the circuits it needs: one per score attention uses (masked pairs, such as
keys in padding, cost nothing), or one per needed token for expectation-value features.

- ``fidelity``: compute-uncompute, ``P(0...0)`` of ``phi_K(k)^dagger phi_Q(q) |0>`` per (query, key) pair;
- ``z``: ``<Z_q>`` on every qubit of ``phi(x)`` per token (the ``gaussian`` kernel's features).

For ``plan``, a stand-in executor (exact simulation) answers each call instead, so every stage's
circuits are listed before anything is sent. Replays are deterministic (the model in eval mode), and
a retrieved stage is only used for the circuits it was submitted for (their angles are compared).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

from qattn.circuits import FeatureMap
from qattn.executors.aer import slot_angles
from qattn.executors.base import Executor, per_head, used_pairs, used_tokens

from .devices import HardwareError


@dataclass
class Request:
    """The circuits of one stage: one row of gate angles per circuit. ``bits`` stages (a QUBO solver's
    sampling circuits, :mod:`qattn.ibm.staged_solver`) have no feature map: each row's circuit is the
    solver's on ``qubits[row]`` qubits, and ``extra`` holds the QUBOs the stage file keeps beside the angles."""

    stage: int
    kind: str  # "fidelity" | "z" | "bits"
    fmap: FeatureMap | None
    angles: np.ndarray  # (M, slots); fidelity rows hold the query's slots, then the key's; bits rows zero-padded
    rows: np.ndarray  # (M,) positions in the call's flattened output that the circuits fill (bits: problems)
    qubits: np.ndarray | None = None  # bits: (M,) each circuit's qubits, ascending
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def circuits(self) -> int:
        return len(self.angles)


class Pending(Exception):
    """The forward pass reached a stage whose circuits have not run."""

    def __init__(self, request: Request) -> None:
        super().__init__(f"stage {request.stage} needs {request.circuits} {request.kind} circuits")
        self.request = request


class StagedExecutor(Executor):
    """Answers kernel calls from retrieved results, or from ``stand_in`` when given; otherwise raises
    :class:`Pending`. ``results[stage]`` is ``(angles submitted, values)``, one row per circuit.
    ``requests`` collects every call of the current pass (call :meth:`reset` before each pass)."""

    name: ClassVar[str] = "ibm"
    max_qubits: ClassVar[int] = 156  # the largest IBM device; a backend's own size is checked at planning

    def __init__(
        self, results: Mapping[int, tuple[np.ndarray, np.ndarray]] | None = None, stand_in: Executor | None = None
    ) -> None:
        self.results = dict(results or {})
        self.stand_in = stand_in
        self.requests: list[Request] = []

    def reset(self) -> None:
        self.requests = []

    def answer(self, kind: str, fmap: FeatureMap, angles: torch.Tensor, rows: torch.Tensor) -> np.ndarray | None:
        """The stage's values (``(M,)`` or ``(M, n)``), or None when the stand-in answers."""
        request = Request(len(self.requests), kind, fmap, angles.detach().double().numpy(), rows.numpy())
        self.requests.append(request)
        if request.stage in self.results:
            submitted, values = self.results[request.stage]
            if submitted.shape != request.angles.shape or not np.allclose(submitted, request.angles, atol=1e-4):
                raise HardwareError(
                    f"stage {request.stage}'s circuits were submitted for other angles than the model now computes "
                    "(the checkpoint, its data slice or the code changed since submission); submit it again"
                )
            return values
        if self.stand_in is None:
            raise Pending(request)
        return None

    def fidelities(self, fmap, x_q, w_q, x_k, w_k, scale=None, needed=None):
        a_q, a_k = slot_angles(fmap, x_q, w_q), slot_angles(fmap, x_k, w_k)  # (B, H, N, G), (B, H, S, G)
        shape = (*a_q.shape[:3], a_k.shape[2])
        rows = used_pairs(needed, shape).nonzero().squeeze(1)
        b, h, n, s = np.unravel_index(rows.numpy(), shape)
        values = self.answer("fidelity", fmap, torch.cat([a_q[b, h, n], a_k[b, h, s]], -1), rows)
        if values is None:
            return self.stand_in.fidelities(fmap, x_q, w_q, x_k, w_k, scale)
        fid = torch.zeros(int(np.prod(shape)), dtype=x_q.dtype)
        fid[rows] = torch.as_tensor(np.clip(values, 0.0, 1.0), dtype=x_q.dtype)  # estimates may stray outside [0, 1]
        return per_head(scale, fid.view(shape))

    def z_expectations(self, fmap, x, w):
        angles = slot_angles(fmap, x, w)
        used = torch.ones(angles[..., 0].numel(), dtype=torch.bool)
        return self.z_features(fmap, [angles], used, lambda: [self.stand_in.z_expectations(fmap, x, w)])[0]

    def z_expectation_pair(self, fmap, x_q, w_q, x_k, w_k, needed=None):
        a_q, a_k = slot_angles(fmap, x_q, w_q), slot_angles(fmap, x_k, w_k)
        used = used_tokens(needed, a_q.shape[:3], a_k.shape[2])
        return tuple(self.z_features(fmap, [a_q, a_k], used, lambda: self.stand_in.z_expectation_pair(fmap, x_q, w_q, x_k, w_k)))

    def z_features(self, fmap, sets, used, stand_in) -> list[torch.Tensor]:
        """``<Z>`` features of several ``(B, H, N, G)`` angle sets in one stage, for the ``used`` tokens
        of their concatenation."""
        flat = torch.cat([a.reshape(-1, a.shape[-1]) for a in sets])
        rows = used.nonzero().squeeze(1)
        values = self.answer("z", fmap, flat[rows], rows)
        if values is None:
            return list(stand_in())
        z = torch.zeros(len(flat), fmap.n_qubits, dtype=flat.dtype)
        z[rows] = torch.as_tensor(np.clip(values, -1.0, 1.0), dtype=flat.dtype)
        return [part.view(*a.shape[:3], -1) for part, a in zip(z.split([a[..., 0].numel() for a in sets]), sets)]
