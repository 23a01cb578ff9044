"""How close each QUBO solver comes to the optimum on random and real attention QUBOs, and at what cost.

    python benchmarks/qubo_solvers.py                                   # random QUBOs only (about a minute)
    python benchmarks/qubo_solvers.py --checkpoint runs/imdb-.../best.pt --data-dir ../shared/data
    python benchmarks/qubo_solvers.py --problems 4 --small 12 --qaoa-max 20

Families of problems (seeded), ``--problems`` of each:

- ``gauss``: symmetric QUBOs with gaussian entries (``sa_libraries.gaussian_qubo``), one dense group.
- ``qama-test``: QAMA's own solver test (``utils/test_error2/test_error.py``): gaussian inputs
  ``(49 tokens, d_model 256)`` through a freshly initialised ``QAMultiheadAttention(d_model=256,
  embed_dim=256, num_heads=8)`` (LayerNorms, bias-free linear maps as ``nn.Linear`` initialises them,
  heads of width ``embed_dim`` 256, scores scaled by ``(d_model / 8)^-1/2``, ``E2V`` gaussian), QUBOs
  built by :func:`qattn.annealing.qama_qubo` at QAMA's coefficients: 8 heads x 49 tokens = 392
  variables. (The published ``QAMultiheadAttention`` splits heads at width ``d_model / 8`` = 32, which
  with ``embed_dim=256`` fails, so the test ran on an earlier version; we take the test's arguments.)
- ``imdb-local`` / ``imdb-global`` (with ``--checkpoint``): the QUBOs a trained annealing model's first
  local and first global layer hand their solver on ``--documents`` documents of the data set's
  ``--split``, recorded by a :class:`Recorder` set as each layer's ``kernel.solver`` (it delegates to
  the model's own solver, so the forward pass is the model's). Local: the chunks with all 64 words
  (4 heads x 65 tokens = 260 variables). Global: one problem per document over its chunk summaries.

Problems of at most 20 variables are compared with the ``exact`` optimum: ``gauss`` of that size; the
others as restrictions of the real QUBOs to their first ``n / 4`` tokens of 4 heads (every other
variable held at 0): for ``imdb-local`` the summary token and the first words of each full chunk, for
``qama-test`` the first 4 of its 8 heads; ``imdb-global`` takes the documents of exactly ``n / 4``
chunks, whose whole global QUBO that is. ``qaoa`` runs up to ``--qaoa-max`` variables: its statevector
angle optimisation costs ~0.3 s per problem at 12 variables, ~20 s at 16 and ~70 s at 20 here.
Larger problems (``qama-test`` 392, ``imdb-local`` 260 variables) are compared with the best energy any
solver found, a long ``sa`` run (10 reads x 1000 sweeps) among them.

Gap: the mean over problems of ``(E - E_ref) / |E_ref|`` of the QUBO energy ``E`` the solvers minimise;
"at ref": the share of problems where ``E`` reaches ``E_ref`` (to 1e-9 relative). Time: CPU
milliseconds per problem (torch on one thread), each family solved as one batch, as a layer does (the
``batched`` annealer's time per problem shrinks with the batch; a training batch has ~100 chunks).

QAMA's footing. QAMA reports its C++ SA 1.09 away from Gurobi (``utils/test_error2/note.md``: "average
diff to gurobi ... c_sa: 1.0947657823562622"). That number is ``mean_b (E_csa[b] - E_gurobi[b])`` over a
batch of 256 ``qama-test`` problems, in absolute energy units, neither a ratio nor a percent, of QAMA's
layer energy ``E = sum_h sum_n H[h, n] = -sum_h (x_h^T J_h x_h + s_h . x_h)`` (``calculate_energy`` in
``QAMultiheadAttention.py``, summed over heads and tokens): the attention energy, without the cross-head
penalty and with the raw linear terms ``s`` (not the ``0.16 T s`` the QUBO minimises). Its reference
is Gurobi at a 1% MIP gap and 10 s per problem, not a proven optimum (the C++ SA found the lowest energy
more often). The last table gives ours the same way, ``mean (E(x) - E(x_ref))``, against ``x_ref``
the exact optimum or the best solution found, with the mean ``|E(x_ref)|`` for scale.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sa_libraries import gaussian_qubo  # benchmarks/, this script's folder

from qattn.annealing import QAMA_COEFFICIENTS, qama_qubo
from qattn.data import DataError
from qattn.solvers import GroupedQubo, QuboSolver, resolve_solver

SOLVERS: dict[str, Callable[[], QuboSolver]] = {  # label -> solver; "exact" only up to 20 variables
    "exact": lambda: resolve_solver("exact"),
    "qaoa": lambda: resolve_solver("qaoa"),
    "sa": lambda: resolve_solver("sa"),
    "sa 10x1000": lambda: resolve_solver("sa", num_reads=10, num_sweeps=1000),
    "batched": lambda: resolve_solver("batched"),
    "batched 64x16": lambda: resolve_solver("batched", sweeps=64, restarts=16),
}
HEADS = 4  # of the restricted and the imdb problems


@dataclass
class Family:
    """``P`` problems: ``qubo`` (float64 dense ``(P, n, n)`` or grouped), ``free`` ``(P, n)``; for attention
    QUBOs also QAMA's couplings ``J`` ``(P, H, T, T)`` and linear terms ``s`` ``(P, H, T)``."""

    name: str
    qubo: torch.Tensor | GroupedQubo
    free: torch.Tensor
    J: torch.Tensor | None = None
    s: torch.Tensor | None = None

    @property
    def variables(self) -> int:
        return self.free.shape[1]

    def restrict(self, heads: int, tokens: int) -> Family:
        """The first ``tokens`` tokens of the first ``heads`` heads; every other variable held at 0."""
        q, problems = self.qubo, self.free.shape[0]
        sub = GroupedQubo(q.coupling[:, :heads, :tokens, :tokens], q.linear[:, :heads, :tokens], q.penalty)
        free = self.free.view(problems, *q.linear.shape[1:])[:, :heads, :tokens].reshape(problems, -1)
        return Family(self.name, sub, free, self.J[:, :heads, :tokens, :tokens], self.s[:, :heads, :tokens])

    def qama_energy(self, x: torch.Tensor) -> torch.Tensor:
        """QAMA's layer energy ``-sum_h (x_h^T J_h x_h + s_h . x_h)`` per problem."""
        x = x.view(self.s.shape)
        return -(x * (self.J @ x.unsqueeze(-1)).squeeze(-1) + self.s * x).sum((1, 2))


def attention_family(name: str, qubo: GroupedQubo, free: torch.Tensor, coefficients: dict[str, float]) -> Family:
    """An attention QUBO with its ``J`` and ``s`` read back from :func:`qama_qubo`'s coefficients."""
    qubo = GroupedQubo(*(t.double() for t in (qubo.coupling, qubo.linear, qubo.penalty)))
    tokens = free.view(qubo.linear.shape).any(dim=1).sum(-1).double()  # QAMA's sequence length T
    J = -qubo.coupling / coefficients["quadratic"]
    s = -qubo.linear / (coefficients["linear"] * tokens.clamp_min(1)[:, None, None])
    return Family(name, qubo, free, J, s)


def gauss_family(n: int, problems: int) -> Family:
    rng = np.random.default_rng(n)
    Q = torch.tensor(np.stack([gaussian_qubo(rng, n) for _ in range(problems)]))
    return Family("gauss", Q, torch.ones(problems, n, dtype=torch.bool))


def qama_test_family(problems: int, heads: int = 8, tokens: int = 49, d_model: int = 256, width: int = 256) -> Family:
    """QAMA's solver test problems: see the module docstring."""
    g = torch.Generator().manual_seed(42)
    x = F.layer_norm(torch.randn(problems, tokens, d_model, generator=g), (d_model,))
    bound = 1 / math.sqrt(d_model)  # nn.Linear's initialisation
    q, k, v = (x @ (2 * torch.rand(d_model, heads * width, generator=g) - 1).mul(bound) for _ in range(3))
    q, k, v = (t.view(problems, tokens, heads, width).transpose(1, 2).double() for t in (q, k, v))
    J = q @ k.transpose(-1, -2) / math.sqrt(d_model // heads)  # QAMA's scale: head_dim = d_model // heads
    J = (J + J.transpose(-1, -2)) / 2 * (1 - torch.eye(tokens, dtype=J.dtype))
    s = (v * torch.randn(width, generator=g, dtype=J.dtype)).mean(-1)
    free = torch.ones(problems, heads, tokens, dtype=torch.bool)
    return Family("qama-test", qama_qubo(J, s, free, **QAMA_COEFFICIENTS), free.view(problems, -1), J, s)


class Recorder(QuboSolver):
    """Solves with ``inner`` and keeps every QUBO and ``free`` mask it was given."""

    name = "recorder"
    structured = True

    def __init__(self, inner: QuboSolver) -> None:
        super().__init__(seed=inner.seed)
        self.inner, self.seen = inner, []

    def _solve(self, Q, free):
        self.seen.append((Q, free))
        return self.inner.solve(Q, free).x


def imdb_qubos(checkpoint: str, split: str, documents: int) -> list[Family]:
    """The first local and first global layer's QUBOs on ``documents`` documents (see the module docstring)."""
    from qattn.experiment import load_saved
    from qattn.trainer import pad_batch

    saved = load_saved(checkpoint)
    if saved.config.model.attention != "annealing":
        raise ValueError(f"its model has {saved.config.model.attention} attention; this benchmark needs an annealing one")
    ids = saved.encoded(split).ids[:documents]
    kernels = [saved.model.local_blocks[0].attn.kernel, saved.model.global_blocks[0].attn.kernel]
    recorders = [Recorder(kernel.solver) for kernel in kernels]
    for kernel, recorder in zip(kernels, recorders):
        kernel.solver = recorder
    with torch.no_grad():
        for start in range(0, len(ids), 32):
            saved.model(pad_batch(ids, list(range(start, min(start + 32, len(ids))))))
    names = ("imdb-local", "imdb-global")
    return [recorded(name, r.seen, k.coefficients) for name, r, k in zip(names, recorders, kernels)]


def recorded(name: str, seen: list, coefficients: dict[str, float]) -> Family:
    """Recorded QUBOs as one family, padded with held variables to the most tokens (a global layer's
    batches differ)."""
    tokens = max(q.linear.shape[-1] for q, _ in seen)
    parts = []
    for q, free in seen:
        pad = tokens - q.linear.shape[-1]
        free = F.pad(free.view(q.linear.shape), (0, pad)).flatten(1)
        parts.append((F.pad(q.coupling, (0, pad, 0, pad)), F.pad(q.linear, (0, pad)), q.penalty, free))
    coupling, linear, penalty, free = (torch.cat(t) for t in zip(*parts))
    return attention_family(name, GroupedQubo(coupling, linear, penalty), free, coefficients)


def select(family: Family, keep: torch.Tensor, problems: int) -> Family:
    """The first ``problems`` problems where ``keep`` (bool ``(P,)``) holds."""
    index = torch.nonzero(keep).flatten()[:problems]
    q = family.qubo
    qubo = GroupedQubo(q.coupling[index], q.linear[index], q.penalty[index])
    return Family(family.name, qubo, family.free[index], family.J[index], family.s[index])


@dataclass
class Result:
    energy: torch.Tensor  # (P,) QUBO energies
    x: torch.Tensor  # (P, n)
    ms: float  # CPU ms per problem


def solve_all(family: Family, labels: list[str]) -> dict[str, Result]:
    results = {}
    for label in labels:
        solver = SOLVERS[label]()
        start = time.process_time()
        found = solver.solve(family.qubo, family.free)
        ms = (time.process_time() - start) / family.free.shape[0] * 1e3
        results[label] = Result(found.energy, found.x, ms)
    return results


def compare(family: Family, labels: list[str], exact: bool) -> tuple[list[str], list[str]]:
    """Markdown rows of ``family``: gaps to ``exact``'s energies or the best found, and on QAMA's footing."""
    results = solve_all(family, labels)
    if exact:
        reference = results["exact"]
        energy, x = reference.energy, reference.x
    else:
        energies = torch.stack([r.energy for r in results.values()])  # (solvers, P)
        best = energies.argmin(0)
        energy = energies.min(0).values
        x = torch.stack([r.x for r in results.values()])[best, torch.arange(len(best))]
    rows, qama_rows = [], []
    for label, result in results.items():
        gap = (result.energy - energy) / energy.abs().clamp_min(1e-12)
        gap[gap <= 1e-9] = 0.0
        rows.append(
            f"| {family.name} | {family.variables} | {len(gap)} | {label} | {gap.mean():.2e} | {(gap == 0).double().mean():.0%} "
            f"| {result.ms:.1f} |"
        )
        if family.J is not None and label != "exact":
            delta_h = family.qama_energy(result.x) - family.qama_energy(x)
            qama_rows.append(
                f"| {family.name} | {family.variables} | {label} | {delta_h.mean():+.3f} "
                f"| {family.qama_energy(x).abs().mean():.2f} | {(result.energy - energy).mean():.3f} |"
            )
    return rows, qama_rows


HEADER = "| family | variables | problems | solver | mean gap | at ref | CPU ms/problem |\n|---|---:|---:|---|---:|---:|---:|"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=16, help="problems per family")
    parser.add_argument("--small", type=int, nargs="+", default=[12, 20], help="sizes compared with exact (<= 20)")
    parser.add_argument("--qaoa-max", type=int, default=12, help="largest problem given to qaoa (<= 20)")
    parser.add_argument("--checkpoint", help="a trained annealing model's checkpoint (best.pt): adds imdb QUBOs")
    parser.add_argument("--data-dir", help="the shared data folder, if not the config's or QATTN_DATA_DIR")
    parser.add_argument("--split", default="test", choices=["dev", "test"], help="documents to read")
    parser.add_argument("--documents", type=int, default=192, help="documents run through the model")
    args = parser.parse_args()
    if any(n > 20 or n % HEADS for n in args.small):
        parser.error(f"--small sizes must be multiples of {HEADS} up to 20 (the exact solver's limit)")
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)

    qama_test = qama_test_family(args.problems)
    local = glob = None
    if args.checkpoint:
        if args.data_dir:
            os.environ["QATTN_DATA_DIR"] = args.data_dir
        try:
            local, glob = imdb_qubos(args.checkpoint, args.split, args.documents)
        except DataError as err:
            sys.exit(f"cannot read the documents for {args.checkpoint}: {err} (or pass --data-dir)")
        except (OSError, ValueError, RuntimeError) as err:  # ExperimentError and the like: say what to fix
            sys.exit(f"cannot read QUBOs from {args.checkpoint}: {err}")
        local = select(local, local.free.all(1), args.problems)  # chunks of 64 words and the summary
    else:
        print("No --checkpoint given: random QUBOs only (pass a trained annealing model's best.pt for imdb ones).\n")

    qama_rows = []
    print(f"## Gap to the exact optimum\n\n{HEADER}")
    for n in args.small:
        tokens = n // HEADS
        families = [gauss_family(n, args.problems), qama_test.restrict(HEADS, tokens)]
        if local is not None:
            families.append(local.restrict(HEADS, tokens))
            chunks = glob.free.view(*glob.s.shape).any(1).sum(-1)  # (P,) non-empty chunks per document
            families.append(select(glob, chunks == tokens, args.problems).restrict(HEADS, tokens))
        labels = [label for label in SOLVERS if label != "qaoa" or n <= args.qaoa_max]
        for family in families:
            rows, qama = compare(family, labels, exact=True)
            print("\n".join(rows), flush=True)
            qama_rows += qama

    print(f"\n## Gap to the best energy any solver found\n\n{HEADER}")
    for family in [qama_test] + ([local] if local is not None else []):
        rows, qama = compare(family, [label for label in SOLVERS if label not in ("exact", "qaoa")], exact=False)
        print("\n".join(rows), flush=True)
        qama_rows += qama

    print("\n## On QAMA's footing: mean E(x) - E(x_ref) of the layer energy E = -sum_h (x J x + s x)\n")
    print("QAMA (utils/test_error2/note.md): C++ SA - Gurobi = +1.09, 256 qama-test problems (392 variables).\n")
    print("| family | variables | solver | mean ΔE (QAMA's E) | mean abs E_ref | mean ΔE (QUBO) |\n|---|---:|---|---:|---:|---:|")
    print("\n".join(qama_rows))


if __name__ == "__main__":
    main()
