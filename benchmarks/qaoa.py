"""What the ``qaoa`` QUBO solver costs and how often it finds the optimum, by problem size and layers.

    python benchmarks/qaoa.py                                  # 8 random QUBOs per size, sizes 4, 8, 12, 16
    python benchmarks/qaoa.py --sizes 6,10 --layers 1,2,3 --shots 32

For seeded random symmetric QUBOs (Gaussian entries), each row solves them in exact mode and prints
seconds per problem, the optimiser's mean evaluations, the fraction whose exact optimum (``exact``
solver) was among the shots, what uniform sampling with as many shots would find, and the mean
probability of the optimum in the optimised state relative to the uniform ``2^-n``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from qattn.solvers.exact import ExactSolver
from qattn.solvers.qaoa import QaoaSolver, qubo_to_ising


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4,8,12,16", help="variables per problem, comma-separated")
    parser.add_argument("--layers", default="1,2", help="QAOA layers p, comma-separated")
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--shots", type=int, default=64)
    parser.add_argument("--maxiter", type=int, default=100)
    args = parser.parse_args()

    print(f"{args.problems} random QUBOs per size, {args.shots} shots, COBYLA maxiter {args.maxiter}, mode exact")
    print(f"{'n':>3} {'p':>2} {'s/problem':>10} {'evals':>6} {'found':>6} {'uniform':>8} {'P(opt) x 2^n':>13}")
    for n in (int(v) for v in args.sizes.split(",")):
        generator = torch.Generator().manual_seed(n)
        Q = torch.randn(args.problems, n, n, generator=generator, dtype=torch.float64)
        Q = (Q + Q.mT) / 2
        best = ExactSolver().solve(Q).energy
        uniform = 1 - (1 - 2.0**-n) ** args.shots  # P(a unique optimum among the shots) when sampling uniformly
        for p in (int(v) for v in args.layers.split(",")):
            solver = QaoaSolver(p=p, shots=args.shots, maxiter=args.maxiter)
            start = time.perf_counter()
            found = solver.solve(Q)
            seconds = (time.perf_counter() - start) / args.problems
            rate = float(torch.isclose(found.energy, best).double().mean())
            gain = []
            for run in solver.runs:
                ising = qubo_to_ising(Q[run.problem].numpy()).scaled(1 / run.scale)
                spectrum = ising.spectrum()
                gain.append(solver.probabilities(ising, run.angles)[np.isclose(spectrum, spectrum.min())].sum() * 2**n)
            evaluations = np.mean([run.evaluations for run in solver.runs])
            print(f"{n:>3} {p:>2} {seconds:>10.2f} {evaluations:>6.0f} {rate:>6.2f} {uniform:>8.2f} {np.mean(gain):>13.1f}")


if __name__ == "__main__":
    main()
