"""Where the time of a fidelity layer goes: each part of the computation, and the alternative it replaced.

    python benchmarks/fidelity_profile.py            # the issue's shape: B=8, N=512, 4 heads, 6 qubits

Every row is forward+backward of one part on the layer's shapes, median of ``--repeats`` interleaved
rounds. Pairs of rows compare what the PennyLane executor does with what it did before:

- ansatz unitaries of the query and key heads: ``qml.matrix`` (full 2^n x 2^n product per gate) vs
  PennyLane's gate matrices applied on their own wires (:func:`qattn.executors.statevectors.unitary`) vs the
  compiled plan (:func:`qattn.executors.statevectors.compile_ansatz`: one cos/sin, one Kronecker gather);
- the product-state encodings: autograd's Kronecker product wire by wire vs
  :class:`qattn.executors.statevectors.ProductStates` (analytic backward);
- the N x S overlaps: full complex states ``|<U_K S(k)|U_Q S(q)>|^2`` (complex matmul) vs the folded
  metric ``|<S(k)|M|S(q)>|^2`` with real encodings, as two real matmuls whose results autograd saves,
  vs :func:`qattn.executors.statevectors.fidelity_scores` (nothing N x S saved, overlaps recomputed by row blocks).

The classical layer's own score matmul ``q k^T`` and the softmax (both kinds pay it) are given for scale,
and what a fresh N x S buffer costs: the same square written into a new tensor and into a reused one
(why :class:`qattn.executors.statevectors.SquaredOverlaps` recomputes in a reused workspace instead of saving).
"""

from __future__ import annotations

import argparse
import statistics
import time

import pennylane as qml
import torch

from qattn.circuits import CATALOGUE, FeatureMap
from qattn.circuits.to_pennylane import apply_pennylane
from qattn.executors.base import SquaredModulus
from qattn.executors.statevectors import compile_ansatz, fidelity_scores
from qattn.executors.pennylane import PennyLaneExecutor, batch_last, unitary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--qubits", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    batch, heads, tokens, n = args.batch, args.heads, args.tokens, args.qubits
    dim = 2**n

    torch.manual_seed(0)
    fmap = FeatureMap(CATALOGUE.get("angle_ry"), CATALOGUE.get("hardware_efficient"), n)
    executor = PennyLaneExecutor()
    w = (0.1 * torch.randn(2 * heads, *fmap.weight_shape[1:])).requires_grad_()  # query and key heads
    x_q = torch.randn(batch, heads, tokens, n, requires_grad=True)
    x_k = torch.randn(batch, heads, tokens, n, requires_grad=True)
    with torch.no_grad():
        s_q, s_k = executor.encoded_states(fmap, x_q), executor.encoded_states(fmap, x_k)
        u = unitary(fmap.ansatz_gates(batch_last(w)), n, 2 * heads, torch.complex64)
    s_q, s_k = s_q.requires_grad_(), s_k.requires_grad_()
    u_q, u_k = u[:heads].clone().requires_grad_(), u[heads:].clone().requires_grad_()
    metric = (u_k.mH @ u_q).detach().requires_grad_()
    features = torch.randn(batch, heads, tokens, dim, requires_grad=True)
    scores = torch.randn(batch, heads, tokens, tokens, requires_grad=True)
    plain, buffer = torch.randn(batch, heads, tokens, tokens), torch.empty(batch, heads, tokens, tokens)
    plan = compile_ansatz(fmap.ansatz, n)

    def total(t: torch.Tensor) -> torch.Tensor:
        return torch.view_as_real(t).sum() if t.is_complex() else t.sum()

    def matrix_unitaries():
        qfunc = lambda weights: apply_pennylane(fmap.ansatz_gates(batch_last(weights)))  # noqa: E731
        return qml.matrix(qfunc, wire_order=range(n))(w)

    def full_states():
        psi_q, psi_k = s_q.to(torch.complex64) @ u_q.mT, s_k.to(torch.complex64) @ u_k.mT
        overlaps = psi_q @ psi_k.mH
        return overlaps.real.square() + overlaps.imag.square()

    def wire_by_wire():
        half = torch.cat([x_q, x_k], -2) * 0.5
        psi = None
        for q in range(n):  # the encoding as it was: per-wire selects, autograd's backward
            wire = torch.stack([half[..., q].cos(), half[..., q].sin()], -1)
            psi = wire if psi is None else (psi.unsqueeze(-1) * wire.unsqueeze(-2)).flatten(-2)
        return psi

    def saved_real_matmuls():
        m_s_q = s_q @ torch.cat([metric.real, metric.imag], -2).mT  # (B, H, N, 2D): [Re M s_q | Im M s_q]
        re, im = (part @ s_k.mT for part in m_s_q.split(dim, -1))
        return SquaredModulus.apply(re, im)

    parts = {
        "unitaries: qml.matrix": matrix_unitaries,
        "unitaries: gate matrices on their wires": lambda: unitary(fmap.ansatz_gates(batch_last(w)), n, 2 * heads, torch.complex64),
        "unitaries: compiled plan": lambda: plan.unitaries(w.reshape(2 * heads, -1)),
        "encodings: autograd, wire by wire (q and k)": wire_by_wire,
        "encodings: ProductStates (q and k)": lambda: executor.encoded_states(fmap, torch.cat([x_q, x_k], -2)),
        "overlaps: complex states, complex matmul": full_states,
        "overlaps: folded metric, two real matmuls saved": saved_real_matmuls,
        "overlaps: folded metric, fidelity_scores": lambda: fidelity_scores(s_q, s_k, metric),
        "for scale: classical q k^T (head dim 2^n)": lambda: features @ features.mT,
        "for scale: softmax over N x S": lambda: torch.softmax(scores, -1),
        "N x S square into a fresh buffer (forward only)": lambda: plain.square(),
        "N x S square into a reused buffer (forward only)": lambda: torch.square(plain, out=buffer),
    }
    times: dict[str, list[float]] = {name: [] for name in parts}
    for round_ in range(args.repeats + 1):
        for name, part in parts.items():
            start = time.perf_counter()
            out = total(part())
            if out.requires_grad:
                out.backward()
            if round_:
                times[name].append(time.perf_counter() - start)
    print(f"B={batch} N={tokens} heads={heads} qubits={n} threads={torch.get_num_threads()}; fwd+bwd, median of {args.repeats}")
    width = max(map(len, parts))
    for name, t in times.items():
        print(f"{name:<{width}}  {statistics.median(t) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
