"""qattn's quantum attention against the same layer simulated by TensorCircuit-NG and torchquantum.

The layer is ``QuantumMultiheadAttention(256, 4, n_qubits=6)`` with the fidelity kernel on the
``hardware_efficient`` and ``real_amplitudes`` ansätze, and the gaussian kernel (<Z_q> features) on
``hardware_efficient``; batch 8, N tokens, ``layer(x, x, x, need_weights=False)``, loss
``out.square().mean()``, backward. One timed step is that forward + backward at ``--threads`` torch
threads. "qattn" is the layer with its default executor (PennyLane); each peer is a deep copy of it
(same weights) whose ``kernel.executor`` is a :class:`StatevectorExecutor` preparing every (batch, head,
token) state ``U(w_h) S(x)|0>`` in the peer library, gate by gate from ``fmap.gates``, batched over all
B*H*N tokens the way that library does it:

* TensorCircuit-NG, pytorch backend: a ``tc.Circuit`` per token under ``K.vmap`` (torch.vmap) over the
  tokens, nested in a ``K.vmap`` over heads for the per-head weights (the ``QuantumNet`` pattern).
  ``K.jit`` is a no-op on this backend unless ``jit_compile=True`` (torch.compile), not used here.
* torchquantum: one ``tq.QuantumDevice(n_wires, bsz=B*H*N)`` and functional gates (``tqf.ry(qdev,
  wires, params=..., comp_method="einsum")``) with one angle per sample; a gate has no broadcast over
  fewer samples, so the per-head angles are expanded to every token.

The peers' fidelities then go through ``StatevectorExecutor``'s default ``|psi_q @ psi_k^H|^2``, their
<Z> through its ``z_from_states``. So every row compares whole layers, each computed the way a user of
that library would (qattn's executor also folds each head's unitaries into one metric for the
fidelities, and never forms complex states for the Z features). Before timing, each peer's layer output
is checked against qattn's (max abs difference <= 1e-4, float32). Rounds are interleaved (qattn, TensorCircuit-NG, torchquantum,
then again, ``attention_speed.interleaved_medians``) after one warm-up step each; the tables give the median of ``--repeats`` rounds of CPU time
(``time.process_time``) and wall time, and each peer's ratio to qattn (peer / qattn: qattn's lead).

Install the peers into their own venv, never the project's (they pull qiskit-ibm-runtime, torchvision):

    python3 -m venv .venv-peers
    .venv-peers/bin/pip install -c constraints.txt -e . tensorcircuit-ng==1.10.0 torchquantum-ng==0.2.0

Run:

    .venv-peers/bin/python benchmarks/simulator_peers.py --tokens 512 --repeats 5
"""

from __future__ import annotations

import argparse
import copy
import importlib.metadata
import sys
import types

import torch

from attention_speed import interleaved_medians  # this folder is on sys.path as a script

from qattn import QuantumMultiheadAttention
from qattn.executors.base import StatevectorExecutor

LAYERS = {
    "fidelity/hardware_efficient": {"kernel": "fidelity", "circuit": "hardware_efficient"},
    "fidelity/real_amplitudes": {"kernel": "fidelity", "circuit": "real_amplitudes"},
    "gaussian/hardware_efficient": {"kernel": "gaussian", "circuit": "hardware_efficient"},
}
EMBED, HEADS, QUBITS, BATCH, TOLERANCE = 256, 4, 6, 8, 1e-4
PIP = ".venv-peers/bin/pip install -c constraints.txt"


class TensorCircuitExecutor(StatevectorExecutor):
    name, max_qubits = "tensorcircuit-ng", 16

    def __init__(self) -> None:
        import tensorcircuit as tc

        self.tc, self.K = tc, tc.set_backend("pytorch")
        self.methods = {"H": "h", "RX": "rx", "RY": "ry", "RZ": "rz", "CNOT": "cnot", "CZ": "cz", "RZZ": "rzz"}

    def states(self, fmap, x, w):
        batch, heads, tokens, features = x.shape

        def one_token(x_token, w_head):  # (F,), (R, L, n, rotations)
            c = self.tc.Circuit(fmap.n_qubits)
            for gate in fmap.gates(x_token, w_head):
                apply = getattr(c, self.methods[gate.name])
                if gate.angle is None:
                    apply(*gate.wires)
                else:
                    apply(*gate.wires, theta=gate.angle)
            return c.state()

        per_head = self.K.vmap(self.K.vmap(one_token, vectorized_argnums=0), vectorized_argnums=(0, 1))
        psi = per_head(x.transpose(0, 1).reshape(heads, batch * tokens, features), w)  # (H, B*N, 2^n)
        return psi.view(heads, batch, tokens, -1).transpose(0, 1)


def import_torchquantum():
    # torchquantum/__init__ imports its MNIST/CIFAR datasets and with them torchvision, whose PyPI wheel is
    # a CUDA build that fails to load next to torch+cpu. The simulator needs neither: an empty stand-in.
    sys.modules.setdefault("torchquantum.dataset", types.ModuleType("torchquantum.dataset"))
    import torchquantum as tq
    import torchquantum.functional as tqf

    return tq, tqf


class TorchQuantumExecutor(StatevectorExecutor):
    name, max_qubits = "torchquantum", 16

    def __init__(self) -> None:
        self.tq, tqf = import_torchquantum()
        functions = {
            "H": tqf.hadamard, "RX": tqf.rx, "RY": tqf.ry, "RZ": tqf.rz, "CNOT": tqf.cnot, "CZ": tqf.cz, "RZZ": tqf.rzz,
        }
        # comp_method "einsum": 15-20% faster forward+backward than the default "bmm" at these shapes here.
        self.table = {
            name: lambda d, w, a, f=f: f(d, wires=list(w), params=a, comp_method="einsum")
            for name, f in functions.items()
        }

    def states(self, fmap, x, w):
        batch, heads, tokens, features = x.shape
        samples = batch * heads * tokens
        x_t = x.reshape(samples, features).T  # x_t[i]: feature i of every sample
        w_t = w.movedim(0, -1)[..., None, :, None].expand(*w.shape[1:], batch, heads, tokens)
        w_t = w_t.reshape(*w.shape[1:], samples)  # w_t[r, l, q, k]: that angle of each sample's head
        qdev = self.tq.QuantumDevice(n_wires=fmap.n_qubits, bsz=samples, device=x.device)
        for gate in fmap.gates(x_t, w_t):
            self.table[gate.name](qdev, gate.wires, gate.angle)
        return qdev.get_states_1d().view(batch, heads, tokens, -1)


PEERS = {  # column -> (executor class, the import that must work, pip line)
    "TensorCircuit-NG": (TensorCircuitExecutor, lambda: __import__("tensorcircuit"), "tensorcircuit-ng==1.10.0"),
    "torchquantum": (TorchQuantumExecutor, import_torchquantum, "torchquantum-ng==0.2.0"),
}


def available_peers() -> dict[str, type | None]:
    peers = {}
    for column, (cls, probe, requirement) in PEERS.items():
        try:
            probe()
            peers[column] = cls
        except ImportError as error:
            print(f"{column} not installed ({error}): {PIP} {requirement}")
            peers[column] = None
    return peers


def output(layer: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer's output on ``x``, as the timed pass computes it (no attention weights)."""
    with torch.no_grad():
        return layer(x, x, x, need_weights=False)[0]


def run_case(name: str, tokens: int, peers: dict, repeats: int) -> dict[str, object]:
    """``{variant: (wall s, CPU s) | message}`` for one layer at one N."""
    torch.manual_seed(0)
    reference = QuantumMultiheadAttention(EMBED, HEADS, n_qubits=QUBITS, **LAYERS[name])
    x = torch.randn(BATCH, tokens, EMBED)
    expected = output(reference, x)
    variants, cells = {"qattn": reference}, {}
    for column, cls in peers.items():
        if cls is None:
            cells[column] = "not installed"
            continue
        layer = copy.deepcopy(reference)
        try:
            layer.kernel.executor = cls()
            diff = (output(layer, x) - expected).abs().max().item()
        except Exception as error:  # noqa: BLE001 -- a peer that cannot run a case says so in the table
            cells[column] = f"fails: {type(error).__name__}: {str(error).splitlines()[0][:60]}"
            continue
        print(f"  check {name} N={tokens} {column}: max |out - qattn out| = {diff:.2e}")
        if diff > TOLERANCE:
            cells[column] = f"wrong output (max diff {diff:.1e})"
            continue
        variants[column] = layer
    return cells | interleaved_medians(variants, x, repeats)  # warm-up, then interleaved rounds


def table(rows: list[tuple[str, int, dict]], peers: dict, which: int, unit: str) -> str:
    lines = [
        f"| layer | N | qattn {unit} s | " + " | ".join(f"{column} {unit} s (ratio)" for column in peers) + " |",
        "|---|---:|---:|" + "---:|" * len(peers),
    ]
    for name, tokens, cells in rows:
        base = cells["qattn"][which]
        shown = []
        for column in peers:
            cell = cells[column]
            shown.append(f"{cell[which]:.3f} ({cell[which] / base:.1f}x)" if isinstance(cell, tuple) else cell)
        lines.append(f"| {name} | {tokens} | {base:.3f} | " + " | ".join(shown) + " |")
    return "\n".join(lines)


def version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[512], help="sequence lengths N")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per case (median reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--layers", nargs="+", choices=list(LAYERS), default=list(LAYERS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    peers = available_peers()
    print(
        f"torch {torch.__version__} ({torch.get_num_threads()} thread(s)), pennylane {version('pennylane')}, "
        f"tensorcircuit-ng {version('tensorcircuit-ng')}, torchquantum-ng {version('torchquantum-ng')}; "
        f"batch {BATCH}, embed {EMBED}, {HEADS} heads, {QUBITS} qubits, median of {args.repeats}"
    )
    rows = []
    for tokens in args.tokens:
        for name in args.layers:
            rows.append((name, tokens, run_case(name, tokens, peers, args.repeats)))
    print("\nForward + backward, CPU time (ratio = peer / qattn):\n")
    print(table(rows, peers, 1, "CPU"))
    print("\nWall time:\n")
    print(table(rows, peers, 0, "wall"))


if __name__ == "__main__":
    main()
