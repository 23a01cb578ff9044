"""Epoch time is the epoch's own work: time spent handing metrics to a tracking store that waits is its own metric."""

import re
import time

import pytest
import torch

from qattn.config import load_config
from qattn.model import build_model
from qattn.trainer import EncodedSplit, Trainer
from tests.conftest import QUICKSTART

WAIT = 1.5  # seconds each log call takes, as a tracking store that does not answer at once


def test_epoch_seconds_leave_out_the_waits_for_the_tracking_store(tiny, tmp_path, capsys):
    config = load_config(QUICKSTART, [*tiny, "model.attention=classical", "train.epochs=2", "train.log_every=2"])
    generator = torch.Generator().manual_seed(0)
    ids = [torch.randint(3, 50, (12,), generator=generator).tolist() for _ in range(16)]
    train, dev = EncodedSplit(ids, [i % 2 for i in range(16)]), EncodedSplit(ids[:4], [0, 1, 0, 1])
    model = build_model(config.model, 50, 2)
    calls = []

    def waiting_log(metrics, step):  # what tracking.patiently does while the store is away
        calls.append(sorted(metrics))
        time.sleep(WAIT)

    trainer = Trainer(model, train, dev, 2, config.train, tmp_path / "run", {}, log=waiting_log)
    started = time.perf_counter()
    state = trainer.fit()
    total = time.perf_counter() - started

    assert len(calls) == 4  # per epoch: one step's metrics (2 batches, log_every 2), then the epoch's record
    first, second = state.history
    # The epochs' own time and the four waits are disjoint parts of fit's time, however fast the machine;
    # docs and tokens per second divide by an epoch's own time.
    assert first["epoch/seconds"] + second["epoch/seconds"] + 4 * WAIT <= total
    for record in (first, second):
        assert 16 / record["epoch/docs_per_s"] == pytest.approx(record["epoch/seconds"])
        assert 16 * 12 / record["epoch/tokens_per_s"] == pytest.approx(record["epoch/seconds"])
    assert WAIT <= first["epoch/tracking_wait_s"] < 2 * WAIT  # epoch 1's step metrics
    assert 2 * WAIT <= second["epoch/tracking_wait_s"] < 3 * WAIT  # epoch 1's record, then epoch 2's step metrics
    assert "epoch/tracking_wait_s" in calls[1] and "epoch/tracking_wait_s" in calls[3]
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("epoch ")]
    assert re.fullmatch(r"epoch 1/2: .*, \d+\.\d s \(\+1\.\d s waiting for the tracking store\)(, best so far)?",
                        lines[0]), lines
