"""A real ``mlflow server`` for tests, in its own process group so that stopping it stops its workers too.

    url, process = start_mlflow_server(folder)   # returns once /health answers
    ...
    stop_process_group(process)                   # the mlflow parent and its uvicorn worker

Start-up waits as long as the server process is alive (a loaded machine makes a test slower, not red)
and fails at once, with the server's log, when it exits.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

START_CEILING = 600  # seconds: only a server that is alive but never answers meets this


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mlflow_server(folder: Path, store_uri: str | None = None) -> tuple[str, subprocess.Popen]:
    """``mlflow server`` on a free port of 127.0.0.1 with its store (default: SQLite), artifacts and log
    (``server.log``) in ``folder``; returns its URL and process once it answers ``/health``."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    mlflow_cli = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    log = folder / "server.log"
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            [mlflow_cli, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
             "--backend-store-uri", store_uri or f"sqlite:///{folder / 'store.db'}",
             "--artifacts-destination", str(folder / "artifacts")],
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, stdout=subprocess.DEVNULL, stderr=stderr,
            start_new_session=True,  # its own process group: see stop_process_group
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            return url, process
        except OSError:
            if process.poll() is not None:
                stop_process_group(process)  # a worker may outlive its parent
                pytest.fail(f"mlflow server exited with {process.returncode} before answering: {log.read_text()[-2000:]}")
            if time.monotonic() - started > START_CEILING:
                stop_process_group(process)
                pytest.fail(f"mlflow server was alive but did not answer in {START_CEILING} s: {log.read_text()[-2000:]}")
            time.sleep(0.5)


def group_alive(process: subprocess.Popen) -> bool:
    """Whether any process of ``process``'s group (it leads it) is left, the parent reaped first."""
    process.poll()
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_process_group(process: subprocess.Popen, timeout: float = 30) -> None:
    """Terminate every process of the group ``process`` leads (started with ``start_new_session=True``),
    then kill what is left after ``timeout`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + timeout
        while group_alive(process) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not group_alive(process):
            break
    process.wait(timeout=timeout)
