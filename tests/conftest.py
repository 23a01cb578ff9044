import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.servers import free_port, start_mlflow_server, stop_process_group  # noqa: F401 - tests import free_port here

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


def hardware_overrides(folder: Path) -> tuple[str, list[str]]:
    """(store URI, overrides) of a quantum model small enough for the IBM cycle on a fake device, with every
    file under ``folder``: 2 qubits, 2 heads, documents of <= 24 tokens, one epoch."""
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    return uri, [
        "data.synthetic.train_docs=32", "data.synthetic.dev_docs=10", "data.synthetic.test_docs=10",
        "data.synthetic.min_words=12", "data.synthetic.max_words=20", "data.synthetic.vocab=50",
        "tokenizer.vocab_size=300", "model.embed_dim=8", "model.num_heads=2", "model.ff_dim=16", "model.n_qubits=2",
        "model.chunk_size=12", "model.max_length=24", "train.epochs=1", "train.batch_size=8",
        "tracking.system_metrics=false", "tracking.attention_maps=0", f"train.output_dir={folder / 'runs'}",
        f"tokenizer.cache_dir={folder / 'tokenizers'}", f"tracking.uri={uri}",
    ]


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """:func:`tiny_overrides` in tmp_path, the working directory too (MLflow puts a SQLite store's
    artifacts under ./mlruns)."""
    monkeypatch.chdir(tmp_path)
    return tiny_overrides(tmp_path)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real ``mlflow server`` for the whole session (:func:`tests.servers.start_mlflow_server`); yields its URL."""
    url, process = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"))
    yield url
    stop_process_group(process)


HEAVY = ("torch", "pennylane", "qiskit", "qiskit_aer", "qiskit_ibm_runtime", "mlflow", "matplotlib")
LIGHT_CLI = f"""
import json, sys
try:
    from qattn.cli import main
    main(sys.argv[1:], prog_name="qattn")
finally:
    print("heavy modules:", json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)), file=sys.stderr)
"""


def run_cli_light(args: list[str], **kwargs) -> tuple[subprocess.CompletedProcess, list[str]]:
    """``qattn ARGS`` in a fresh interpreter; returns the finished process and the heavy libraries (:data:`HEAVY`) it imported."""
    out = subprocess.run([sys.executable, "-c", LIGHT_CLI, *args], capture_output=True, text=True, timeout=120, **kwargs)
    *stderr, last = out.stderr.rstrip("\n").split("\n")
    assert last.startswith("heavy modules: "), out.stderr[-3000:]
    heavy = json.loads(last.split(": ", 1)[1])
    return subprocess.CompletedProcess(out.args, out.returncode, out.stdout, "\n".join(stderr)), heavy


@pytest.fixture
def no_network(monkeypatch):
    """Any socket connection or name lookup fails, and the test fails if one was tried (IBM's local testing mode
    must stay offline)."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access refused by the test")

    for owner, name in [(socket.socket, "connect"), (socket.socket, "connect_ex"), (socket, "getaddrinfo"),
                        (socket, "create_connection")]:
        monkeypatch.setattr(owner, name, refuse)
    yield attempts
    assert attempts == [], f"a test reached for the network: {attempts}"
