"""Sampled Qiskit Aer: circuits run row by row with shots, optionally with an IBM device's noise.

    SampledAerExecutor(shots=4096, seed=7)                     # (what AerExecutor(shots=4096) returns)
    SampledAerExecutor(shots=64, estimator="randomized", rotations=256)   # O(N) circuits per head
    SampledAerExecutor(budget=ShotBudget(0.02))                # shots from a target error on the weights
    SampledAerExecutor(budget=ShotBudget(0.02, prior="adaptive"))   # pilot pass, then shots where uncertain

Everything about rows, estimators and shot budgets is :class:`~qattn.executors.rows.CircuitExecutor`'s;
this class only runs bound circuits on Aer's ``SamplerV2`` (one call per batch of rows, one pub per
shot count), in process or on a cluster (:class:`~qattn.executors.aer.AerSimulation`).
"""

from __future__ import annotations

from concurrent.futures import Executor as Pool

import numpy as np

from qattn.circuits import FeatureMap

from .aer import AerSimulation
from .budget import ShotBudget
from .rows import CircuitExecutor


class SampledAerExecutor(AerSimulation, CircuitExecutor):
    def __init__(
        self, *, shots: int = 4096, noise: str | None = None, method: str = "automatic", device: str = "CPU",
        seed: int | None = None, seed_transpiler: int | None = None, cluster: Pool | str | None = None,
        max_job_size: int | None = None, estimator: str = "pairwise", rotations: int = 64,
        budget: ShotBudget | None = None,
    ) -> None:
        self.setup(shots=shots, noise=noise, method=method, device=device, seed=seed, seed_transpiler=seed_transpiler,
                   cluster=cluster, max_job_size=max_job_size)
        CircuitExecutor.__init__(self, shots=shots, estimator=estimator, rotations=rotations, budget=budget, rotation_seed=seed)

    def run(self, kind: str, fmap: FeatureMap, angles: np.ndarray, shots: np.ndarray) -> np.ndarray:
        return self.program(fmap, kind)(angles, shots)
