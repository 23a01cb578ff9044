"""Forward+backward time of quantum vs classical attention, measured in one run.

    python benchmarks/attention_speed.py                    # the issue's shape: B=8, N=512, 4 heads
    python benchmarks/attention_speed.py --tokens 128 --repeats 3

Quantum layers (PennyLane executor, angle_ry encoder, n_qubits=6): fidelity with the complex
hardware_efficient ansatz (RY, RZ, CNOT), fidelity with real_amplitudes (RY, CNOT: real arithmetic),
and gaussian with hardware_efficient. Classical twin: head dim 64 (embed 256). Every layer is timed
on the same input, interleaved over ``--repeats`` rounds after one warm-up; the table gives medians
and each quantum/classical ratio (absolute times drift between machines, ratios less so).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from qattn import ClassicalMultiheadAttention, QuantumMultiheadAttention


def forward_backward_seconds(layer: torch.nn.Module, x: torch.Tensor) -> float:
    """Seconds of one forward + backward pass."""
    layer.zero_grad(set_to_none=True)
    start = time.perf_counter()
    out, _ = layer(x, x, x, need_weights=False)
    out.square().mean().backward()
    return time.perf_counter() - start


def interleaved_medians(layers: dict[str, torch.nn.Module], x: torch.Tensor, repeats: int) -> dict[str, float]:
    """Median seconds per layer: one warm-up pass each, then ``repeats`` rounds in which every layer
    runs once, so drift of the machine (and the allocator's state) reaches every layer alike."""
    for layer in layers.values():
        forward_backward_seconds(layer, x)
    times: dict[str, list[float]] = {name: [] for name in layers}
    for _ in range(repeats):
        for name, layer in layers.items():
            times[name].append(forward_backward_seconds(layer, x))
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--qubits", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    torch.manual_seed(0)
    embed = args.heads * args.head_dim
    x = torch.randn(args.batch, args.tokens, embed)
    classical = f"classical (dot, head dim {args.head_dim})"
    layers = {classical: ClassicalMultiheadAttention(embed, args.heads)}
    for kernel, circuit in (("fidelity", "hardware_efficient"), ("fidelity", "real_amplitudes"), ("gaussian", "hardware_efficient")):
        layers[f"quantum {kernel}, {circuit}, {args.qubits} qubits"] = QuantumMultiheadAttention(
            embed, args.heads, n_qubits=args.qubits, kernel=kernel, circuit=circuit
        )
    print(f"B={args.batch} N={args.tokens} heads={args.heads} embed={embed} threads={torch.get_num_threads()}")
    seconds = interleaved_medians(layers, x, args.repeats)
    width = max(map(len, seconds))
    print(f"{'layer':<{width}}  fwd+bwd [s]  ratio to classical")
    for name, s in seconds.items():
        print(f"{name:<{width}}  {s:11.4f}  {s / seconds[classical]:6.2f}x")


if __name__ == "__main__":
    main()
