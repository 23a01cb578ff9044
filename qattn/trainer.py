"""One training loop for both attention kinds.

AdamW with linear warm-up and linear decay, gradient clipping, length-bucketed batches with padding
masks, evaluation on dev every epoch (loss, accuracy, macro-F1), early stopping on dev macro-F1,
best and last checkpoints, and exact resumption: the batch order of an epoch is a function of
(seed, epoch), and a checkpoint carries the optimiser, schedule and RNG states, so a run killed at
any point and resumed from its last checkpoint ends where an uninterrupted run ends.

Each epoch ends with one line on stderr (epoch k/K, train loss, dev accuracy and macro-F1, seconds, the
wait for the tracking store apart (:class:`Trainer`), and whether it is the best so far), wherever output
goes; progress bars show only on a terminal. Epochs count from 1 wherever a user sees them (these lines,
MLflow's epoch metrics, reports); the state in a checkpoint keeps its 0-based epoch index.

Under torchrun (:mod:`qattn.distributed`) each rank computes its slice of every global batch, the
model is wrapped in DistributedDataParallel, and rank 0 alone writes checkpoints; a checkpoint holds
no world size, so it resumes with any.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, f1_score
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from qattn.config import TrainConfig
from qattn.distributed import Ranks
from qattn.kernels import QuantumKernel
from qattn.model import PAD_ID, TextClassifier


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Metrics:
    loss: float
    accuracy: float
    macro_f1: float
    confusion: list[list[int]]
    predictions: list[int] = field(default_factory=list)  # per document, in the split's order

    def scalars(self, prefix: str) -> dict[str, float]:
        loss = {} if math.isnan(self.loss) else {f"{prefix}/loss": self.loss}
        return {**loss, f"{prefix}/accuracy": self.accuracy, f"{prefix}/macro_f1": self.macro_f1}


@dataclass
class EncodedSplit:
    ids: list[list[int]]
    labels: list[int]


@dataclass
class TrainState:
    """Everything besides tensors that a resumed run needs; stored in the checkpoint."""

    epoch: int = 0  # the epoch in progress (or next to start), from 0
    step_in_epoch: int = 0  # batches of that epoch already done
    epoch_loss_sum: float = 0.0  # summed training loss of those batches
    global_step: int = 0
    best_f1: float = -1.0
    best_epoch: int = -1  # from 0, like epoch
    stale_epochs: int = 0
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list)
    unlogged: list[tuple[dict[str, float], int]] = field(default_factory=list)  # (metrics, step) to log on resume


def bucketed_batches(lengths: list[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Shuffled batches of similar-length documents (little padding), reproducible from (seed, epoch)."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for start in range(0, len(order), pool):
        by_length = sorted(order[start : start + pool], key=lengths.__getitem__)
        batches += [by_length[i : i + batch_size] for i in range(0, len(by_length), batch_size)]
    rng.shuffle(batches)
    return batches


def pad_batch(ids: list[list[int]], indices: list[int]) -> torch.Tensor:
    longest = max(len(ids[i]) for i in indices)
    batch = torch.full((len(indices), longest), PAD_ID, dtype=torch.long)
    for row, i in enumerate(indices):
        batch[row, : len(ids[i])] = torch.tensor(ids[i], dtype=torch.long)
    return batch


def labels_of(split: EncodedSplit, indices: list[int], device: torch.device) -> torch.Tensor:
    return torch.tensor([split.labels[i] for i in indices], device=device)


@torch.no_grad()
def evaluate(model: TextClassifier, split: EncodedSplit, num_classes: int, batch_size: int, ranks: Ranks = Ranks()) -> Metrics:
    """Loss, accuracy, macro-F1 and confusion of ``split``; with several ranks each scores its share
    of the documents and all get the metrics of the whole split."""
    model.eval()
    order = ranks.shard(sorted(range(len(split.ids)), key=lambda i: len(split.ids[i])))
    mine, loss_sum = {}, 0.0
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        logits = model(pad_batch(split.ids, indices).to(ranks.device)).logits
        loss_sum += nn.functional.cross_entropy(logits, labels_of(split, indices, ranks.device), reduction="sum").item()
        mine.update(zip(indices, logits.argmax(-1).tolist()))
    predictions = [0] * len(split.ids)
    for part in ranks.gather(mine):
        for i, p in part.items():
            predictions[i] = p
    (total_loss,) = ranks.sum(loss_sum)
    return metrics_of(split.labels, predictions, num_classes, loss=total_loss / len(split.ids))


def metrics_of(labels: list[int], predictions: list[int], num_classes: int, loss: float = math.nan) -> Metrics:
    """Accuracy, macro-F1 and confusion of ``predictions``; ``loss`` NaN for a model without one (not logged)."""
    classes = list(range(num_classes))
    return Metrics(
        loss=loss,
        accuracy=float(np.mean(np.array(predictions) == np.array(labels))),
        macro_f1=float(f1_score(labels, predictions, labels=classes, average="macro", zero_division=0)),
        confusion=confusion_matrix(labels, predictions, labels=classes).tolist(),
        predictions=predictions,
    )


def warmup_then_linear_decay(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    warmup = max(1, math.ceil(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


def save_atomically(payload: dict[str, Any], path: Path) -> None:
    """A kill during the write leaves the previous file intact."""
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


class TimedLog:
    """A ``log(metrics, step)`` callback that sums the seconds spent in it: handing metrics to the tracking
    store, and waiting for it while it does not answer (:func:`qattn.tracking.patiently`)."""

    def __init__(self, log: Callable[[dict[str, float], int], None]) -> None:
        self.log, self.seconds = log, 0.0

    def __call__(self, metrics: dict[str, float], step: int) -> None:
        started = time.perf_counter()
        try:
            self.log(metrics, step)
        finally:
            self.seconds += time.perf_counter() - started


def wait_note(seconds: float) -> str:
    """The epoch line's mention of the time spent in the tracking store, when it is a second or more (a
    store that answers at once takes hundredths)."""
    return f" (+{seconds:.1f} s waiting for the tracking store)" if seconds >= 1 else ""


class Trainer:
    """Trains ``model`` on ``train``, selects on ``dev``; ``log`` receives metrics as they happen, epoch
    metrics at step ``first_epoch + epoch index`` (1, or 0 for an MLflow run begun before epochs counted from 1).

    The time spent in ``log`` is no epoch's work, and no throughput's: each epoch's record holds

    - ``epoch/seconds``: the epoch's training steps (after a resume, those left), less the time spent in
      ``log`` meanwhile (dev evaluation is not in it, as it never was: speeds of earlier runs compare);
    - ``epoch/docs_per_s``, ``epoch/tokens_per_s``: the training documents and tokens of those steps per
      second of them;
    - ``epoch/tracking_wait_s``: the seconds spent in ``log`` since the previous epoch's record was made:
      this epoch's step metrics and the previous epoch's record (for the first epoch of a call to
      :meth:`fit`, the metrics a stopped run had not logged). The last record's own logging is in none.
    """

    def __init__(
        self,
        model: TextClassifier,
        train: EncodedSplit,
        dev: EncodedSplit,
        num_classes: int,
        config: TrainConfig,
        run_dir: Path,
        checkpoint_extra: dict[str, Any],
        log: Callable[[dict[str, float], int], None] = lambda metrics, step: None,
        ranks: Ranks = Ranks(),
        first_epoch: int = 1,
    ) -> None:
        self.model, self.train, self.dev, self.ranks, self.first_epoch = model, train, dev, ranks, first_epoch
        # DDP averages gradients over ranks in backward (quantum kernel parameters like any other)
        # and starts every rank from rank 0's weights.
        self.step_model = DistributedDataParallel(model) if ranks.distributed else model
        self.num_classes, self.config, self.run_dir = num_classes, config, run_dir
        self.checkpoint_extra, self.log = checkpoint_extra, TimedLog(log)
        self.lengths = [len(ids) for ids in train.ids]
        self.steps_per_epoch = math.ceil(len(train.ids) / config.batch_size)
        # No weight decay on norms, biases, or a quantum kernel's angles, input scales and temperatures.
        quantum = {id(p) for m in model.modules() if isinstance(m, QuantumKernel) for p in m.parameters()}
        decay, no_decay = [], []
        for p in model.parameters():
            (no_decay if p.ndim < 2 or id(p) in quantum else decay).append(p)
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=config.lr,
        )
        schedule = warmup_then_linear_decay(self.steps_per_epoch * config.epochs, config.warmup_fraction)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self.state = TrainState()
        if ranks.distributed:  # the same initial weights everywhere, a dropout stream of each rank's own
            torch.manual_seed(ranks.dropout_seed(config.seed))
        run_dir.mkdir(parents=True, exist_ok=True)

    @property
    def last_path(self) -> Path:
        return self.run_dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.run_dir / "best.pt"

    def fit(self) -> TrainState:
        state, config, logged = self.state, self.config, self.log
        recorded = logged.seconds  # time in log when the previous epoch's record was made
        while state.unlogged:  # what the tracking store did not take before the run stopped (see record)
            self.log(*state.unlogged[0])
            state.unlogged.pop(0)
        while state.epoch < config.epochs and not state.stopped_early:
            started, waited = time.perf_counter(), logged.seconds
            train_loss, docs, tokens = self.train_epoch()
            seconds = time.perf_counter() - started - (logged.seconds - waited)
            dev = evaluate(self.model, self.dev, self.num_classes, config.batch_size, self.ranks)
            record = {
                "epoch": state.epoch,
                "train/epoch_loss": train_loss,
                **dev.scalars("dev"),
                "epoch/seconds": seconds,
                "epoch/docs_per_s": docs / seconds,
                "epoch/tokens_per_s": tokens / seconds,
                "epoch/tracking_wait_s": logged.seconds - recorded,
            }
            recorded = logged.seconds
            state.history.append(record)
            best = dev.macro_f1 > state.best_f1
            if best:
                state.best_f1, state.best_epoch, state.stale_epochs = dev.macro_f1, state.epoch, 0
                self.save(self.best_path)
            else:
                state.stale_epochs += 1
                state.stopped_early = state.stale_epochs >= config.patience
            if self.ranks.main:  # before logging, which may wait for the tracking store
                print(
                    f"epoch {state.epoch + 1}/{config.epochs}: train loss {train_loss:.4f}, "
                    f"dev accuracy {dev.accuracy:.4f}, macro-F1 {dev.macro_f1:.4f}, "
                    f"{seconds:.1f} s{wait_note(record['epoch/tracking_wait_s'])}"
                    f"{', best so far' if best else ''}{', stopping early' if state.stopped_early else ''}",
                    file=sys.stderr, flush=True,
                )
            step = state.epoch + self.first_epoch
            state.epoch, state.step_in_epoch, state.epoch_loss_sum = state.epoch + 1, 0, 0.0
            self.record({k: v for k, v in record.items() if k != "epoch"}, step)
            self.save(self.last_path)
        self.ranks.barrier()  # rank 0's checkpoints are on disk before any rank reads them
        return state

    def record(self, metrics: dict[str, float], step: int) -> None:
        """``log(metrics, step)``. When that fails (a tracking store gone for good), the metrics stay in
        the state, ``last.pt`` saves it, and a resumed run logs them first: nothing is lost."""
        try:
            self.log(metrics, step)
        except Exception:
            self.state.unlogged.append((metrics, step))
            self.save(self.last_path)
            raise

    def train_epoch(self) -> tuple[float, int, int]:
        """One epoch (or its remainder after a resume): the epoch's mean loss, and the documents and
        tokens this call saw (for throughput)."""
        state, config, ranks = self.state, self.config, self.ranks
        batches = bucketed_batches(self.lengths, config.batch_size, config.seed, state.epoch)
        self.model.train()
        docs, tokens = 0, 0
        started = time.perf_counter()
        progress = tqdm(
            batches, initial=state.step_in_epoch, desc=f"epoch {state.epoch + 1}/{config.epochs}", unit="batch",
            disable=None if ranks.main else True, leave=False,
        )
        for indices in batches[state.step_in_epoch :]:
            # This rank's documents of the global batch; a rank left without one (a batch smaller than
            # the world) still joins the gradient all-reduce, on one document at weight 0.
            mine = ranks.shard(indices)
            weight = ranks.world_size / len(indices) if mine else 0.0
            mine = mine or indices[:1]
            logits = self.step_model(pad_batch(self.train.ids, mine).to(ranks.device)).logits
            loss_sum = nn.functional.cross_entropy(
                logits, labels_of(self.train, mine, ranks.device), reduction="sum", label_smoothing=config.label_smoothing
            )
            self.optimizer.zero_grad(set_to_none=True)
            (loss_sum * weight).backward()  # DDP's mean over ranks: the global batch's mean loss
            nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
            self.optimizer.step()
            self.scheduler.step()

            (batch_loss,) = ranks.sum(loss_sum.item() if weight else 0.0)
            loss = batch_loss / len(indices)
            state.epoch_loss_sum += loss
            docs += len(indices)
            tokens += sum(self.lengths[i] for i in indices)
            state.step_in_epoch += 1
            state.global_step += 1
            elapsed = time.perf_counter() - started
            progress.update()
            progress.set_postfix(loss=f"{loss:.3f}", docs_s=f"{docs / elapsed:.1f}", tok_s=f"{tokens / elapsed:.0f}")
            if state.global_step % config.log_every == 0:
                self.record({"train/loss": loss, "train/lr": self.scheduler.get_last_lr()[0]}, state.global_step)
            if config.checkpoint_every and state.global_step % config.checkpoint_every == 0:
                self.save(self.last_path)
        progress.close()
        return state.epoch_loss_sum / max(1, state.step_in_epoch), docs, tokens

    def save(self, path: Path) -> None:
        if self.ranks.main:
            save_atomically(self.checkpoint(), path)

    def checkpoint(self) -> dict[str, Any]:
        """Tensors, numbers and strings only: loadable with ``torch.load(weights_only=True)``."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "state": asdict(self.state),
            "rng": {"torch": torch.get_rng_state(), "python": random.getstate()},
            **self.checkpoint_extra,
        }

    def resume(self, payload: dict[str, Any]) -> None:
        """Continue from a checkpoint made by :meth:`checkpoint` (loaded with ``weights_only=True``)."""
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.state = TrainState(**payload["state"])
        torch.set_rng_state(payload["rng"]["torch"])
        random.setstate(payload["rng"]["python"])
        if self.ranks.distributed:  # the checkpoint holds rank 0's stream only
            torch.manual_seed(self.ranks.dropout_seed(self.config.seed, self.state.global_step))
