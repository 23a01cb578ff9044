import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch

QUICKSTART = Path(__file__).resolve().parents[1] / "experiments" / "quickstart.toml"


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same random state."""
    torch.manual_seed(1234)
    yield


def tiny_overrides(folder: Path) -> list[str]:
    """Overrides that shrink the quickstart experiment to seconds, with every file under ``folder``."""
    return [
        "data.synthetic.train_docs=64",
        "data.synthetic.dev_docs=16",
        "data.synthetic.test_docs=16",
        "data.synthetic.min_words=40",
        "data.synthetic.max_words=80",
        "data.synthetic.vocab=50",
        "tokenizer.vocab_size=300",
        "model.embed_dim=8",
        "model.num_heads=2",
        "model.ff_dim=16",
        "model.chunk_size=16",
        "model.n_qubits=2",
        "train.epochs=2",
        "train.batch_size=8",
        "tracking.system_metrics=false",
        "tracking.attention_maps=1",
        f"train.output_dir={folder / 'runs'}",
        f"tokenizer.cache_dir={folder / 'tokenizers'}",
        f"tracking.uri=sqlite:///{folder / 'mlflow.db'}",
    ]


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """:func:`tiny_overrides` in tmp_path, the working directory too (MLflow puts a SQLite store's
    artifacts under ./mlruns)."""
    monkeypatch.chdir(tmp_path)
    return tiny_overrides(tmp_path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    mlflow_cli = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(
        [mlflow_cli, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{folder / 'store.db'}", "--artifacts-destination", str(folder / "artifacts")],
        env=env, stdout=subprocess.DEVNULL, stderr=open(folder / "server.log", "w"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"mlflow server did not start: {(folder / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
    yield url
    server.terminate()
    server.wait(timeout=30)
