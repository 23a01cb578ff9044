"""Data-parallel training under ``torchrun``: which process this is, and what the ranks share.

    torchrun --nproc-per-node 2 -m qattn.cli train experiments/imdb.toml

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`process_group` joins the group
(gloo on CPU, NCCL on GPU) and leaves it afterwards. Without them, everything here is the
single-process identity, so one code path serves both.

How a step is shared (so ``train.batch_size`` means the same global batch at any world size): every
rank builds the same global batch from (seed, epoch), takes its slice of it, and weighs its summed
loss by ``world_size / global batch``; DistributedDataParallel averages gradients, which gives the
gradient of the global batch's mean loss. Evaluation splits the documents over the ranks and
gathers the predictions, so every rank computes the same metrics (and takes the same early-stopping
decision).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from qattn.config import ConfigError


@dataclass(frozen=True)
class Ranks:
    """This process's place in the group; ``Ranks()`` is a single process."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        """Rank 0 writes the MLflow run, checkpoints and artifacts; the others only compute."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def shard(self, indices: list[int]) -> list[int]:
        """This rank's documents of a global batch (strided, so lengths stay balanced)."""
        return indices[self.rank :: self.world_size]

    def sum(self, *values: float) -> list[float]:
        """Each value summed over the ranks."""
        if not self.distributed:
            return list(values)
        total = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        return total.tolist()

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (picklable), in rank order, on every rank."""
        if not self.distributed:
            return [value]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def from_main(self, value: Any) -> Any:
        """Rank 0's ``value`` (picklable) on every rank."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def dropout_seed(self, seed: int, step: int = 0) -> int:
        """The seed of this rank's own random stream (dropout), distinct per rank; reseeded from
        (seed, rank, step) on a resume, since the other ranks' streams are not in the checkpoint."""
        return (seed * 1_000_003 + self.rank) * 1_000_003 + step


def torchrun_world() -> tuple[int, int, int]:
    """(rank, world size, local rank) as torchrun sets them; (0, 1, 0) outside torchrun."""
    try:
        return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))
    except ValueError as err:
        raise ConfigError(f"RANK / WORLD_SIZE / LOCAL_RANK must be integers, as torchrun sets them: {err}") from None


@contextmanager
def process_group(device: str) -> Iterator[Ranks]:
    """Join torchrun's process group for the duration (a no-op in a single process). ``device``:
    "cpu" (gloo) or "cuda" (NCCL, one GPU per process by local rank)."""
    rank, world_size, local_rank = torchrun_world()
    joined = dist.is_available() and dist.is_initialized()  # by the caller's own script
    if joined:
        rank, world_size = dist.get_rank(), dist.get_world_size()
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("train.device = 'cuda' but torch sees no GPU here; use train.device = 'cpu'")
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"local rank {local_rank} has no GPU of its own ({torch.cuda.device_count()} visible); "
                "start at most one process per GPU (torchrun --nproc-per-node)"
            )
        torch.cuda.set_device(local_rank)
    where = torch.device("cuda", local_rank) if device == "cuda" else torch.device("cpu")
    if world_size == 1 or joined:
        yield Ranks(rank, world_size, where)
        return
    dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
    try:
        yield Ranks(rank, world_size, where)
    finally:
        dist.destroy_process_group()
