"""Every attention kind is declared completely, once (qattn.kinds), and a kind declared there reaches every
place that needs it: config validation, run names and checkpoint folders, grids, model building and reports."""

import inspect

import pytest
import torch

from qattn.attention import AttentionShell
from qattn.config import ModelConfig, flatten, load_config
from qattn.grid import Cell, cells
from qattn.identity import grid_id, run_identity
from qattn.kinds import KINDS, AttentionKind, GridName, grid_names, ladder
from qattn.model import build_model
from qattn.report import kind_label, reads, row_order, title
from tests.conftest import QUICKSTART

SMALL = ["model.embed_dim=8", "model.num_heads=2", "model.n_qubits=2", "model.max_length=16", "model.chunk_size=4"]


def logged(config) -> dict[str, str]:
    """A config's params as MLflow logs them (strings)."""
    return {key: str(value) for key, value in flatten(config).items()}


class FakeRun:
    """What the report reads of an MLflow run: its params."""

    def __init__(self, params):
        self.data = type("Data", (), {"params": params})()


@pytest.mark.parametrize("name", KINDS.names())
def test_every_kind_is_declared_completely(name):
    kind = KINDS.get(name)
    assert kind.name == name and kind.summary and kind.rung == ladder().index(kind)
    builder = kind.builder()
    footing = {"probe": ["model.backbone.name=an-encoder"],  # the probe needs one (not loaded here)
               "none": ["model.pool=mean", "model.global_layers=0"]}.get(name, [])  # no summary without attention
    config = load_config(QUICKSTART, [f"model.attention={name}", *SMALL, *footing])
    assert run_identity(config).name.startswith(f"synthetic-{kind.run_name(config.model)}")
    params = logged(config)
    assert isinstance(kind.label(params), str) and isinstance(kind.baseline(params), bool)
    assert kind_label(FakeRun(params)) == kind.label(params)
    keys = set(params)
    for prefix in kind.keys():  # what it owns is in the config
        assert any(key == prefix or key.startswith(prefix + ".") for key in keys), prefix
    if kind.section:
        assert kind.section in ModelConfig.model_fields
    if kind.network:
        attention = builder(config.model)()
        assert attention is None or isinstance(attention, AttentionShell)  # None: blocks without attention (none)
        model = build_model(config.model, vocab_size=30, num_classes=3)
        assert model(torch.randint(1, 30, (2, 10))).logits.shape == (2, 3)
    else:
        assert {"config", "uri", "nested"} <= set(inspect.signature(builder).parameters)
        with pytest.raises(ValueError, match="is no network"):
            build_model(config.model, vocab_size=30, num_classes=3)
    for entry in kind.grid():
        assert isinstance(entry, GridName) and entry.kind == name
        cell = Cell(entry.name, 2 if entry.qubits else None, 0).config(load_config(QUICKSTART, [*SMALL, *footing]))
        assert cell.model.attention == name


def test_grid_names_and_rungs_are_unique():
    names = [entry.name for kind in ladder() for entry in kind.grid()]
    assert len(names) == len(set(names)) == len(grid_names())
    assert len({kind.rung for kind in ladder()}) == len(KINDS.names())


def test_a_kind_declared_once_reaches_config_names_grids_models_and_reports():
    toy = AttentionKind(
        name="toy", summary="a test kind: uniform weights under another name", build="qattn.model:uniform_attention",
        run_name=lambda model: "toy", label=lambda params: "toy attention", rung=99, baseline=lambda params: True,
        grid=lambda: [GridName("toy", "toy", lambda qubits: {})],
    )
    KINDS.add("toy", toy)
    try:
        config = load_config(QUICKSTART, ["model.attention=toy", *SMALL])
        assert run_identity(config).name == "synthetic-toy-h2-s0"
        assert build_model(config.model, 30, 3)(torch.randint(1, 30, (1, 8))).logits.shape == (1, 3)
        grid = load_config(QUICKSTART, ["compare.kinds=['dot', 'toy']", "compare.seeds=[0]", *SMALL])
        assert [cell.config(grid).model.attention for cell in cells(grid)] == ["classical", "toy"]
        assert grid_id(grid) != grid_id(load_config(QUICKSTART, ["compare.kinds=['dot']", "compare.seeds=[0]", *SMALL]))
        run = FakeRun(logged(config))
        assert kind_label(run) == "toy attention" and row_order(run)[0] == 99
        assert title([run]) == "quantum vs classical attention, with the baseline ladder"
        assert reads(run.data.params, "model.embed_dim") and not reads(run.data.params, "model.annealing.linear")
    finally:
        KINDS.remove("toy")
    with pytest.raises(Exception, match="unknown attention kind 'toy'"):
        load_config(QUICKSTART, ["model.attention=toy"])


def test_keys_a_kind_owns_are_read_by_that_kind_only():
    quantum = logged(load_config(QUICKSTART, ["model.attention=quantum", "model.executor=aer"]))
    classical = logged(load_config(QUICKSTART, ["model.attention=classical"]))
    annealing = logged(load_config(QUICKSTART, ["model.attention=annealing", "model.annealing.solver=batched"]))
    nbsvm = logged(load_config(QUICKSTART, ["model.attention=nbsvm"]))
    assert reads(quantum, "model.circuit") and not reads(classical, "model.circuit")
    assert reads(quantum, "model.aer.shots")
    assert not reads({**quantum, "model.executor": "pennylane"}, "model.aer.shots")
    assert reads(annealing, "model.annealing.batched.sweeps") and not reads(annealing, "model.annealing.sa.num_reads")
    assert reads(nbsvm, "model.bow.ngrams") and reads(nbsvm, "data.seed") and not reads(nbsvm, "model.embed_dim")
    assert not reads(classical, "model.bow.ngrams") and reads(classical, "train.lr")
