"""Forward+backward time of QAMA annealing attention vs its classical twin, measured in one run.

    python benchmarks/annealing_speed.py                 # the imdb shape: 16 documents x 8 chunks of 65 tokens
    python benchmarks/annealing_speed.py --solvers batched sa --repeats 3

The imdb configuration reads a document as chunks of 64 tokens plus a summary token, 4 heads of width
16 (embed 64), 16 documents per batch: its local attention sees 128 sequences of 65 tokens, so the
annealing layer solves 128 QUBOs of 260 variables per forward pass. Padding follows imdb's lengths
(a review of median 173 words fills about 4 of its 8 chunks). Layers run interleaved on the same
input, after one warm-up each; the table gives medians and each layer's ratio to the classical twin.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from qattn import AnnealingMultiheadAttention, ClassicalMultiheadAttention


def forward_backward_seconds(layer: torch.nn.Module, x: torch.Tensor, padding: torch.Tensor) -> float:
    layer.zero_grad(set_to_none=True)
    start = time.perf_counter()
    out, _ = layer(x, x, x, key_padding_mask=padding, need_weights=False)
    out.square().mean().backward()
    return time.perf_counter() - start


def imdb_like_padding(sequences: int, tokens: int, generator: torch.Generator) -> torch.Tensor:
    """Half the chunks full, a quarter part-filled, a quarter empty but for the summary token (slot 0)."""
    filled = torch.full((sequences,), tokens)
    part = torch.randint(2, tokens, (sequences,), generator=generator)
    kind = torch.arange(sequences) % 4
    filled = torch.where(kind == 2, part, torch.where(kind == 3, torch.ones_like(filled), filled))
    return torch.arange(tokens)[None, :] >= filled[:, None]  # True = padding


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequences", type=int, default=128, help="documents x chunks per batch (imdb: 16 x 8)")
    parser.add_argument("--tokens", type=int, default=65, help="tokens per chunk, with its summary token")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--embed", type=int, default=64)
    parser.add_argument("--solvers", nargs="+", default=["batched"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    x = torch.randn(args.sequences, args.tokens, args.embed, generator=generator)
    padding = imdb_like_padding(args.sequences, args.tokens, generator)
    layers = {"classical (dot)": ClassicalMultiheadAttention(args.embed, args.heads)}
    for solver in args.solvers:
        layers[f"annealing ({solver})"] = AnnealingMultiheadAttention(args.embed, args.heads, solver=solver)

    for layer in layers.values():
        forward_backward_seconds(layer, x, padding)
    times: dict[str, list[float]] = {name: [] for name in layers}
    for _ in range(args.repeats):
        for name, layer in layers.items():
            times[name].append(forward_backward_seconds(layer, x, padding))
    medians = {name: statistics.median(t) for name, t in times.items()}

    base = medians["classical (dot)"]
    variables = args.heads * args.tokens
    print(f"{args.sequences} sequences x {args.tokens} tokens, {args.heads} heads ({args.sequences} QUBOs of "
          f"{variables} variables), embed {args.embed}, {torch.get_num_threads()} threads, median of {args.repeats}")
    print("| layer | forward+backward [ms] | vs classical |")
    print("|---|---|---|")
    for name, seconds in medians.items():
        print(f"| {name} | {seconds * 1000:.1f} | {seconds / base:.2f}x |")


if __name__ == "__main__":
    main()
