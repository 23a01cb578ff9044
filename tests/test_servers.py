"""The test suite's own `mlflow server` helper: stopping it stops every process it started, and a
server that cannot start fails the test at once with its log."""

import urllib.request
from pathlib import Path

import pytest

from tests.servers import group_alive, start_mlflow_server, stop_process_group


def group_members(pgid: int) -> list[str]:
    """Command lines of the live processes in process group ``pgid``."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
    return members


def test_a_stopped_server_leaves_no_worker_serving(tmp_path):
    url, process = start_mlflow_server(tmp_path)
    assert len(group_members(process.pid)) >= 2, group_members(process.pid)  # mlflow and its uvicorn worker
    stop_process_group(process)
    assert not group_alive(process), group_members(process.pid)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/health", timeout=2)


def test_a_server_that_exits_fails_at_once_with_its_log(tmp_path):
    with pytest.raises(pytest.fail.Exception, match="exited with 1 before answering(.|\n)*No such file or directory: '/proc/nope'"):
        start_mlflow_server(tmp_path, store_uri="sqlite:////proc/nope/store.db")
