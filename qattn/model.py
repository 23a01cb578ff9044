"""TextClassifier: a hierarchical reader of long documents around either attention kind.

Documents of thousands of tokens would hit an N^2 wall with full attention (quantum or not), so
both kinds read them the same way (the project design notes, "Long documents"):

1. split the tokens into chunks of ``chunk_size`` and put a learned summary token in front of each;
2. ``local_layers`` encoder blocks attend within each chunk (the summary token gathers the chunk);
3. ``global_layers`` blocks attend across the chunk summaries of a document;
4. the non-empty chunk summaries are averaged and classified (``pool = "mean"``: every real token's state
   after the local blocks, QAMA's pooling).

Its input is token ids embedded by trained embeddings, or a pretrained encoder's token features projected
to ``embed_dim`` (:class:`FeatureInput`, built by :mod:`qattn.inputs`); the rest is the same.

The attention module of every block comes from one factory, the builder its attention kind names
(:mod:`qattn.kinds`), so classical, circuit and annealing models differ in their attention kernel and
nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from qattn.attention import (
    AnnealingMultiheadAttention, AttentionShell, ClassicalMultiheadAttention, QuantumMultiheadAttention,
)
from qattn.config import AnnealingConfig, ModelConfig
from qattn.executors import aer_executor
from qattn.kinds import KINDS
from qattn.solvers import QuboSolver, resolve_solver

PAD_ID = 0


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm(x))``, then ``x + ff(norm(x))``."""

    def __init__(self, attention: AttentionShell | None, embed_dim: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.attn_norm = nn.LayerNorm(embed_dim) if attention is not None else None
        self.attn = attention  # None: no attention sublayer (the "none" kind), the feed-forward path only
        self.ff_norm = nn.LayerNorm(embed_dim)
        self.ff = nn.Sequential(nn.Linear(embed_dim, ff_dim), nn.GELU(), nn.Linear(ff_dim, embed_dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, padding: torch.Tensor, need_weights: bool = False):
        weights = None
        if self.attn is not None:
            h = self.attn_norm(x)
            attended, weights = self.attn(h, h, h, key_padding_mask=padding, need_weights=need_weights)
            x = x + self.drop(attended)
        x = x + self.drop(self.ff(self.ff_norm(x)))
        return x, weights


@dataclass
class ClassifierOutput:
    logits: torch.Tensor  # (B, classes)
    local_attention: torch.Tensor | None = None  # (B, chunks, 1 + chunk, 1 + chunk), first local block
    global_attention: torch.Tensor | None = None  # (B, chunks, chunks), first global block


class FeatureInput(nn.Module):
    """A pretrained encoder's token features as the reader's input: ``source`` maps the reader's ids to
    features ``(N, T, hidden)`` (a :class:`~qattn.features.FeatureTable` of cached features, or a
    :class:`~qattn.backbone.WindowEncoder` in the loop), projected to ``embed_dim`` without bias (QAMA's
    down-embedding)."""

    def __init__(self, source: Callable[[torch.Tensor], torch.Tensor], hidden: int, embed_dim: int) -> None:
        super().__init__()
        self.source = source  # a module (its parameters are the model's) or a plain callable (no parameters)
        self.project = nn.Linear(hidden, embed_dim, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.project(self.source(ids).to(self.project.weight.dtype))


class TextClassifier(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        make_attention: Callable[[], AttentionShell | None],
        *,
        embed_dim: int,
        local_layers: int,
        global_layers: int,
        ff_dim: int,
        dropout: float,
        max_length: int,
        chunk_size: int,
        pool: str = "summary",
        embed: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.chunk_size = chunk_size
        self.pool = pool
        self.embed = embed if embed is not None else nn.Embedding(vocab_size, embed_dim, padding_idx=PAD_ID)
        self.position = nn.Embedding(chunk_size + 1, embed_dim)  # slot 0: the chunk's summary token
        self.chunk_position = nn.Embedding(math.ceil(max_length / chunk_size), embed_dim)
        self.summary = nn.Parameter(0.02 * torch.randn(embed_dim))
        self.local_blocks = nn.ModuleList(
            EncoderBlock(make_attention(), embed_dim, ff_dim, dropout) for _ in range(local_layers)
        )
        self.global_blocks = nn.ModuleList(
            EncoderBlock(make_attention(), embed_dim, ff_dim, dropout) for _ in range(global_layers)
        )
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes)

    def forward(self, ids: torch.Tensor, return_attention: bool = False) -> ClassifierOutput:
        batch, length = ids.shape
        chunks = math.ceil(length / self.chunk_size)
        ids = nn.functional.pad(ids, (0, chunks * self.chunk_size - length), value=PAD_ID)
        ids = ids.view(batch * chunks, self.chunk_size)  # (B*C, T)
        padding = torch.cat([torch.zeros_like(ids[:, :1], dtype=torch.bool), ids == PAD_ID], dim=1)  # (B*C, 1+T)

        x = torch.cat([self.summary.expand(batch * chunks, 1, -1), self.embed(ids)], dim=1)  # (B*C, 1+T, E)
        x = self.drop(x + self.position.weight)
        local_attention = global_attention = None
        for i, block in enumerate(self.local_blocks):
            x, weights = block(x, padding, need_weights=return_attention and i == 0)
            if weights is not None:
                local_attention = weights.view(batch, chunks, *weights.shape[1:])

        empty = padding[:, 1:].all(dim=1).view(batch, chunks)  # (B, C): chunks of padding only
        summaries = x[:, 0].view(batch, chunks, -1) + self.chunk_position.weight[:chunks]  # (B, C, E)
        for i, block in enumerate(self.global_blocks):
            summaries, weights = block(summaries, empty, need_weights=return_attention and i == 0)
            if weights is not None:
                global_attention = weights

        if self.pool == "mean":  # every real token of the document (QAMA averages its padding too)
            keep = (~padding[:, 1:]).view(batch, chunks * self.chunk_size, 1).to(x.dtype)
            tokens = x[:, 1:].reshape(batch, chunks * self.chunk_size, -1)
            pooled = (tokens * keep).sum(1) / keep.sum(1).clamp_min(1)  # (B, E)
        else:
            keep = (~empty).unsqueeze(-1).to(summaries.dtype)  # (B, C, 1)
            pooled = (summaries * keep).sum(1) / keep.sum(1).clamp_min(1)  # (B, E)
        return ClassifierOutput(self.head(self.norm(pooled)), local_attention, global_attention)


QUANTUM_OPTIONS = {"n_qubits", "kernel", "encoder", "circuit", "reuploads", "executor"}
READER_OPTIONS = {"embed_dim", "local_layers", "global_layers", "ff_dim", "dropout", "max_length", "chunk_size", "pool"}
AttentionFactory = Callable[[], AttentionShell]


def build_model(config: ModelConfig, vocab_size: int, num_classes: int, embed: nn.Module | None = None) -> TextClassifier:
    """The hierarchical reader with the attention of ``config.attention`` in every block, all else equal; ``embed``
    is its input layer when not trained embeddings (:class:`FeatureInput`)."""
    kind = KINDS.get(config.attention)
    if not kind.network:
        raise ValueError(f"model.attention = {config.attention!r} is no network ({kind.summary}): no model to build")
    return TextClassifier(vocab_size, num_classes, kind.builder()(config), embed=embed,
                          **config.model_dump(include=READER_OPTIONS))


# The builders of the network kinds (qattn.kinds names them): [model] config -> the attention of every block.


def classical_attention(config: ModelConfig) -> AttentionFactory:
    return lambda: ClassicalMultiheadAttention(*heads(config), dropout=config.dropout, qk_dim=config.qk_dim)


def no_attention(config: ModelConfig) -> Callable[[], None]:
    return lambda: None  # blocks without an attention sublayer


def uniform_attention(config: ModelConfig) -> AttentionFactory:
    return lambda: ClassicalMultiheadAttention(
        *heads(config), dropout=config.dropout, qk_dim=config.qk_dim, kernel="uniform"
    )


def quantum_attention(config: ModelConfig) -> AttentionFactory:
    options = config.model_dump(include=QUANTUM_OPTIONS)
    if config.executor == "aer":  # one configured simulator shared by every block
        options["executor"] = aer_executor(**config.aer.model_dump())
    return lambda: QuantumMultiheadAttention(*heads(config), dropout=config.dropout, **options)


def annealing_attention(config: ModelConfig) -> AttentionFactory:
    qubo = config.annealing
    solver = annealing_solver(qubo)  # one configured, seeded solver shared by every block
    weights = {"quadratic": qubo.quadratic, "linear": qubo.linear, "penalty": qubo.penalty}
    return lambda: AnnealingMultiheadAttention(*heads(config), dropout=config.dropout, solver=solver, **weights)


def annealing_solver(qubo: AnnealingConfig) -> QuboSolver:
    """The configured solver; a ``qaoa`` solver that samples on a device is handed the device's sampler."""
    options = qubo.solver_options()
    backend, level = options.pop("backend", None), options.pop("optimization_level", None)
    if backend is not None:
        from qattn.runtime.sampling import DeviceSampler

        options["sampler"] = DeviceSampler(backend, optimization_level=level, seed=qubo.seed)
    return resolve_solver(qubo.solver, **options)


def heads(config: ModelConfig) -> tuple[int, int]:
    return config.embed_dim, config.num_heads
