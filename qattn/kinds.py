"""Attention kinds: every value of ``model.attention``, declared once with all the rest of qattn needs.

    qattn train experiments/imdb.toml --set model.attention=annealing

A kind says how it is built, what its runs are called, which config it reads, how a report labels
it and where it sits on the baseline ladder, and which names of ``compare.kinds`` train it. Config
validation, run names and checkpoint folders (:mod:`qattn.identity`), model building
(:mod:`qattn.model`), the experiment's dispatch (:mod:`qattn.experiment`), the comparison grid
(:mod:`qattn.grid`) and reports (:mod:`qattn.report`) all read :data:`KINDS`; none keeps a list of
its own. Adding a kind is one :meth:`KINDS.add <qattn.registry.Registry.add>` of an
:class:`AttentionKind` plus its code (``tests/test_kinds.py`` checks every declaration is complete).

This module imports no torch: builders are named by import path and loaded on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from qattn.registry import Registry, quantum_kernels

Params = Mapping[str, str]  # a run's params as MLflow logged them ("model.kernel" -> "fidelity")


@dataclass(frozen=True)
class GridName:
    """A name ``compare.kinds`` accepts: the kind it trains and the ``[model]`` settings of its cells."""

    name: str
    kind: str  # the model.attention it trains
    settings: Callable[[int | None], dict[str, Any]]  # the cell's qubit count -> [model] values besides attention
    qubits: bool = False  # one cell per qubit count of compare.n_qubits (else one, with qubits None)


@dataclass(frozen=True, kw_only=True)
class AttentionKind:
    """One value of ``model.attention``.

    ``build`` is ``"module:function"``. A network kind's function takes the ``[model]`` config and returns
    the factory of the attention module every encoder block gets (:func:`qattn.model.build_model` puts it
    in the hierarchical reader). A kind that is no network (``network=False``, the bag-of-words rungs)
    trains and records a whole run itself: ``function(config, *, uri, nested) ->``
    :class:`~qattn.run_result.RunResult`, with ``uri`` the MLflow store it is connected to.
    """

    name: str
    summary: str  # one line: what it scores with (the config's and the docs' description)
    build: str
    network: bool = True
    run_name: Callable[[Any], str]  # the [model] config -> the kind's part of a run name ("quantum-fidelity-q4")
    label: Callable[[Params], str]  # a run's params -> its row label in a report
    rung: int  # its place on the baseline ladder of a report, lowest first
    baseline: Callable[[Params], bool] = lambda params: False  # a run of it is a baseline rung (titles, row order)
    section: str | None = None  # its own [model.<section>]: left out of the identity of runs and grids without it
    reads: tuple[str, ...] = ()  # other [model] keys only it reads (dotted, or a section's prefix)
    inputs: tuple[str, ...] = ()  # a kind that is no network: the shared keys besides data.* it reads (prefixes)
    hardware: bool = False  # it has circuits or QUBOs a device can run (qattn ibm)
    grid: Callable[[], list[GridName]]  # the compare.kinds names that train it

    def builder(self) -> Callable[..., Any]:
        """The function ``build`` names, imported now."""
        module, _, name = self.build.partition(":")
        return getattr(importlib.import_module(module), name)

    def keys(self) -> tuple[str, ...]:
        """Every config key prefix only this kind reads: its section and :attr:`reads`."""
        return (*((f"model.{self.section}",) if self.section else ()), *self.reads)

    def owns(self, key: str) -> bool:
        return any(key == prefix or key.startswith(prefix + ".") for prefix in self.keys())


def one_name(name: str, kind: str, **settings: Any) -> Callable[[], list[GridName]]:
    """The ``grid`` of a kind trained by one compare.kinds name, with fixed ``[model]`` settings."""
    return lambda: [GridName(name, kind, lambda qubits: dict(settings))]


def classical_name(model) -> str:
    return "classical-dot" if model.qk_dim is None else f"classical-dot-w{model.qk_dim}"


def narrowed(params: Params) -> bool:
    """A classical run whose per-head query/key width ``model.qk_dim`` was narrowed (as logged)."""
    return params.get("model.qk_dim", "None") != "None"


def classical_label(params: Params) -> str:
    return "classical dot" + (f", {params['model.qk_dim']} features per head" if narrowed(params) else "")


def classical_grid() -> list[GridName]:
    return [
        GridName("dot", "classical", lambda qubits: {}),
        # classical attention at the quantum kernels' per-head width: qk_dim = the cell's qubit count
        GridName("dot-narrow", "classical", lambda qubits: {"qk_dim": qubits}, qubits=True),
    ]


def quantum_grid() -> list[GridName]:
    return [
        GridName(kernel, "quantum", lambda qubits, kernel=kernel: {"kernel": kernel, "n_qubits": qubits}, qubits=True)
        for kernel in quantum_kernels()
    ]


CIRCUIT_KEYS = ("model.kernel", "model.n_qubits", "model.encoder", "model.circuit", "model.reuploads",
                "model.executor", "model.aer")

KINDS: Registry[AttentionKind] = Registry("attention kind")
"""Every value of ``model.attention``, in the order a report's ladder lists them (:attr:`AttentionKind.rung`)."""

for kind in (
    AttentionKind(
        name="tfidf-lr", summary="TF-IDF of word n-grams and logistic regression (bag of words, no network)",
        build="qattn.baselines:run_baseline", network=False, run_name=lambda model: "tfidf-lr",
        label=lambda params: "TF-IDF + logistic regression", rung=0, baseline=lambda params: True, section="bow",
        grid=one_name("tfidf-lr", "tfidf-lr"),
    ),
    AttentionKind(
        name="nbsvm", summary="NBSVM of Wang & Manning on word n-grams (bag of words, no network)",
        build="qattn.baselines:run_baseline", network=False, run_name=lambda model: "nbsvm",
        label=lambda params: "NBSVM (Wang & Manning)", rung=1, baseline=lambda params: True, section="bow",
        grid=one_name("nbsvm", "nbsvm"),
    ),
    AttentionKind(
        name="probe", summary="a frozen pretrained encoder's mean-pooled features and logistic regression (a linear probe)",
        build="qattn.baselines:run_probe", network=False, run_name=lambda model: "probe",
        label=lambda params: "linear probe of the encoder", rung=2, baseline=lambda params: True, section="probe",
        inputs=("model.backbone", "model.max_length", "model.chunk_size", "backbone."), grid=one_name("probe", "probe"),
    ),
    AttentionKind(
        name="none", summary="no attention sublayer: each block keeps its feed-forward path only",
        build="qattn.model:no_attention", run_name=lambda model: "none",
        label=lambda params: "no attention (feed-forward only)", rung=3, baseline=lambda params: True,
        grid=one_name("none", "none"),
    ),
    AttentionKind(
        name="uniform", summary="every key the same weight: the no-attention ablation",
        build="qattn.model:uniform_attention", run_name=lambda model: "uniform",
        label=lambda params: "uniform attention (no scores)", rung=4, baseline=lambda params: True,
        grid=one_name("uniform", "uniform"),
    ),
    AttentionKind(
        name="classical", summary="scaled dot product (compare.kinds 'dot'; 'dot-narrow' at n_qubits features a head)",
        build="qattn.model:classical_attention", run_name=classical_name, label=classical_label, rung=5,
        baseline=narrowed, grid=classical_grid,
    ),
    AttentionKind(
        name="quantum", summary="circuit kernels: compare.kinds names the kernel (fidelity, gaussian)",
        build="qattn.model:quantum_attention", run_name=lambda model: f"quantum-{model.kernel}-q{model.n_qubits}",
        label=lambda params: f"quantum {params['model.kernel']}, {params['model.n_qubits']} qubits", rung=6,
        reads=CIRCUIT_KEYS, hardware=True, grid=quantum_grid,
    ),
    AttentionKind(
        name="annealing", summary="QAMA: each head's attention a QUBO solved by an annealer",
        build="qattn.model:annealing_attention", run_name=lambda model: f"annealing-{model.annealing.solver}",
        label=lambda params: f"QAMA annealing, {params.get('model.annealing.solver', 'unknown')} solver", rung=7,
        section="annealing", hardware=True, grid=one_name("annealing", "annealing"),
    ),
):
    KINDS.add(kind.name, kind)


def grid_names() -> dict[str, GridName]:
    """Every name ``compare.kinds`` accepts, in ladder order."""
    return {entry.name: entry for kind in ladder() for entry in kind.grid()}


def ladder() -> list[AttentionKind]:
    """The registered kinds, lowest rung first."""
    return sorted((KINDS.get(name) for name in KINDS), key=lambda kind: kind.rung)


def owner_reads(kind: AttentionKind | None, key: str) -> bool:
    """Whether ``kind`` may read config ``key`` as far as owners go: its own keys, and those no kind owns
    (``None``, an unknown kind, counts as reading everything)."""
    return kind is None or kind.owns(key) or not any(other.owns(key) for other in ladder())


def kind_of(params: Params) -> AttentionKind | None:
    """The kind of a run by its logged ``model.attention`` (None for a kind no longer registered)."""
    name = params.get("model.attention")
    return KINDS.get(name) if name in KINDS else None
