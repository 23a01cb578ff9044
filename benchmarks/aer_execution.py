"""Aer: batched execution vs one circuit per call, and exact Aer vs PennyLane for one attention layer.

    python benchmarks/aer_execution.py                 # 512 circuits; layer B=2, N=32, 2 heads, 4 qubits
    python benchmarks/aer_execution.py --circuits 128 --device GPU

Part 1 runs the same workload (a 4-qubit feature map's slot circuit at random angles) as one Aer
call carrying all bindings, and as one call per circuit; exact statevectors and 1024-shot sampling.
Part 2 times one QuantumMultiheadAttention forward (and forward+backward) with each executor.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from qattn import QuantumMultiheadAttention
from qattn.circuits import AngleEncoding, FeatureMap, HardwareEfficient
from qattn.circuits.to_qiskit import slot_circuit
from qattn.executors import AerExecutor, PennyLaneExecutor
from qattn.executors.aer import bindings


def seconds(fn, repeats: int = 3) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def batching(circuits: int, device: str) -> None:
    from qiskit_aer import AerSimulator
    from qiskit_aer.primitives import SamplerV2

    fmap = FeatureMap(AngleEncoding(), HardwareEfficient(), n_qubits=4)
    circuit, slots = slot_circuit(fmap.gates(np.zeros(4), np.zeros(fmap.weight_shape)), 4)
    values = np.random.default_rng(0).uniform(-np.pi, np.pi, (circuits, slots))
    exact = circuit.copy()
    exact.save_statevector()
    simulator = AerSimulator(method="statevector", device=device)
    sampled = circuit.copy()
    sampled.measure_all()
    sampler = SamplerV2(default_shots=1024, seed=1, options={"backend_options": {"device": device}})

    workloads = {
        "exact statevector": (
            lambda: simulator.run(exact, parameter_binds=[bindings(exact, values)]).result(),
            lambda: [simulator.run(exact, parameter_binds=[bindings(exact, values[i : i + 1])]).result() for i in range(circuits)],
        ),
        "1024 shots (SamplerV2)": (
            lambda: sampler.run([(sampled, values)]).result(),
            lambda: [sampler.run([(sampled, values[i])]).result() for i in range(circuits)],
        ),
    }
    print(f"Part 1: {circuits} circuits of {slots} angles on 4 qubits, device {device}")
    print(f"{'mode':<24} {'batched circ/s':>15} {'per-call circ/s':>16} {'ratio':>7}")
    for mode, (batched, per_call) in workloads.items():
        fast, slow = circuits / seconds(batched), circuits / seconds(per_call, repeats=1)
        print(f"{mode:<24} {fast:>15.0f} {slow:>16.0f} {fast / slow:>6.1f}x")


def layer_times(device: str) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 32, 16)
    print("\nPart 2: one QuantumMultiheadAttention (fidelity, 4 qubits, 2 heads), B=2, N=32, embed 16")
    print(f"{'executor':<24} {'forward [s]':>12} {'fwd+bwd [s]':>12}")
    reference = None
    for name, executor in (("pennylane", PennyLaneExecutor()), (f"aer exact ({device})", AerExecutor(device=device))):
        layer = QuantumMultiheadAttention(16, 2, n_qubits=4, executor=executor)
        if reference is None:
            reference = layer.state_dict()
        layer.load_state_dict(reference)
        forward = seconds(lambda: layer(x, x, x), repeats=1)
        both = seconds(lambda: layer(x, x, x)[0].sum().backward(), repeats=1)
        print(f"{name:<24} {forward:>12.3f} {both:>12.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--circuits", type=int, default=512)
    parser.add_argument("--device", default="CPU", choices=["CPU", "GPU"])
    args = parser.parse_args()
    batching(args.circuits, args.device)
    layer_times(args.device)


if __name__ == "__main__":
    main()
