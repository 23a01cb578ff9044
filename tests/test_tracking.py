"""A real MLflow server on 127.0.0.1 receives a run with params, metrics and artifacts."""

from pathlib import Path

import mlflow
import pytest
import torch
from click.testing import CliRunner

from qattn.cli import main
from qattn.config import load_config
from qattn.experiment import run_experiment
from qattn.tracking import TrackingError, connect
from tests.conftest import QUICKSTART, free_port


def test_a_run_lands_on_a_real_tracking_server(mlflow_server, tiny, tmp_path, monkeypatch):
    config = load_config(QUICKSTART, [*tiny, f"tracking.uri={mlflow_server}", "tracking.experiment=server-test"])
    result = run_experiment(config)

    runs = mlflow.search_runs(experiment_names=["server-test"], output_format="list")
    assert [run.info.run_id for run in runs] == [result.run_id]
    run = runs[0]
    assert run.info.run_name == "synthetic-quantum-fidelity-q2-h2-s0" == result.run_name
    assert run.data.params["model.attention"] == "quantum" and run.data.params["model.n_qubits"] == "2"
    assert int(run.data.params["parameters.quantum"]) == result.parameters["quantum"] > 0
    assert run.data.params["version.torch"] == torch.__version__
    assert len(run.data.tags["git_commit"]) in (40, len("unknown"))
    assert run.data.metrics["test/accuracy"] == pytest.approx(result.test.accuracy)
    client = mlflow.MlflowClient(mlflow_server)
    assert len(client.get_metric_history(result.run_id, "dev/macro_f1")) == 2  # one per epoch
    assert client.get_metric_history(result.run_id, "train/loss")

    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    artifacts |= {a.path for folder in ("attention", "circuits", "checkpoints") for a in client.list_artifacts(result.run_id, folder)}
    for expected in ("config.toml", "confusion_matrix.png", "learning_curves.png", "attention/dev_doc_0.png",
                     "circuits/feature_map.txt", "circuits/feature_map.qasm", "checkpoints/best.pt"):
        assert expected in artifacts
    assert any(path.endswith("_head1_key.qasm") for path in artifacts)

    checkpoint = Path(mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path="checkpoints/best.pt", dst_path=str(tmp_path)))
    payload = torch.load(checkpoint, weights_only=True)
    assert payload["mlflow_run_id"] == result.run_id and 'attention = "quantum"' in payload["config"]

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    evaluated = CliRunner().invoke(main, ["evaluate", result.run_id])
    assert evaluated.exit_code == 0, evaluated.output
    assert f"accuracy {result.test.accuracy:.4f}" in evaluated.output


def test_an_unreachable_server_is_named_with_the_fix(tiny):
    config = load_config(QUICKSTART, [*tiny, f"tracking.uri=http://127.0.0.1:{free_port()}"])
    with pytest.raises(TrackingError, match=r"cannot reach the MLflow tracking store at http://127.0.0.1:\d+ .*mlflow server"):
        connect(config)
    result = CliRunner().invoke(main, ["train", str(QUICKSTART), *[a for o in config_overrides(config) for a in ("--set", o)]])
    assert result.exit_code == 1
    assert "Error: cannot reach the MLflow tracking store" in result.output and "Traceback" not in result.output


def config_overrides(config):
    return [f"tracking.uri={config.tracking.uri}", f"train.output_dir={config.train.output_dir}"]
