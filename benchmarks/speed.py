"""Speed and memory of quantum vs classical attention, and vs per-circuit peers; writes results/benchmarks.md.

    python benchmarks/speed.py                 # full table (several minutes on 2 cores)
    python benchmarks/speed.py --tokens 128 512 --repeats 1

1. One attention layer, forward+backward, batch 8, 4 heads, N tokens: the classical twin (head dim 64)
   and quantum layers with 6 qubits per head (PennyLane executor, float32 / complex64). Each
   measurement runs in a fresh process, which also reports its peak memory above the state before
   the forward pass.
2. Peers, the way much public quantum-attention code runs circuits: one PennyLane QNode call per
   query-key pair (fidelity) and per token and head (gaussian). A sample of calls is timed and
   extrapolated to the layer's full workload at N=512.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import resource
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from attention_speed import time_forward_backward  # this folder is on sys.path when run as a script

BATCH, HEADS, HEAD_DIM, QUBITS = 8, 4, 64, 6
LAYERS = {
    "classical dot": {},
    "fidelity, hardware_efficient (complex)": {"kernel": "fidelity", "circuit": "hardware_efficient"},
    "fidelity, real_amplitudes (real)": {"kernel": "fidelity", "circuit": "real_amplitudes"},
    "gaussian, hardware_efficient (complex)": {"kernel": "gaussian", "circuit": "hardware_efficient"},
}
RESULTS = Path(__file__).resolve().parents[1] / "results" / "benchmarks.md"


def build(name: str):
    from qattn import ClassicalMultiheadAttention, QuantumMultiheadAttention

    embed = HEADS * HEAD_DIM
    options = LAYERS[name]
    if not options:
        return ClassicalMultiheadAttention(embed, HEADS)
    return QuantumMultiheadAttention(embed, HEADS, n_qubits=QUBITS, **options)


def measure(name: str, tokens: int, repeats: int, queue) -> None:
    """In a fresh process: median fwd+bwd seconds and peak RSS growth (MiB) of one layer."""
    torch.manual_seed(0)
    layer = build(name)
    x = torch.randn(BATCH, tokens, HEADS * HEAD_DIM)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = time_forward_backward(layer, x, repeats)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put((seconds, (peak - baseline) / 1024))


def in_fresh_process(name: str, tokens: int, repeats: int) -> tuple[float, float]:
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=measure, args=(name, tokens, repeats, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def per_call_peers(tokens: int, sample: int) -> dict[str, float]:
    """Seconds for the whole N=tokens layer workload if run one QNode call per pair / per token."""
    import pennylane as qml

    from qattn.circuits import CATALOGUE, FeatureMap
    from qattn.circuits.to_pennylane import apply_pennylane

    fmap = FeatureMap(CATALOGUE.get("angle_ry"), CATALOGUE.get("hardware_efficient"), QUBITS)
    device = qml.device("default.qubit", wires=QUBITS)

    @qml.qnode(device, interface="torch", diff_method="backprop")
    def pair(xq, wq, xk, wk):  # compute-uncompute: P(0...0) = |<phi_k|phi_q>|^2
        apply_pennylane(fmap.gates(xq, wq))
        qml.adjoint(lambda: apply_pennylane(fmap.gates(xk, wk)))()
        return qml.probs(wires=range(QUBITS))

    @qml.qnode(device, interface="torch", diff_method="backprop")
    def token(x, w):
        apply_pennylane(fmap.gates(x, w))
        return [qml.expval(qml.PauliZ(q)) for q in range(QUBITS)]

    w = torch.randn(*fmap.weight_shape, requires_grad=True)
    x = torch.randn(sample, QUBITS, requires_grad=True)

    def seconds_per_call(fn) -> float:
        fn(0)
        start = time.perf_counter()
        for i in range(sample):
            fn(i)
        return (time.perf_counter() - start) / sample

    per_pair = seconds_per_call(lambda i: pair(x[i], w, x[(i + 1) % sample], w)[0].backward())
    per_token = seconds_per_call(lambda i: torch.stack(token(x[i], w)).sum().backward())
    return {
        "fidelity": per_pair * BATCH * HEADS * tokens * tokens,
        "gaussian": per_token * 2 * BATCH * HEADS * tokens,
    }


def machine() -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {torch.get_num_threads()} torch threads, Python {platform.python_version()}, torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, nargs="+", default=[128, 512, 1024, 2048])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peer-sample", type=int, default=20)
    args = parser.parse_args()

    lines = [
        "# Benchmarks",
        "",
        f"Generated by `python benchmarks/speed.py {' '.join(['--tokens', *map(str, args.tokens), '--repeats', str(args.repeats)])}`"
        f" on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {machine()}.",
        f"Attention layer forward+backward, batch {BATCH}, {HEADS} heads; classical head dim {HEAD_DIM}; quantum: "
        f"{QUBITS} qubits per head, angle_ry encoder, PennyLane executor, float32 inputs (complex64 states for complex "
        "circuits, float32 for real ones). Peak memory: growth of the process's peak RSS during the passes.",
        "",
        "| layer | N | fwd+bwd [s] | ratio to classical | peak memory [MiB] | memory ratio |",
        "|---|---|---|---|---|---|",
    ]
    layer_512 = {}
    for tokens in args.tokens:
        results = {name: in_fresh_process(name, tokens, args.repeats) for name in LAYERS}
        base_time, base_memory = results["classical dot"]
        for name, (seconds, memory) in results.items():
            lines.append(
                f"| {name} | {tokens} | {seconds:.3f} | {seconds / base_time:.2f}x | {memory:.0f} | {memory / max(base_memory, 1):.2f}x |"
            )
            if tokens == 512:
                layer_512[name] = seconds
        print("\n".join(lines[-len(results):]), flush=True)
    if layer_512:
        peers = per_call_peers(512, args.peer_sample)
        lines += [
            "",
            f"Per-call peers at N=512 (one QNode call per pair or per token, timed on {args.peer_sample} calls, extrapolated):",
            "",
            "| workload | per-call peer [s] | qattn layer [s] | qattn speed-up |",
            "|---|---|---|---|",
            f"| fidelity, {BATCH * HEADS * 512 * 512:,} pairs | {peers['fidelity']:.0f} | {layer_512['fidelity, hardware_efficient (complex)']:.3f} "
            f"| {peers['fidelity'] / layer_512['fidelity, hardware_efficient (complex)']:,.0f}x |",
            f"| gaussian, {2 * BATCH * HEADS * 512:,} token circuits | {peers['gaussian']:.0f} | {layer_512['gaussian, hardware_efficient (complex)']:.3f} "
            f"| {peers['gaussian'] / layer_512['gaussian, hardware_efficient (complex)']:,.0f}x |",
        ]
    text = "\n".join(lines) + "\n"
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
