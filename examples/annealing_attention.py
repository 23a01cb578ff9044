"""QAMA-style annealing attention: each head selects tokens by solving a QUBO, with the solver you choose.

``AnnealingMultiheadAttention`` takes the call of ``torch.nn.MultiheadAttention``; its solver is a name
or a configured ``QuboSolver`` (``resolve_solver(name, seed=..., **options)``). Here the solver is
wrapped in a small composite that keeps what it returned, so the example can print each QUBO's energy
beside the exact optimum (for problems of at most 20 variables) and which tokens each head selected.
The output's gradient is straight-through: the selection is held fixed, as QAMA trains it.

    python examples/annealing_attention.py --solver batched            # 2 heads x 8 tokens x 4 sequences
    python examples/annealing_attention.py --solver sa --option num_reads=10 --option num_sweeps=1000
    python examples/annealing_attention.py --solver qaoa --tokens 4 --batch 2 --option maxiter=5
"""

import argparse
import ast

import torch

from qattn import AnnealingMultiheadAttention
from qattn.solvers import QuboSolver, resolve_solver

DEFAULTS = {  # options of each solver here; --option overrides them
    "exact": {}, "sa": {}, "batched": {"sweeps": 64, "restarts": 16}, "qaoa": {"p": 1, "maxiter": 50, "shots": 1024},
}


class Recorded(QuboSolver):
    """Any solver, unchanged, keeping the problems and solutions of its last call (a composite)."""

    def __init__(self, solver: QuboSolver) -> None:
        super().__init__(seed=solver.seed)
        self.solver, self.name, self.max_variables = solver, solver.name, solver.max_variables
        self.last = None

    def solve(self, Q, free=None):
        self.last = (Q, free, self.solver.solve(Q, free))
        return self.last[2]

    def _solve(self, Q, free):
        return self.solver._solve(Q, free)

    def __repr__(self) -> str:
        return f"Recorded({self.solver!r})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solver", choices=list(DEFAULTS), default="batched")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="solver option, e.g. sweeps=8 (batched), num_reads=10 (sa), maxiter=20 (qaoa)")
    parser.add_argument("--embed-dim", type=int, default=16)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    options = {**DEFAULTS[args.solver], **{k: ast.literal_eval(v) for k, v in (o.split("=", 1) for o in args.option)}}

    solver = Recorded(resolve_solver(args.solver, seed=args.seed, **options))
    layer = AnnealingMultiheadAttention(args.embed_dim, args.heads, solver=solver)
    print(layer)
    x = torch.randn(args.batch, args.tokens, args.embed_dim, requires_grad=True)  # (B, T, E)
    padding = torch.zeros(args.batch, args.tokens, dtype=torch.bool)
    padding[-1, -1] = True  # the last sequence is one token shorter: its last token is never selected
    out, weights = layer(x, x, x, key_padding_mask=padding, average_attn_weights=False)  # (B, T, E), (B, H, T, T)
    out.square().mean().backward()
    norms = [f"{name} {p.grad.norm():.4f}" for name, p in layer.named_parameters() if not name.endswith("bias")]
    print(f"output {tuple(out.shape)}, weights {tuple(weights.shape)}; gradient norms: input {x.grad.norm():.4f}, "
          + ", ".join(norms))

    Q, free, found = solver.last
    selected = found.x.view(args.batch, args.heads, args.tokens).bool()  # (B, H, T)
    for b in range(args.batch):
        print(f"sequence {b}: " + "; ".join(f"head {h} selects {selected[b, h].nonzero().flatten().tolist()}"
                                            for h in range(args.heads)))
    assert not selected[-1, :, -1].any(), "a padded token was selected"
    print("weights of sequence 0, head 0 (row n: the selected tokens query n pairs with, when head 0 selected n):")
    for row in weights[0, 0]:
        print("  " + " ".join(f"{w:.2f}" for w in row.tolist()))

    print(f"QUBO energies ({len(found.energy)} problems of {Q.shape[-1]} variables), {args.solver}:",
          " ".join(f"{e:.4f}" for e in found.energy.tolist()))
    if Q.shape[-1] <= 20:
        exact = resolve_solver("exact").solve(Q, free).energy
        print("exact optima:", " ".join(f"{e:.4f}" for e in exact.tolist()))
        gap = (found.energy - exact) / exact.abs().clamp_min(1e-12)
        optimal = int((gap < 1e-6).sum())
        print(f"relative gap to the optimum: mean {gap.mean():.2e}, at the optimum {optimal}/{len(gap)}")
    for run in getattr(solver.solver, "runs", []):  # qaoa: each problem's optimised circuit
        print(f"qaoa problem {run.problem}: {run.variables} qubits, <H> = {run.expectation:.4f} after "
              f"{run.evaluations} evaluations (the best of the samples is the solution above)")


if __name__ == "__main__":
    main()
