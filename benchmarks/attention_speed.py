"""Forward+backward cost of quantum vs classical attention, measured in one run.

    python benchmarks/attention_speed.py                    # the issue's shape: B=8, N=512, 4 heads
    python benchmarks/attention_speed.py --tokens 128 --repeats 3 --threads 1

Quantum layers (PennyLane executor, angle_ry encoder, n_qubits=6): fidelity with the complex
hardware_efficient ansatz (RY, RZ, CNOT), fidelity with real_amplitudes (RY, CNOT: real arithmetic),
and gaussian with hardware_efficient. Classical twin: head dim 64 (embed 256). Every layer is timed
on the same input, interleaved over ``--repeats`` rounds after one warm-up; the table gives medians of
wall and CPU time, each quantum/classical ratio (absolute times drift between machines, ratios less
so), the aten ops of one pass (as torch's profiler counts them, nested ops included) and its FLOP
floor (torch's ``FlopCounterMode``: matmuls and convolutions). ``benchmarks/speed.py`` runs the same
measurements at 1 and 2 threads for results/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from qattn import ClassicalMultiheadAttention, QuantumMultiheadAttention

QUANTUM = (("fidelity", "hardware_efficient"), ("fidelity", "real_amplitudes"), ("gaussian", "hardware_efficient"))


def forward_backward(layer: torch.nn.Module, x: torch.Tensor) -> None:
    """One forward + backward pass, as training runs it (no attention weights returned)."""
    layer.zero_grad(set_to_none=True)
    out, _ = layer(x, x, x, need_weights=False)
    out.square().mean().backward()


def forward_backward_seconds(layer: torch.nn.Module, x: torch.Tensor) -> tuple[float, float]:
    """Wall and CPU seconds (this process, every thread) of one forward + backward pass."""
    wall, cpu = time.perf_counter(), time.process_time()
    forward_backward(layer, x)
    return time.perf_counter() - wall, time.process_time() - cpu


def interleaved_medians(layers: dict[str, torch.nn.Module], x: torch.Tensor, repeats: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds per layer: one warm-up pass each, then ``repeats`` rounds in which
    every layer runs once, so drift of the machine (and the allocator's state) reaches every layer alike."""
    for layer in layers.values():
        forward_backward(layer, x)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in layers}
    for _ in range(repeats):
        for name, layer in layers.items():
            times[name].append(forward_backward_seconds(layer, x))
    return {name: tuple(statistics.median(column) for column in zip(*t)) for name, t in times.items()}


def aten_ops(layer: torch.nn.Module, x: torch.Tensor) -> int:
    """Aten ops of one forward + backward pass after a warm-up, as torch's profiler records them
    (nested ops included: each is a dispatch, and on a GPU most are a kernel launch)."""
    forward_backward(layer, x)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        forward_backward(layer, x)
    return sum(event.name.startswith("aten::") for event in prof.events())


def flops(layer: torch.nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one forward + backward pass that torch's ``FlopCounterMode`` counts (matmuls): the floor."""
    with FlopCounterMode(display=False) as counter:
        forward_backward(layer, x)
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--qubits", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    embed = args.heads * args.head_dim
    x = torch.randn(args.batch, args.tokens, embed)
    classical = f"classical (dot, head dim {args.head_dim})"
    layers = {classical: ClassicalMultiheadAttention(embed, args.heads)}
    for kernel, circuit in QUANTUM:
        layers[f"quantum {kernel}, {circuit}, {args.qubits} qubits"] = QuantumMultiheadAttention(
            embed, args.heads, n_qubits=args.qubits, kernel=kernel, circuit=circuit
        )
    print(f"B={args.batch} N={args.tokens} heads={args.heads} embed={embed} threads={torch.get_num_threads()}")
    seconds = interleaved_medians(layers, x, args.repeats)
    counts = {name: (aten_ops(layer, x), flops(layer, x)) for name, layer in layers.items()}
    width = max(map(len, seconds))
    (wall_0, cpu_0), (ops_0, flops_0) = seconds[classical], counts[classical]
    print(f"{'layer':<{width}}  wall [s]  ratio  CPU [s]  ratio  aten ops  ratio  GFLOP  ratio")
    for name, (wall, cpu) in seconds.items():
        ops, flop = counts[name]
        print(f"{name:<{width}}  {wall:8.4f}  {wall / wall_0:4.2f}x  {cpu:7.4f}  {cpu / cpu_0:4.2f}x  {ops:8d}  "
              f"{ops / ops_0:4.1f}x  {flop / 1e9:5.2f}  {flop / flops_0:4.2f}x")


if __name__ == "__main__":
    main()
