"""What one run gives back to its caller (``qattn train``, a grid, quickstart): the figures they print.

Every run, a network's (:func:`qattn.experiment.run_experiment`) or a bag-of-words baseline's
(:func:`qattn.baselines.run_baseline`), returns one :class:`RunResult`; MLflow holds the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qattn.trainer import Metrics


@dataclass
class RunResult:
    run_id: str
    run_name: str
    tracking_uri: str  # password masked
    test: Metrics
    best_epoch: int  # the epoch of the kept checkpoint, counted from 1
    epochs_run: int
    seconds_per_epoch: float
    docs_per_s: float
    tokens_per_s: float
    parameters: dict[str, int]
