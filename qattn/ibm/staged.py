"""The executor behind ``qattn ibm``: a forward pass that stops where hardware results are missing.

A model's quantum layers run in order and each layer's circuits depend on the layer before, so a
hardware evaluation runs in stages, one per run of circuits in the forward pass. The pass is
replayed with the results of the stages already retrieved; the first run without results raises
:class:`Pending` with the circuits it needs. Which circuits, with how many shots and with which
estimator is :class:`~qattn.executors.rows.CircuitExecutor`'s business, shared with sampled Aer:

- ``fidelity``: compute-uncompute per needed (query, key) pair (masked pairs, such as keys in
  padding, cost nothing), fixed shots or shots from an error budget; an ``adaptive`` budget is two
  stages per kernel call (a pilot pass, then more shots where the weights are uncertain);
- ``randomized``: each needed token's state once per shared random rotation (Sampler bitstrings);
- ``z``: ``<Z_q>`` on every qubit of ``phi(x)`` per needed token (the ``gaussian`` kernel's features).

For ``plan``, exact simulation answers each run instead (``stand_in``), so every stage's circuits
are listed before anything is sent. Replays are deterministic (the model in eval mode, the random
rotations seeded), and a retrieved stage is only used for the circuits it was submitted for (their
angles and shots are compared).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from qattn.circuits import FeatureMap
from qattn.executors.budget import ShotBudget
from qattn.executors.forecast import Call
from qattn.executors.rows import CircuitExecutor

from qattn.runtime.devices import HardwareError


@dataclass
class Request:
    """The circuits of one stage: one row of gate angles per circuit. ``bits`` stages (a QUBO solver's
    sampling circuits, :mod:`qattn.ibm.staged_solver`) have no feature map: each row's circuit is the
    solver's on ``qubits[row]`` qubits, and ``extra`` holds the QUBOs the stage file keeps beside the angles."""

    stage: int
    kind: str  # "fidelity" | "z" | "randomized" | "bits"
    fmap: FeatureMap | None
    angles: np.ndarray  # (M, slots); fidelity rows hold the query's slots, then the key's; bits rows zero-padded
    rows: np.ndarray  # (M,) the circuits' rows (bits: the problems they sample)
    qubits: np.ndarray | None = None  # bits: (M,) each circuit's qubits, ascending
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    shots: np.ndarray | None = None  # (M,) each circuit's shots, ascending, where they are not the options' shots

    @property
    def circuits(self) -> int:
        return len(self.angles)


class Pending(Exception):
    """The forward pass reached a stage whose circuits have not run."""

    def __init__(self, request: Request) -> None:
        super().__init__(f"stage {request.stage} needs {request.circuits} {request.kind} circuits")
        self.request = request


class StagedExecutor(CircuitExecutor):
    """Answers runs of circuits from retrieved results, or with exact simulation when ``stand_in``;
    otherwise raises :class:`Pending`. ``results[stage]`` is ``(angles submitted, values)``, one row
    per circuit (``shots`` too, for stages whose rows have their own). ``requests`` collects every run
    of the current pass (call :meth:`reset` before each pass)."""

    name: ClassVar[str] = "ibm"
    max_qubits: ClassVar[int] = 156  # the largest IBM device; a backend's own size is checked at planning
    differentiable: ClassVar[bool] = False

    def __init__(
        self, results: Mapping[int, tuple[np.ndarray, np.ndarray]] | None = None, stand_in: bool = False, *,
        shots: int = 4096, estimator: str = "pairwise", rotations: int = 64, budget: ShotBudget | None = None,
        rotation_seed: int | None = 0, record: bool = False,
    ) -> None:
        super().__init__(shots=shots, estimator=estimator, rotations=rotations, budget=budget, rotation_seed=rotation_seed)
        self.results = dict(results or {})
        self.stand_in = stand_in
        self.record = record  # keep every fidelity call, exactly simulated, for error forecasts (planning)
        self.requests: list[Request] = []
        self.calls: list[Call] = []

    def reset(self) -> None:
        """Before each pass: no requests yet, and the random rotations drawn again from their seed."""
        self.requests, self.calls = [], []
        self.rotation_rng = np.random.default_rng(self.rotation_seed)

    def observe(self, fmap, inputs, scale, needed) -> None:
        if self.record:
            self.calls.append(Call.record(fmap, inputs, scale, needed))

    def run(self, kind: str, fmap: FeatureMap, angles: np.ndarray, shots: np.ndarray) -> np.ndarray | None:
        """The stage's values (``(M, 1)`` fidelities, ``(M, n)`` Z features, ``(M, shots, n)`` bits), or
        None when the stand-in answers."""
        own = None if (shots == self.shots).all() else shots.astype(np.int64)  # None: the options' shots, for every row
        request = Request(len(self.requests), kind, fmap, angles, np.arange(len(angles)), shots=own)
        self.requests.append(request)
        if request.stage in self.results:
            submitted, values, *shots_sent = self.results[request.stage]
            same_shots = request.shots is None if not shots_sent or shots_sent[0] is None else (
                request.shots is not None and np.array_equal(shots_sent[0], request.shots))
            if submitted.shape != request.angles.shape or not np.allclose(submitted, request.angles, atol=1e-4) or not same_shots:
                raise HardwareError(
                    f"stage {request.stage}'s circuits were submitted for other angles or shots than the model now computes "
                    "(the checkpoint, its data slice or the code changed since submission); submit it again"
                )
            if kind == "randomized":
                return np.asarray(values, dtype=bool)
            return np.asarray(values, dtype=float).reshape(len(angles), -1)
        if self.stand_in:
            return None
        raise Pending(request)
