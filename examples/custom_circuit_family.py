"""A circuit family of your own: describe it once, register it, use it by name in a layer and in a config.

A family is a frozen dataclass over ``qattn.circuits.CircuitFamily``: a ``paper``, the shape of its
weights, and ``gates(n_qubits, x, w)`` yielding backend-neutral ``Gate`` records. Registered in
``qattn.circuits.CATALOGUE``, its name works wherever a built-in's does: the PennyLane and Qiskit
backends compile it, the attention code does not change. Here: Cerezo et al.'s alternating layered
ansatz (RY layers and brick-wall CZs), first in a bare layer fitted to a classical teacher, then as
``model.circuit`` of the quickstart experiment, recorded in MLflow.

    python examples/custom_circuit_family.py --workdir work     # the quickstart config: ~5 min on 2 cores
    python examples/custom_circuit_family.py --workdir work --steps 10 --set train.epochs=1 ...  # smaller
"""

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import mlflow
import torch

from qattn import CATALOGUE, CircuitFamily, ClassicalMultiheadAttention, QuantumMultiheadAttention
from qattn.circuits import Gate
from qattn.circuits.to_qiskit import to_qiskit
from qattn.config import load_config
from qattn.experiment import run_experiment

NAME = "alternating_layered"
QUICKSTART = Path(__file__).resolve().parents[1] / "experiments" / "quickstart.toml"


@dataclass(frozen=True)
class AlternatingLayered(CircuitFamily):
    """``layers`` x [RY on every qubit, CZ on pairs (0,1), (2,3)...; RY on every qubit, CZ on (1,2), (3,4)...].

    Weights: ``(layers, n_qubits, 2)``. Real gates only, so states keep real amplitudes."""

    paper: ClassVar[str] = ("Cerezo et al., Cost function dependent barren plateaus in shallow parametrized "
                            "quantum circuits, arXiv:2001.00550")
    layers: int = 2

    @property
    def real(self) -> bool:
        return True

    def weight_shape(self, n_qubits: int) -> tuple[int, ...]:
        return (self.layers, n_qubits, 2)

    def gates(self, n_qubits, x, w):
        for layer in range(self.layers):
            for half in (0, 1):
                for q in range(n_qubits):
                    yield Gate("RY", (q,), w[layer, q, half])
                for q in range(half, n_qubits - 1, 2):
                    yield Gate("CZ", (q, q + 1))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("custom-circuit"),
                        help="MLflow store, checkpoints, tokenizer")
    parser.add_argument("--config", type=Path, default=QUICKSTART)
    parser.add_argument("--qubits", type=int, default=4)
    parser.add_argument("--steps", type=int, default=100, help="steps of the bare layer against its teacher")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, as `qattn train --set`")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    if NAME not in CATALOGUE:
        CATALOGUE.add(NAME, AlternatingLayered())
    print(to_qiskit(CATALOGUE.get(NAME), 3).draw(output="text"))

    # 1. The layer, by name: fit a quantum layer to a fixed classical one on random inputs.
    teacher = ClassicalMultiheadAttention(16, 2)
    layer = QuantumMultiheadAttention(16, 2, n_qubits=args.qubits, circuit=NAME)
    shapes = [tuple(p.shape) for p in layer.kernel.circuit_parameters()]  # query, key: (heads, uploads, layers, n, 2)
    print("circuit weights:", shapes)
    optimizer = torch.optim.Adam(layer.parameters(), lr=1e-2)
    held_out = torch.randn(64, 6, 16)  # (B, N, E)

    def mse(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.mse_loss(layer(x, x, x)[0], teacher(x, x, x)[0].detach())

    before = mse(held_out).item()
    for _ in range(args.steps):
        loss = mse(torch.randn(32, 6, 16))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"layer vs teacher, held-out MSE: {before:.4f} -> {mse(held_out).item():.4f} after {args.steps} steps")

    # 2. The same name in an experiment config: validated against the catalogue, trained, logged to MLflow.
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{work / 'mlflow.db'}"  # a store of its own, with the artifacts beside it
    config = load_config(args.config, [
        f"model.circuit={NAME}", "model.attention=quantum", f"model.n_qubits={args.qubits}", f"train.seed={args.seed}",
        f"train.output_dir={work / 'runs'}", f"tokenizer.cache_dir={work / 'tokenizers'}",
        f"tracking.uri={uri}", f"tracking.artifacts={work / 'artifacts'}", "tracking.experiment=custom-circuit",
        *args.overrides,
    ])
    result = run_experiment(config, restart=True)
    params = mlflow.MlflowClient(uri).get_run(result.run_id).data.params
    print(f"MLflow run {result.run_id} ({result.run_name}): model.circuit = {params['model.circuit']}, "
          f"parameters {result.parameters}, test accuracy {result.test.accuracy:.4f}")


if __name__ == "__main__":
    main()
