"""Run folders and checkpoints as users meet them: damaged or hand-made checkpoints, folders that cannot
be written, a run folder another process holds, and `qattn compare` meeting a `qattn train` checkpoint."""

import argparse
import os
import shutil
from pathlib import Path

import mlflow
import pytest
import torch
from click.testing import CliRunner

from qattn.cli import main
from qattn.config import ConfigError, load_config
from qattn.experiment import ExperimentError, folder_lock, load_saved, run_experiment
from qattn.identity import checkpoint_dir
from qattn.grid import run_grid
from tests.conftest import QUICKSTART, tiny_overrides


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One finished tiny run: its overrides (store and folders in a module folder) and its run folder."""
    folder = tmp_path_factory.mktemp("trained")
    cwd = os.getcwd()
    os.chdir(folder)  # a SQLite store's artifacts go to ./mlruns
    try:
        overrides = tiny_overrides(folder)
        result = run_experiment(load_config(QUICKSTART, overrides))
    finally:
        os.chdir(cwd)
    return overrides, checkpoint_dir(load_config(QUICKSTART, overrides)), result.run_id


def runs_in(overrides) -> list:
    config = load_config(QUICKSTART, overrides)
    mlflow.set_tracking_uri(config.tracking.uri)
    return mlflow.search_runs(experiment_names=[config.tracking.experiment], output_format="list")


def truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:2000])


def foreign(path: Path) -> None:
    torch.save({"model": argparse.Namespace(weights=1)}, path)  # a pickle that weights_only refuses


def without_label_names(path: Path) -> None:
    payload = torch.load(path, weights_only=True)
    del payload["label_names"]
    torch.save(payload, path)


def wrong_shapes(path: Path) -> None:
    payload = torch.load(path, weights_only=True)
    name = next(iter(payload["model"]))
    payload["model"][name] = torch.zeros(3, 5)
    torch.save(payload, path)


@pytest.mark.parametrize("damage", [truncated, foreign, without_label_names, wrong_shapes], ids=lambda f: f.__name__)
def test_a_damaged_checkpoint_is_named_with_the_fix_before_any_run_starts(trained, tmp_path, monkeypatch, damage):
    overrides, trained_dir, _ = trained
    monkeypatch.chdir(tmp_path)
    overrides = [*overrides, f"train.output_dir={tmp_path / 'runs'}"]  # the same run, its folder copied here
    run_dir = tmp_path / "runs" / trained_dir.name
    shutil.copytree(trained_dir, run_dir)
    last = run_dir / "last.pt"
    damage(last)
    before = runs_in(overrides)

    with pytest.raises(ExperimentError) as resumed:
        run_experiment(load_config(QUICKSTART, overrides), resume=True)
    message = str(resumed.value)
    assert message.startswith(f"{last} is not a qattn checkpoint, or a damaged one (") and "--restart" in message
    assert "weights_only" not in message
    assert [(r.info.run_id, r.info.status) for r in runs_in(overrides)] == [(r.info.run_id, r.info.status) for r in before]

    with pytest.raises(ExperimentError, match=f"^{last} is not a qattn checkpoint, or a damaged one"):  # qattn evaluate FILE
        load_saved(str(last))


def test_compare_names_a_damaged_cell_checkpoint(trained, tmp_path, monkeypatch):
    overrides, trained_dir, _ = trained
    monkeypatch.chdir(tmp_path)
    overrides = [*overrides, f"train.output_dir={tmp_path / 'runs'}", "compare.kinds=['fidelity']", "compare.seeds=[0]"]
    shutil.copytree(trained_dir, tmp_path / "runs" / trained_dir.name)
    truncated(tmp_path / "runs" / trained_dir.name / "last.pt")
    with pytest.raises(ExperimentError, match=f"{tmp_path / 'runs' / trained_dir.name / 'last.pt'} is not a qattn checkpoint, or a damaged one .* then run qattn compare again"):
        run_grid(load_config(QUICKSTART, overrides), "test")


def test_compare_leaves_the_checkpoint_of_a_qattn_train_run_alone(trained, tmp_path, monkeypatch):
    overrides, trained_dir, run_id = trained
    monkeypatch.chdir(tmp_path)
    overrides = [*overrides, f"train.output_dir={tmp_path / 'runs'}", "compare.kinds=['fidelity', 'dot']", "compare.seeds=[0]"]
    run_dir = tmp_path / "runs" / trained_dir.name  # the grid's first cell is the trained run's config
    shutil.copytree(trained_dir, run_dir)
    saved = {path.name: path.read_bytes() for path in run_dir.iterdir()}
    before = runs_in(overrides)

    with pytest.raises(ExperimentError) as refused:
        run_grid(load_config(QUICKSTART, overrides), "test")
    assert str(refused.value).startswith("qattn compare would overwrite checkpoints that are not this grid's:\n")
    assert f"  - {run_dir} holds the checkpoint of MLflow run {run_id}, a `qattn train` run\n" in str(refused.value)
    assert {path.name: path.read_bytes() for path in run_dir.iterdir()} == saved
    assert len(runs_in(overrides)) == len(before)  # no grid parent run, no cell run


@pytest.mark.parametrize("key", ["train.output_dir", "tokenizer.cache_dir"])
@pytest.mark.parametrize("where", ["under /proc", "an existing file"])
def test_a_folder_that_cannot_be_written_stops_the_run_before_anything_starts(tiny, tmp_path, key, where):
    target = "/proc/qattn-test/runs" if where == "under /proc" else str(tmp_path / "a-file")
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(ConfigError, match=f"^{key} = '{target}' cannot be written .*--set {key}=PATH"):
        run_experiment(load_config(QUICKSTART, [*tiny, f"{key}={target}"]))
    assert not (tmp_path / "mlflow.db").exists()  # no store, no run

    result = CliRunner().invoke(main, ["train", str(QUICKSTART), *[a for o in [*tiny, f"{key}={target}"] for a in ("--set", o)]])
    assert result.exit_code == 1 and f"Error: {key} = " in result.output and "Traceback" not in result.output


def test_qattn_train_waits_for_nobody_holding_its_run_folder(tiny, tmp_path):
    config = load_config(QUICKSTART, tiny)
    with folder_lock(checkpoint_dir(config)) as holder:  # as a qattn compare training this cell would
        assert holder is None
        with pytest.raises(ExperimentError, match=rf"another qattn process is training this run in .* \(pid {os.getpid()} on "):
            run_experiment(config)
    assert not (tmp_path / "mlflow.db").exists()


def test_a_run_begun_before_epochs_counted_from_1_keeps_its_numbering_when_resumed(trained, tmp_path, monkeypatch):
    overrides, trained_dir, run_id = trained
    monkeypatch.chdir(tmp_path)
    overrides = [*overrides, f"train.output_dir={tmp_path / 'runs'}"]
    run_dir = tmp_path / "runs" / trained_dir.name
    shutil.copytree(trained_dir, run_dir)
    client = mlflow.MlflowClient(load_config(QUICKSTART, overrides).tracking.uri)
    old = client.create_run(client.get_run(run_id).info.experiment_id, run_name="logged-by-older-qattn")  # no epoch tag
    client.log_metric(old.info.run_id, "dev/accuracy", 0.5, step=0)
    payload = torch.load(run_dir / "last.pt", weights_only=True)
    payload["mlflow_run_id"] = old.info.run_id
    payload["state"].update(epoch=1, best_epoch=0, history=payload["state"]["history"][:1], stopped_early=False)
    torch.save(payload, run_dir / "last.pt")

    result = run_experiment(load_config(QUICKSTART, overrides), resume=True)
    assert result.run_id == old.info.run_id
    assert sorted(p.step for p in client.get_metric_history(old.info.run_id, "dev/accuracy")) == [0, 1]  # its second epoch
    run = client.get_run(old.info.run_id)
    assert "qattn_epochs_from" not in run.data.tags and run.data.metrics["best_epoch"] == result.best_epoch - 1
