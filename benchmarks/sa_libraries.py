"""Which simulated annealing library the ``sa`` solver builds on: dwave-samplers against OpenJij.

    python benchmarks/sa_libraries.py                # 10 problems per family (about a minute)
    python benchmarks/sa_libraries.py --problems 3 --families gauss12 gauss64

Families (seeded): random symmetric QUBOs with gaussian entries of 12, 64 and 260 variables (260 = 65
tokens x 4 heads, QAMA's shape at our imdb setting), and QAMA-like QUBOs of the same shape: per head
the negated symmetrised scores ``q.k / sqrt(d)`` between tokens and a linear term ``-0.16 n h``,
plus a penalty between the same token in different heads (arXiv 2504.11083, QAMA's QUBO builder).

Both libraries run through their public samplers at the same settings: reads, sweeps per read, and
the same geometric beta schedule (:func:`qattn.solvers.sa.default_beta_range`; D-Wave's own default
range costs ~90 ms of Python per 260-variable dense problem). OpenJij repeats one read ``num_reads``
times when given a seed, so it runs one call per read with its own seed. Quality: the mean relative
gap ``(E - E_ref) / |E_ref|`` and the share of problems reaching ``E_ref``, the exact optimum for 12
variables, else the best energy of any run here (with a long run, 10 reads x 3000 sweeps, of each
library). Time: CPU milliseconds per problem, model building included (both libraries run on one thread).
A last row per family runs qattn's ``sa`` solver (dwave-samplers) at its defaults on the family as one batch.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import math
import sys
import time
import warnings

import numpy as np
import torch

from qattn.solvers.exact import ExactSolver
from qattn.solvers.sa import SimulatedAnnealingSolver, default_beta_range

SETTINGS = ((1, 100), (4, 250), (10, 1000))  # (reads, sweeps per read)
LONG = (10, 3000)


def gaussian_qubo(rng: np.random.Generator, n: int) -> np.ndarray:
    a = rng.normal(size=(n, n))
    return (a + a.T) / 2


def qama_qubo(rng: np.random.Generator, heads: int = 4, tokens: int = 65, dim: int = 16) -> np.ndarray:
    """A QUBO shaped like QAMA's: variable (head, token), ``heads * tokens`` of them."""
    q, k, v = (rng.normal(size=(heads, tokens, dim)) for _ in range(3))
    scores = q @ k.transpose(0, 2, 1) / math.sqrt(dim)  # (heads, tokens, tokens)
    scores = (scores + scores.transpose(0, 2, 1)) / 2
    scores[:, np.arange(tokens), np.arange(tokens)] = 0.0
    h = (v * rng.normal(size=dim)).mean(-1)  # (heads, tokens)
    Q = np.zeros((heads, tokens, heads, tokens))
    for head in range(heads):
        Q[head, :, head, :] = -scores[head] - np.diag(0.16 * tokens * h[head])
    penalty = 0.8 / 2 * math.sqrt(2 / math.pi) * tokens / (heads - 1)
    same_token = np.arange(tokens)
    for a in range(heads):
        for b in range(heads):
            if a != b:
                Q[a, same_token, b, same_token] = penalty
    return Q.reshape(heads * tokens, heads * tokens)


FAMILIES = {
    "gauss12": lambda rng: gaussian_qubo(rng, 12),
    "gauss64": lambda rng: gaussian_qubo(rng, 64),
    "gauss260": lambda rng: gaussian_qubo(rng, 260),
    "qama260": qama_qubo,
}


def dwave_energy(Q: np.ndarray, reads: int, sweeps: int, seed: int) -> float:
    import dimod
    from dwave.samplers import SimulatedAnnealingSampler

    bqm = dimod.BQM(Q, "BINARY")  # a dense array: the pair (i, j) gets Q_ij + Q_ji
    result = SimulatedAnnealingSampler().sample(
        bqm, num_reads=reads, num_sweeps=sweeps, beta_range=default_beta_range(Q), seed=seed
    )
    x = result.record.sample[np.argmin(result.record.energy)]
    return float(x @ Q @ x)


def openjij_energy(Q: np.ndarray, reads: int, sweeps: int, seed: int) -> float:
    import openjij

    upper = np.triu(2 * Q, 1) + np.diag(np.diag(Q))  # OpenJij reads the matrix as upper-triangular biases
    model = openjij.BinaryQuadraticModel.from_numpy_matrix(upper, sparse=False)
    hot, cold = default_beta_range(Q)
    best = math.inf
    for read in range(reads):
        result = openjij.SASampler().sample(
            model, num_reads=1, num_sweeps=sweeps, beta_min=hot, beta_max=cold, seed=seed * 1000 + read, sparse=False
        )
        x = np.empty(len(Q))
        x[list(result.variables)] = result.record.sample[0]
        best = min(best, float(x @ Q @ x))
    return best


LIBRARIES = {"dwave-samplers": dwave_energy, "openjij": openjij_energy}


def reference_energies(family: str, problems: list[np.ndarray]) -> list[float]:
    if family == "gauss12":
        Q = torch.tensor(np.stack(problems))
        return ExactSolver().solve(Q).energy.tolist()
    return [min(run(Q, *LONG, seed=10_000 + i) for run in LIBRARIES.values()) for i, Q in enumerate(problems)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=10)
    parser.add_argument("--families", nargs="+", choices=list(FAMILIES), default=list(FAMILIES))
    args = parser.parse_args()
    try:
        versions = ", ".join(f"{name} {importlib.metadata.version(name)}" for name in LIBRARIES)
    except importlib.metadata.PackageNotFoundError as missing:
        sys.exit(f"{missing.name} is not installed; the comparison needs both: pip install dwave-samplers openjij")
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)  # idle torch OpenMP workers spin after parallel ops, billing the annealers for it
    for run in LIBRARIES.values():  # imports and first-call set-up stay out of the times
        run(gaussian_qubo(np.random.default_rng(0), 8), 1, 10, seed=0)
    print(f"# Simulated annealing libraries ({versions}; {args.problems} problems per family)\n")
    print("| family | reads x sweeps | library | mean gap | at E_ref | CPU ms/problem |")
    print("|---|---|---|---:|---:|---:|")
    for family in args.families:
        rng = np.random.default_rng(list(FAMILIES).index(family))
        problems = [FAMILIES[family](rng) for _ in range(args.problems)]
        reference = np.array(reference_energies(family, problems))
        energies = {(setting, name): [] for setting in SETTINGS for name in LIBRARIES}
        seconds = dict.fromkeys(energies, 0.0)
        for setting in SETTINGS:
            for i, Q in enumerate(problems):  # the libraries take turns, so load on the machine hits both alike
                for name, run in LIBRARIES.items():
                    start = time.process_time()
                    energies[setting, name].append(run(Q, *setting, seed=i))
                    seconds[setting, name] += time.process_time() - start
        solver = SimulatedAnnealingSolver()  # qattn's solver at its defaults, the whole family as one batch
        row = ((solver.num_reads, solver.num_sweeps), "qattn 'sa' solver")
        start = time.process_time()
        energies[row] = solver.solve(torch.tensor(np.stack(problems))).energy.tolist()
        seconds[row] = time.process_time() - start
        if family != "gauss12":  # the best energy any run found
            reference = np.min([reference, *energies.values()], axis=0)
        for ((reads, sweeps), name), found in energies.items():
            gap = (np.array(found) - reference) / np.abs(reference)
            gap[gap <= 1e-9] = 0.0  # at E_ref, up to rounding
            ms = seconds[(reads, sweeps), name] / len(problems) * 1e3
            line = f"| {family} | {reads} x {sweeps} | {name} | {gap.mean():.1e} | {np.mean(gap == 0):.0%} | {ms:.1f} |"
            print(line, flush=True)


if __name__ == "__main__":
    main()
