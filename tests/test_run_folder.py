"""Two `qattn train` of one config at once, as real processes: the second is refused before it opens an
MLflow run and names the process holding the run folder; the first, its output to a pipe, prints one
line per epoch, counting epochs from 1 as MLflow and the reports do."""

import os
import re
import signal
import socket
import subprocess
import time

from mlflow.tracking import MlflowClient

from tests.test_resume import train_command

EPOCH_LINE = re.compile(  # the wait for the tracking store shows when it is a second or more
    r"^epoch (\d+)/3: train loss \d+\.\d{4}, dev accuracy \d\.\d{4}, macro-F1 \d\.\d{4}, \d+\.\d s"
    r"( \(\+\d+\.\d s waiting for the tracking store\))?(, best so far)?$"
)


def test_a_second_training_of_a_run_is_refused_and_the_first_reports_each_epoch(tmp_path, tiny):
    overrides = tiny + ["train.epochs=3", "train.patience=3"]
    first = subprocess.Popen(train_command(overrides), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not any(f"pid {first.pid} " in lock.read_text() for lock in (tmp_path / "runs").glob("*.lock")):
        assert first.poll() is None, first.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the first training took no lock"
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGSTOP)  # holding its run folder, whatever it does next
    try:
        second = subprocess.run(train_command(overrides), capture_output=True, text=True, timeout=240)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    out, err = first.communicate(timeout=240)

    assert second.returncode == 1 and "Traceback" not in second.stderr, second.stderr[-3000:]
    assert "another qattn process is training this run in " in second.stderr
    assert f"(pid {first.pid} on {socket.gethostname()} since " in second.stderr

    assert first.returncode == 0, err[-3000:]
    lines = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert [int(EPOCH_LINE.match(line).group(1)) for line in lines] == [1, 2, 3], err
    best = max(int(EPOCH_LINE.match(line).group(1)) for line in lines if line.endswith("best so far"))

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("quickstart").experiment_id])  # none from the refused one
    assert run.info.status == "FINISHED" and run.info.run_id in out
    assert run.data.metrics["best_epoch"] == best and run.data.tags["qattn_epochs_from"] == "1"
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "dev/accuracy")) == [1, 2, 3]
