"""The ``qattn`` command line."""

from __future__ import annotations

import time

import click
import torch

from qattn import KERNELS, ClassicalMultiheadAttention, QuantumMultiheadAttention, parameter_counts
from qattn.circuits.to_qiskit import to_qiskit

QUANTUM_KERNELS = [name for name in KERNELS.names() if KERNELS.get(name).quantum]


@click.group()
def main() -> None:
    """qattn: quantum-classical hybrid multi-head attention."""


@main.command()
@click.option("--batch", default=2, show_default=True, help="Documents in the random batch.")
@click.option("--tokens", default=6, show_default=True, help="Tokens per document.")
@click.option("--embed-dim", default=16, show_default=True)
@click.option("--heads", default=2, show_default=True)
@click.option("--qubits", default=3, show_default=True, help="Qubits per head.")
@click.option("--kernel", type=click.Choice(QUANTUM_KERNELS), default="fidelity", show_default=True)
@click.option("--seed", default=0, show_default=True)
def demo(batch: int, tokens: int, embed_dim: int, heads: int, qubits: int, kernel: str, seed: int) -> None:
    """Build a quantum and a classical attention layer on random input and print their scores."""
    torch.manual_seed(seed)
    x = torch.randn(batch, tokens, embed_dim)
    layers = {
        f"quantum ({kernel}, {qubits} qubits/head)": QuantumMultiheadAttention(
            embed_dim, heads, n_qubits=qubits, kernel=kernel
        ),
        "classical (dot)": ClassicalMultiheadAttention(embed_dim, heads),
    }
    fmap = next(iter(layers.values())).kernel.feature_map
    click.echo(f"Input: {batch} documents x {tokens} tokens x {embed_dim} features, {heads} heads, seed {seed}")
    click.echo(f"\nOne head's query circuit ({fmap.encoder!r} then {fmap.ansatz!r}):")
    click.echo(to_qiskit(fmap).draw(output="text", fold=120))
    for name, layer in layers.items():
        start = time.perf_counter()
        out, weights = layer(x, x, x, average_attn_weights=False)
        out.square().mean().backward()
        seconds = time.perf_counter() - start
        counts = parameter_counts(layer)
        click.echo(f"\n== {name}: output {tuple(out.shape)}, parameters {counts}, forward+backward {seconds:.3f} s")
        click.echo("Attention weights, document 0, head 0 (rows: queries, columns: keys):")
        for row in weights[0, 0].detach():
            click.echo("  " + " ".join(f"{w:5.3f}" for w in row.tolist()))
