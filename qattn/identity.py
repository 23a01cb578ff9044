"""What makes two runs, or two grids, the same: run names, checkpoint folders and grid ids.

    identity = run_identity(config)   # identity.name: the MLflow run name; identity.folder: its checkpoints
    grid_id(config)                   # the tag by which `qattn compare` finds (and resumes) a grid

A run's identity is computed once and handed to whatever needs it (the experiment, the grid's cells).
Identities are hashes of the resolved config, without what does not change what a run learns (where
it computes, where results go) and without settings added later while at the default that behaves
as before: so the ids of earlier grids and checkpoints stay the same (``tests/test_config.py`` pins
a few), and a grid resumes across qattn versions.

This module imports no torch or MLflow.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from qattn.config import WORD_PATTERN, ExperimentConfig
from qattn.kinds import KINDS, grid_names, ladder


@dataclass(frozen=True)
class RunIdentity:
    """A run's name in MLflow and the folder of its checkpoints."""

    name: str
    folder: Path


def run_identity(config: ExperimentConfig) -> RunIdentity:
    """The run's name, and ``<output_dir>/<run name>-<hash>``: the hash covers everything that shapes
    training (not where results go, nor the grid around it), so a changed config never resumes, or
    overwrites, another config's checkpoints."""
    name = run_name(config)
    hashed = digest(config, exclude={"tracking": True, "compare": True, "train": {"output_dir"}}, length=8)
    return RunIdentity(name, Path(config.train.output_dir) / f"{name}-{hashed}")


def checkpoint_dir(config: ExperimentConfig) -> Path:
    return run_identity(config).folder


def run_name(config: ExperimentConfig) -> str:
    """Deterministic and readable: data set, the kind's part (kernel and qubits, width, solver), heads
    (networks only), seed."""
    model = config.model
    kind = KINDS.get(model.attention)
    heads = f"-h{model.num_heads}" if kind.network else ""
    return f"{config.data.name}-{kind.run_name(model)}{heads}-s{config.train.seed}"


def grid_id(config: ExperimentConfig) -> str:
    """What makes two grids the same: the config that shapes training, and the kinds and qubit counts."""
    return digest(config, exclude={"tracking": True, "train": {"output_dir", "seed"}, "compare": {"seeds"}}, length=12)


PLACEMENT = {"train": {"device": True}, "model": {"aer": {"cluster": True, "max_job_size": True},
                                                   "backbone": {"cache_dir": True, "batch_size": True}}}
"""Where a run computes, not what: never part of an identity, so a run resumes on other hardware or
another cluster (``max_job_size`` only regroups a sampled run's shots into other seeded sub-jobs; an
encoder's feature cache folder and encoding batch change where and how fast its features are computed)."""


LATER_DEFAULTS = {
    "data": {"on_empty": "error", "on_overlap": "warn", "listops": None}, "tokenizer": {"kind": "bpe"},
    "model": {"qk_dim": None, "backbone": None, "pool": "summary", "bow": {"token_pattern": WORD_PATTERN}},
    "train": {"label_smoothing": 0.0},
}
"""Settings added after grids and checkpoints existed, with the default that behaves as before they did:
left out of identities while at that default, so those grids resume and their checkpoints are found."""


def digest(config: ExperimentConfig, exclude: dict, length: int) -> str:
    """A short hash of the config without the ``exclude``d parts (a pydantic ``exclude`` spec), without
    :data:`PLACEMENT`, without :data:`LATER_DEFAULTS` at their defaults, and without the sections of
    ``[model]`` that only kinds it does not train read (:attr:`qattn.kinds.AttentionKind.section`): what makes
    two checkpoints, or two grids, the same."""
    identity = config.model_dump(mode="json", exclude=exclude)

    def drop(node: dict, spec: dict, if_default: bool) -> None:
        for key, inner in spec.items():
            if isinstance(inner, dict):
                drop(node.get(key) or {}, inner, if_default)  # a section that is unset (None) has nothing to drop
            elif key in node and (not if_default or node[key] == inner):
                node.pop(key)

    drop(identity, PLACEMENT, if_default=False)
    drop(identity, LATER_DEFAULTS, if_default=True)
    model = identity.get("model", {})
    names = grid_names()
    trained = {model.get("attention"), *(names[name].kind for name in identity.get("compare", {}).get("kinds", []))}
    sections = {kind.section for kind in ladder() if kind.section}
    for section in sections - {KINDS.get(name).section for name in trained}:
        model.pop(section, None)  # read by the kinds of a run or a grid only (and added after earlier ids existed)
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:length]
