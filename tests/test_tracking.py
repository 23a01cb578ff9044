"""A real MLflow server on 127.0.0.1 receives a run with params, metrics and artifacts; a password in
the tracking URI is used to connect and stored or printed nowhere; a server that goes away mid-run is
waited for, with notices, and then named, with nothing lost."""

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import mlflow
import pytest
import torch
from click.testing import CliRunner
from mlflow.utils.credentials import read_mlflow_creds

from qattn.cli import main
from qattn.config import load_config
from qattn.experiment import run_experiment
from qattn.identity import checkpoint_dir
from qattn.tracking import StoreUnreachable, TrackingError, connect
from qattn.uris import mask_uri
from tests.conftest import QUICKSTART, free_port
from tests.servers import start_mlflow_server, stop_process_group


@pytest.fixture
def credentials_restored(monkeypatch):
    """A URI's user and password go to MLflow's variables of this process: restored afterwards."""
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def with_password(url: str) -> str:
    return url.replace("http://", "http://user:secret@")


def test_a_run_lands_on_a_real_tracking_server(mlflow_server, tiny, tmp_path, monkeypatch, capfd, credentials_restored):
    config = load_config(QUICKSTART, [*tiny, f"tracking.uri={with_password(mlflow_server)}", "tracking.experiment=server-test"])
    result = run_experiment(config)
    assert (read_mlflow_creds().username, read_mlflow_creds().password) == ("user", "secret")  # what MLflow sends

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

    monkeypatch.setenv("MLFLOW_TRACKING_URI", with_password(mlflow_server))
    scratch = set(Path(tempfile.gettempdir()).iterdir())
    evaluated = CliRunner().invoke(main, ["evaluate", result.run_id])
    assert evaluated.exit_code == 0, evaluated.output
    assert f"accuracy {result.test.accuracy:.4f}" in evaluated.output
    assert f"synthetic test with runs:/{result.run_id}/checkpoints/best.pt:" in evaluated.output  # no temporary path
    assert set(Path(tempfile.gettempdir()).iterdir()) <= scratch  # and nothing left behind

    # The password is nowhere: params, tags, artifacts, checkpoints, console, the result.
    assert run.data.params["tracking.uri"] == mask_uri(with_password(mlflow_server)) == mlflow_server.replace("http://", "http://user:***@")
    assert not [v for v in [*run.data.params.values(), *run.data.tags.values()] if "secret" in v]
    everything = Path(mlflow.artifacts.download_artifacts(run_id=result.run_id, dst_path=str(tmp_path / "all")))
    files = [*everything.rglob("*"), *(tmp_path / "runs").rglob("*")]
    assert len([f for f in files if f.is_file()]) > 10
    assert not [f for f in files if f.is_file() and b"secret" in f.read_bytes()]
    assert "user:***@" in torch.load(next((tmp_path / "runs").rglob("last.pt")), weights_only=True)["config"]
    console = capfd.readouterr()
    assert "View run" in console.out and "secret" not in console.out + console.err + evaluated.output
    assert "secret" not in result.tracking_uri


def test_an_unreachable_server_is_named_with_the_fix(tiny, credentials_restored):
    config = load_config(QUICKSTART, [*tiny, f"tracking.uri=http://user:secret@127.0.0.1:{free_port()}"])
    with pytest.raises(TrackingError, match=r"cannot reach the MLflow tracking store at http://127.0.0.1:\d+ .*mlflow server") as err:
        connect(config)
    assert "secret" not in str(err.value)
    result = CliRunner().invoke(main, ["train", str(QUICKSTART), *[a for o in config_overrides(config) for a in ("--set", o)]])
    assert result.exit_code == 1
    assert "Error: cannot reach the MLflow tracking store" in result.output and "Traceback" not in result.output
    assert "secret" not in result.output


def test_a_server_gone_mid_run_is_waited_for_then_named_and_evaluate_says_so_at_once(tiny, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("QATTN_TRACKING_WAIT", "3")
    url, server = start_mlflow_server(tmp_path / "server")
    try:
        config = load_config(QUICKSTART, [*tiny, f"tracking.uri={url}", "train.epochs=30", "train.patience=30", "train.checkpoint_every=1"])
        run_dir = checkpoint_dir(config)

        def stop_the_server_once_training_runs():
            while not (run_dir / "last.pt").exists() and server.poll() is None:
                time.sleep(0.02)
            os.killpg(server.pid, signal.SIGKILL)  # the whole server, at once

        threading.Thread(target=stop_the_server_once_training_runs, daemon=True).start()
        with pytest.raises(StoreUnreachable) as lost:
            run_experiment(config)
    finally:
        stop_process_group(server)

    message = str(lost.value)
    assert message.startswith(f"the MLflow tracking store at {url} did not answer for ")
    assert f"nothing is lost: the checkpoints are in {run_dir}" in message and "--resume continues from last.pt" in message
    assert mlflow.active_run() is None  # forgotten here; the store, when back, has it RUNNING for --resume
    assert torch.load(run_dir / "last.pt", weights_only=True)["state"]["unlogged"]  # what the store did not take
    console = capfd.readouterr().err
    assert f"qattn: the MLflow tracking store at {url} is unreachable (" in console
    assert "qattn waits and retries for up to 3 s ($QATTN_TRACKING_WAIT sets how long)" in console

    started = time.monotonic()
    evaluated = CliRunner().invoke(main, ["evaluate", "0123456789abcdef0123456789abcdef", "--tracking-uri", url])
    assert evaluated.exit_code == 1 and "Traceback" not in evaluated.output
    assert f"Error: cannot reach the MLflow tracking store at {url}" in evaluated.output
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("store", ["read-only file", "read-only connection"])
def test_a_store_that_takes_no_writes_is_named_before_anything_starts(tiny, tmp_path, store):
    database = tmp_path / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{database}").create_experiment("quickstart")  # nothing left for qattn to create
    if store == "read-only file":
        if os.geteuid() == 0:
            pytest.skip("root writes a read-only file anyway; the read-only connection is the same store for root")
        database.chmod(0o444)
        uri = f"sqlite:///{database}"
    else:
        uri = f"sqlite:///file:{database}?mode=ro&uri=true"  # SQLite opens it read-only, whoever runs
    sets = [a for setting in [*tiny, f"tracking.uri={uri}", "model.attention=classical"] for a in ("--set", setting)]
    out = subprocess.run([sys.executable, "-m", "qattn.cli", "train", str(QUICKSTART), *sets],
                         check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1, out.stderr  # one message, no traceback
    assert out.stderr.startswith(f"Error: the MLflow tracking store at {uri} takes no writes (")
    assert "attempt to write a readonly database" in out.stderr
    assert f"make {database} and its folder writable, or set tracking.uri" in out.stderr
    assert not [path for path in (tmp_path / "runs").iterdir() if path.is_dir()]  # no run folder (a lock file is none)
    experiment = mlflow.MlflowClient(f"sqlite:///{database}").get_experiment_by_name("quickstart").experiment_id
    assert mlflow.MlflowClient(f"sqlite:///{database}").search_runs([experiment]) == []


def config_overrides(config):
    return [f"tracking.uri={config.tracking.uri}", f"train.output_dir={config.train.output_dir}"]


def test_an_experiment_qattn_creates_keeps_its_artifacts_where_the_config_says(tmp_path, capfd):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    settings = [f"tracking.uri={store}", "tracking.experiment=placed", f"tracking.artifacts={tmp_path / 'artifacts'}"]
    connect(load_config(QUICKSTART, settings))
    assert mlflow.get_experiment_by_name("placed").artifact_location == (tmp_path / "artifacts").as_uri()
    connect(load_config(QUICKSTART, [*settings[:2], f"tracking.artifacts={tmp_path / 'elsewhere'}"]))
    assert "exists, with its artifacts at" in capfd.readouterr().err  # an existing experiment keeps its place
    assert mlflow.get_experiment_by_name("placed").artifact_location == (tmp_path / "artifacts").as_uri()
