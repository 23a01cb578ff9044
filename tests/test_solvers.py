"""QUBO solvers against hand-solved problems and the ``exact`` enumeration, seeded throughout."""

import math
import sys

import numpy as np
import pytest
import torch

from qattn.annealing import qama_qubo
from qattn.solvers import SOLVERS, GroupedQubo, resolve_solver
from qattn.solvers.exact import ExactSolver

HEURISTICS = ["sa", "batched"]  # solvers measured against `exact`


def random_qubos(generator: torch.Generator, problems: int, n: int) -> torch.Tensor:
    """``(problems, n, n)`` symmetric, gaussian entries, float64."""
    a = torch.randn(problems, n, n, generator=generator, dtype=torch.float64)
    return (a + a.transpose(1, 2)) / 2


def test_exact_finds_the_optimum_of_a_hand_solved_qubo():
    # E = x0 + x1 - x2 - 4 x0 x1 + 3 x1 x2; by hand: 000->0, 100->1, 010->1, 001->-1, 110->-2,
    # 101->0, 011->3, 111->0; the optimum is 110 at -2.
    Q = torch.tensor([[[1.0, -2.0, 0.0], [-2.0, 1.0, 1.5], [0.0, 1.5, -1.0]]])
    solution = ExactSolver().solve(Q)
    assert solution.x.tolist() == [[1.0, 1.0, 0.0]]
    assert solution.energy.tolist() == [-2.0]


def test_exact_refuses_more_than_20_variables_and_names_the_solvers_that_take_them():
    with pytest.raises(ValueError, match="at most 20 variables per problem, got 21; use the 'sa' or 'batched' solver"):
        ExactSolver().solve(torch.zeros(1, 21, 21))


@pytest.mark.parametrize("name", HEURISTICS)
def test_a_heuristic_reaches_the_exact_optimum_of_small_problems_at_least_95_percent_of_the_time(name):
    generator = torch.Generator().manual_seed(0)
    solver, exact = SOLVERS.get(name)(seed=0), ExactSolver()
    reached = total = 0
    for n in range(2, 13):  # 10 problems of each size, 110 in all
        Q = random_qubos(generator, 10, n)
        energy, optimum = solver.solve(Q).energy, exact.solve(Q).energy
        assert (energy >= optimum - 1e-9).all()  # nothing beats the optimum: the energies are honest
        reached += int((energy <= optimum + 1e-9).sum())
        total += len(Q)
    assert reached / total >= 0.95, f"{name} reached the optimum in {reached} of {total} problems"


def test_sa_counts_each_off_diagonal_pair_twice():
    # E = -x0 - x1 + 1.5 x0 x1: one variable set gives -1, both -0.5. Counting the pair once (0.75)
    # would make both set (-1.25) the optimum.
    Q = torch.tensor([[[-1.0, 0.75], [0.75, -1.0]]], dtype=torch.float64)
    solution = resolve_solver("sa").solve(Q)
    assert solution.x.sum().item() == 1.0 and solution.energy.tolist() == [-1.0]


def test_sa_holds_the_variables_that_are_not_free_at_0_and_solves_the_free_sub_problem():
    generator = torch.Generator().manual_seed(1)
    Q = random_qubos(generator, 12, 9)
    Q -= 5 * torch.eye(9, dtype=Q.dtype)  # every variable alone would rather be 1
    free = torch.rand(12, 9, generator=generator) > 0.4
    free[0], free[1] = False, True  # nothing free; everything free
    solution = resolve_solver("sa", num_reads=10).solve(Q, free)
    assert (solution.x[~free] == 0).all()
    for p in range(len(Q)):
        index = free[p].nonzero().flatten()
        sub = Q[p][index][:, index][None]
        optimum = ExactSolver().solve(sub).energy.item() if len(index) else 0.0
        assert solution.energy[p].item() == pytest.approx(optimum, abs=1e-9)


def test_sa_energies_are_x_q_x_of_the_matrix_given_even_when_it_is_not_symmetric():
    generator = torch.Generator().manual_seed(2)
    Q = torch.randn(5, 30, 30, generator=generator, dtype=torch.float64)
    solution = resolve_solver("sa", num_sweeps=20).solve(Q)
    for x, q, energy in zip(solution.x.numpy(), Q.numpy(), solution.energy.tolist()):
        assert set(x) <= {0.0, 1.0}
        assert energy == pytest.approx(sum(q[i, j] * x[i] * x[j] for i in range(30) for j in range(30)), abs=1e-9)


def test_sa_is_reproducible_from_its_seed():
    Q = random_qubos(torch.Generator().manual_seed(3), 6, 64)
    options = {"num_reads": 1, "num_sweeps": 5}  # short anneals, so different seeds end in different places
    first, again = (resolve_solver("sa", seed=7, **options).solve(Q).x for _ in range(2))
    other = resolve_solver("sa", seed=8, **options).solve(Q).x
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert torch.equal(resolve_solver("sa", seed=-1).solve(Q[:2]).x, resolve_solver("sa", seed=-1).solve(Q[:2]).x)


def test_sa_takes_a_given_beta_range_and_a_linear_schedule():
    Q = torch.tensor([[[1.0, -2.0, 0.0], [-2.0, 1.0, 1.5], [0.0, 1.5, -1.0]]])
    solver = resolve_solver("sa", beta_range=(0.1, 20.0), beta_schedule="linear")
    assert solver.solve(Q).x.tolist() == [[1.0, 1.0, 0.0]]


def test_default_beta_range_by_hand():
    from qattn.solvers.sa import default_beta_range

    # Q = [[-1, .75], [.75, -1]] in spins: J = 0.375, h = -0.5 + 0.375 = -0.125 for both.
    # Costliest field 0.125 + 0.375 = 0.5 -> hot = ln 2 / 1; typical sqrt(0.125^2 + 0.375^2) for both.
    hot, cold = default_beta_range(np.array([[-1.0, 0.75], [0.75, -1.0]]))
    assert hot == pytest.approx(math.log(2))
    assert cold == pytest.approx(math.log(100) / (0.02 * math.sqrt(0.125**2 + 0.375**2)))
    assert default_beta_range(np.zeros((3, 3))) == (1.0, 1.0)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"num_reads": 0}, "num_reads must be a positive int, got 0"),
        ({"num_sweeps": 2.5}, "num_sweeps must be a positive int, got 2.5"),
        ({"beta_range": (5.0, 0.1)}, "beta_range goes from hot to cold"),
        ({"beta_range": (0.0, 1.0)}, "beta_range must be two positive inverse temperatures"),
        ({"beta_schedule": "cosine"}, "beta_schedule must be one of \\('geometric', 'linear'\\)"),
    ],
)
def test_sa_rejects_bad_options_with_what_was_wrong(options, message):
    with pytest.raises(ValueError, match=message):
        resolve_solver("sa", **options)


SMALL = {  # each solver's quick options
    "exact": {}, "sa": {"num_sweeps": 20}, "batched": {"sweeps": 4, "restarts": 2}, "qaoa": {"maxiter": 5, "shots": 64},
}


@pytest.mark.parametrize("name", list(SMALL))
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_every_solver_refuses_non_finite_coefficients_naming_the_problem_and_the_fix(name, bad):
    solver = resolve_solver(name, **SMALL[name])
    Q = torch.zeros(3, 3, 3)
    Q[1, 0, 2] = bad
    with pytest.raises(ValueError, match=r"QUBO problem 1 \(of 3\) has NaN or infinite coefficients.*finite"):
        solver.solve(Q)
    grouped = GroupedQubo(torch.zeros(3, 2, 2, 2), torch.zeros(3, 2, 2), torch.zeros(3))  # a structured input too
    grouped.penalty[2] = bad
    with pytest.raises(ValueError, match=r"QUBO problem 2 \(of 3\) has NaN or infinite coefficients"):
        solver.solve(grouped)


def attention_qubos(problems: int, heads: int, tokens: int, seed: int) -> tuple[GroupedQubo, torch.Tensor]:
    """Attention-shaped QUBOs whose last tokens are padding (held), as annealing attention builds them."""
    generator = torch.Generator().manual_seed(seed)
    J = torch.randn(problems, heads, tokens, tokens, generator=generator)
    s = torch.randn(problems, heads, tokens, generator=generator)
    real = torch.randint(1, tokens + 1, (problems,), generator=generator)
    free = (torch.arange(tokens)[None, :] < real[:, None]).unsqueeze(1).expand(problems, heads, tokens)
    return qama_qubo(J, s, free), free.reshape(problems, -1)


def pick(qubo: GroupedQubo, free: torch.Tensor, rows: torch.Tensor) -> tuple[GroupedQubo, torch.Tensor]:
    return GroupedQubo(qubo.coupling[rows], qubo.linear[rows], qubo.penalty[rows]), free[rows]


@pytest.mark.parametrize("name", ["sa", "batched", "qaoa"])
def test_a_problem_gets_the_same_answer_alone_or_in_any_batch_in_any_order(name):
    few_shots = {"shots": 4} if name == "qaoa" else {}  # so that its samples, not the optimum, decide
    solver = resolve_solver(name, seed=5, **{**SMALL[name], **few_shots})
    tokens = 40 if name != "qaoa" else 5  # qaoa: at most 20 variables
    qubo, free = attention_qubos(8, 2, tokens, seed=1)
    alone = solver.solve(*pick(qubo, free, torch.arange(4))).x
    order = torch.randperm(8, generator=torch.Generator().manual_seed(0))
    mixed = solver.solve(*pick(qubo, free, order)).x
    for row, problem in enumerate(order.tolist()):
        if problem < 4:
            assert torch.equal(mixed[row], alone[problem]), f"problem {problem} answered differently in the batch"


def test_batched_answers_a_padded_problem_as_its_real_tokens_alone():
    """The same sequence padded to another length (the global layer's chunk count follows the batch's
    longest document) is the same problem: the same answer on its real tokens, padding held at 0."""
    solver = resolve_solver("batched", seed=2)
    qubo, free = attention_qubos(6, 3, 9, seed=4)
    wide_free = torch.cat([free.view(6, 3, 9), torch.zeros(6, 3, 5, dtype=torch.bool)], -1)
    wide = qama_qubo(torch.nn.functional.pad(torch.zeros(6, 3, 9, 9), (0, 5, 0, 5)), torch.zeros(6, 3, 14), wide_free)
    wide.coupling[..., :9, :9], wide.linear[..., :9] = qubo.coupling, qubo.linear
    wide.penalty.copy_(qubo.penalty)
    narrow = solver.solve(qubo, free).x.view(6, 3, 9)
    padded = solver.solve(wide, wide_free.view(6, -1)).x.view(6, 3, 14)
    assert torch.equal(padded[..., :9], narrow) and not padded[..., 9:].any()


def test_sa_is_registered_without_a_variable_limit():
    from qattn.solvers import SimulatedAnnealingSolver

    assert SOLVERS.attribute("sa", "max_variables") is None
    assert SOLVERS.get("sa") is SimulatedAnnealingSolver


def test_sa_without_its_library_names_the_fix(monkeypatch):
    from qattn.solvers.sa import SimulatedAnnealingSolver

    monkeypatch.setitem(sys.modules, "dwave.samplers", None)  # as if dwave-samplers were not installed
    with pytest.raises(ImportError, match=r"the 'sa' QUBO solver needs dwave-samplers: pip install 'qattn\[annealing\]'"):
        resolve_solver("sa")
    assert SimulatedAnnealingSolver.install_hint == "pip install 'qattn[annealing]'"
