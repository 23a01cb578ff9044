"""Pairwise compute-uncompute vs randomized measurements for a chunk's fidelities, at equal total shots.

    python benchmarks/fidelity_estimators.py            # n = 2..6 qubits, chunks S = 16, 64, 256, 512
    python benchmarks/fidelity_estimators.py --quick    # n = 2, 3; S = 16, 64; fewer rotations

A self-attention chunk needs ``|<q_i|k_j>|^2`` for S Haar-random query states and S key states.
Pairwise: S*S compute-uncompute circuits of ``m`` shots each; the estimate is Binomial(m, F)/m, so its
MSE is ``F(1-F)/m`` (analytic, averaged over all S*S pairs). Randomized
(:mod:`qattn.executors.randomized`): the 2S states each measured after K random local rotations with M
shots, ``2*S*K*M`` shots in all; at equal total shots ``T = S*S*m``, ``K = T / (2*S*M)``, for M in
``--shots-per-circuit`` (default 1, 16, 64; the best M is reported).

The randomized estimate is a mean of K independent, unbiased single-rotation estimates, so its MSE is
exactly (MSE of one rotation) / K. That single-rotation MSE is measured per M by simulation
(``--repeats`` batches of ``--rotations`` rotations, fresh each batch, on a panel of ``--panel``
queries x keys taken from the chunk) and divided by K. The "direct" column checks this on the panel by
running the whole K-rotation estimator ``--repeats`` times (only where K*M <= ``--direct-max``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

import numpy as np

from qattn.executors.randomized import overlaps, random_rotations, sample_bits


def haar_states(count: int, n: int, rng: np.random.Generator) -> np.ndarray:
    psi = rng.normal(size=(count, 2**n)) + 1j * rng.normal(size=(count, 2**n))
    return psi / np.linalg.norm(psi, axis=1, keepdims=True)


def fidelities(queries: np.ndarray, keys: np.ndarray) -> np.ndarray:
    return np.abs(queries.conj() @ keys.T) ** 2


def single_rotation_mse(queries, keys, shots, rotations, batches, rng) -> float:
    """Mean over pairs and rotations of ``(x_k - F)^2``, one rotation's estimate ``x_k``.

    From :func:`overlaps`' mean and standard error: ``sum_k (x_k - F)^2 / K = SE^2 (K-1) + (mean - F)^2``.
    """
    exact, n = fidelities(queries, keys), int(np.log2(queries.shape[1]))
    total = 0.0
    for _ in range(batches):
        angles = random_rotations(n, rotations, rng)
        mean, error = overlaps(sample_bits(queries, angles, shots, rng), sample_bits(keys, angles, shots, rng))
        total += np.mean(error**2 * (rotations - 1) + (mean - exact) ** 2)
    return total / batches


def direct_mse(queries, keys, shots, k, repeats, rng) -> float:
    """MSE of the full K-rotation estimator over ``repeats`` independent runs, averaged over pairs."""
    exact, n = fidelities(queries, keys), int(np.log2(queries.shape[1]))
    errors = []
    for _ in range(repeats):
        angles = random_rotations(n, k, rng)
        mean, _ = overlaps(sample_bits(queries, angles, shots, rng), sample_bits(keys, angles, shots, rng))
        errors.append(np.mean((mean - exact) ** 2))
    return float(np.mean(errors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=8, help="rotation batches (and direct-check runs)")
    parser.add_argument("--rotations", type=int, default=256, help="rotations per batch")
    parser.add_argument("--qubits", type=int, nargs="+", default=[2, 3, 4, 5, 6])
    parser.add_argument("--chunks", type=int, nargs="+", default=[16, 64, 256, 512])
    parser.add_argument("--pair-shots", type=int, default=256, help="m: shots per pair for compute-uncompute")
    parser.add_argument("--shots-per-circuit", type=int, nargs="+", default=[1, 16, 64], help="choices of M")
    parser.add_argument("--panel", type=int, default=16, help="queries (and keys) simulated per chunk")
    parser.add_argument("--direct-max", type=int, default=1 << 17, help="largest K*M checked directly")
    parser.add_argument("--quick", action="store_true", help="n = 2, 3; S = 16, 64; 4 x 128 rotations")
    args = parser.parse_args()
    if args.quick:
        args.qubits, args.chunks, args.repeats, args.rotations = [2, 3], [16, 64], 4, 128
    rng = np.random.default_rng(args.seed)
    m, shot_choices = args.pair_shots, args.shots_per_circuit
    start = time.perf_counter()

    print(f"`{shlex.join(['python', *sys.argv])}`\n")
    print(
        "| qubits | chunk S | total shots | pairwise MSE (analytic) | randomized MSE | best M (K) "
        "| ratio rand/pair | rand. shots for pairwise MSE | randomized MSE, direct |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    per_m_rows = []
    for n in args.qubits:
        panel_q, panel_k = haar_states(args.panel, n, rng), haar_states(args.panel, n, rng)
        per_rotation = {
            shots: single_rotation_mse(panel_q, panel_k, shots, args.rotations, args.repeats, rng)
            for shots in shot_choices
        }
        per_m_rows.append((n, per_rotation))
        for s in args.chunks:
            queries, keys = haar_states(s, n, rng), haar_states(s, n, rng)
            queries[: args.panel], keys[: args.panel] = panel_q[:s], panel_k[:s]  # the panel is part of the chunk
            exact = fidelities(queries, keys)
            pairwise = float(np.mean(exact * (1 - exact))) / m
            total = s * s * m
            options = {shots: per_rotation[shots] / max(1, total // (2 * s * shots)) for shots in shot_choices}
            best = min(options, key=options.get)
            k = max(1, total // (2 * s * best))
            ratio = options[best] / pairwise
            direct = "—"
            if k * best <= args.direct_max:
                found = direct_mse(panel_q[:s], panel_k[:s], best, k, args.repeats, rng)
                direct = f"{found:.3g}"
            print(
                f"| {n} | {s} | {total:,} | {pairwise:.3g} | {options[best]:.3g} | {best} ({k}) "
                f"| {ratio:.3g} | {ratio * total:,.0f} | {direct} |"
            )

    print("\nSingle-rotation MSE by shots per circuit M (randomized MSE = this / K, with K = T / (2 S M)):\n")
    print("| qubits | " + " | ".join(f"M = {shots}" for shots in shot_choices) + " |")
    print("|---:|" + "---:|" * len(shot_choices))
    for n, per_rotation in per_m_rows:
        print(f"| {n} | " + " | ".join(f"{per_rotation[shots]:.3g}" for shots in shot_choices) + " |")
    print(
        f"\nPairwise MSE is analytic (mean F(1-F)/m over all S*S pairs, m = {m}). Randomized MSE: "
        f"{args.repeats} x {args.rotations} rotations on a {args.panel} x {args.panel} panel per qubit count, "
        f"seed {args.seed}; {time.perf_counter() - start:.1f} s."
    )


if __name__ == "__main__":
    main()
