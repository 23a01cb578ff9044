"""QAMA's annealing attention: its QUBO, its straight-through gradients, masks, the batched annealer."""

from __future__ import annotations

import math

import pytest
import torch

from qattn import AnnealingMultiheadAttention, ClassicalMultiheadAttention
from qattn.annealing import qama_qubo
from qattn.config import ConfigError, load_config
from qattn.solvers import GroupedQubo, QuboSolver, qubo_energy, resolve_solver
from qattn.solvers.exact import all_assignments


def test_qubo_of_two_heads_and_two_tokens_equals_the_one_written_by_hand():
    J = torch.tensor([[[[0.0, 0.7], [0.3, 0.0]], [[0.0, -0.4], [-0.2, 0.0]]]])  # (1, H=2, T=2, T=2)
    s = torch.tensor([[[0.5, -1.0], [0.25, 2.0]]])  # (1, H, T)
    free = torch.ones(1, 2, 2, dtype=torch.bool)
    a, b, c = 1.5, 0.2, 0.8
    Q = qama_qubo(J, s, free, quadratic=a, linear=b, penalty=c).dense()[0]
    # variables (h, t): 0 = (0, 0), 1 = (0, 1), 2 = (1, 0), 3 = (1, 1); T = 2 tokens, H = 2 heads
    r = c / 2 * math.sqrt(2 / math.pi) * 2 / (2 - 1)
    j0, j1 = (0.7 + 0.3) / 2, (-0.4 - 0.2) / 2  # symmetrised couplings
    expected = torch.tensor(
        [
            [-b * 2 * 0.5, -a * j0, r, 0.0],
            [-a * j0, -b * 2 * -1.0, 0.0, r],
            [r, 0.0, -b * 2 * 0.25, -a * j1],
            [0.0, r, -a * j1, -b * 2 * 2.0],
        ]
    )
    torch.testing.assert_close(Q, expected)


def test_a_three_token_head_alone_has_no_penalty_and_its_energies_match_the_dense_matrix():
    torch.manual_seed(0)
    J, s = torch.randn(4, 1, 3, 3), torch.randn(4, 1, 3)
    qubo = qama_qubo(J, s, torch.ones(4, 1, 3, dtype=torch.bool))
    assert torch.equal(qubo.penalty, torch.zeros(4))
    x = all_assignments(3, J.device, J.dtype).expand(4, -1, -1)  # (P, 8, 3)
    dense = torch.stack([qubo_energy(qubo.dense()[p], x[p]) for p in range(4)])
    torch.testing.assert_close(qubo.energy(x), dense)


def test_grouped_energies_equal_the_dense_matrix_on_every_assignment():
    torch.manual_seed(1)
    qubo = qama_qubo(torch.randn(3, 3, 2, 2), torch.randn(3, 3, 2), torch.rand(3, 3, 2) > 0.3)
    x = all_assignments(6, torch.device("cpu"), torch.float32).expand(3, -1, -1)
    Q = qubo.dense()
    torch.testing.assert_close(qubo.energy(x), torch.einsum("pkn,pnm,pkm->pk", x, Q, x))


def test_exact_finds_the_known_optimum():
    # E = -x0 - x1 + 3 x0 x1 + 0.5 x2: either of x0, x1 alone, never x2 -> (1, 0, 0) first in counting order
    Q = torch.tensor([[[-1.0, 1.5, 0.0], [1.5, -1.0, 0.0], [0.0, 0.0, 0.5]]])
    solutions = resolve_solver("exact").solve(Q)
    assert solutions.x.tolist() == [[1.0, 0.0, 0.0]]
    assert solutions.energy.item() == pytest.approx(-1.0)


def random_problems(count: int, n: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    Q = torch.randn(count, n, n, generator=generator)
    return (Q + Q.transpose(1, 2)) / 2


def test_batched_reaches_the_exact_optimum_of_small_random_problems():
    exact, batched = resolve_solver("exact"), resolve_solver("batched")
    hits = total = 0
    for n in range(2, 13):
        Q = random_problems(20, n, seed=n)
        hits += int((batched.solve(Q).energy <= exact.solve(Q).energy + 1e-5).sum())
        total += 20
    assert hits / total >= 0.95, f"batched reached the optimum in {hits}/{total}"


def test_batched_reaches_the_exact_optimum_of_small_attention_qubos_with_held_variables():
    generator = torch.Generator().manual_seed(2)
    J, s = torch.randn(200, 3, 4, 4, generator=generator), torch.randn(200, 3, 4, generator=generator)
    free = torch.rand(200, 3, 4, generator=generator) > 0.2
    qubo = qama_qubo(J, s, free)
    exact, batched = resolve_solver("exact").solve(qubo, free.view(200, -1)), resolve_solver("batched").solve(qubo, free.view(200, -1))
    assert not batched.x[~free.view(200, -1)].any()
    rate = (batched.energy <= exact.energy + 1e-5).float().mean().item()
    assert rate >= 0.95, f"batched reached the optimum in {rate:.1%}"


def test_batched_is_seeded_and_solves_more_heads_than_tokens():
    J, s = torch.randn(5, 4, 2, 2), torch.randn(5, 4, 2)  # 4 heads of 2 tokens: solved as one dense group
    qubo = qama_qubo(J, s, torch.ones(5, 4, 2, dtype=torch.bool))
    first, again = resolve_solver("batched", seed=3).solve(qubo), resolve_solver("batched", seed=3).solve(qubo)
    assert torch.equal(first.x, again.x)
    torch.testing.assert_close(first.energy, resolve_solver("exact").solve(qubo).energy)


class Recording(QuboSolver):
    """Delegates to ``exact`` and keeps what it was asked and answered."""

    name = "recording"

    def _solve(self, Q, free):
        self.Q, self.free = Q, free
        self.x = resolve_solver("exact").solve(Q, free).x
        return self.x


def test_output_is_the_straight_through_energy_with_the_solution_held_fixed():
    torch.manual_seed(0)
    solver = Recording()
    attn = AnnealingMultiheadAttention(8, 2, solver=solver, linear=0.3)
    x = torch.randn(2, 4, 8, requires_grad=True)
    out, weights = attn(x, x, x, average_attn_weights=False)

    # the same from its parts, written out: J = sym(q k^T / sqrt(d)), s = mean(v e), H = -(x J x + s x)
    q = attn.q_proj(x).view(2, 4, 2, 4).transpose(1, 2)
    k = attn.k_proj(x).view(2, 4, 2, 4).transpose(1, 2)
    v = attn.v_proj(x).view(2, 4, 2, 4).transpose(1, 2)
    e = attn.kernel.value_to_energy
    J = q @ k.transpose(-1, -2) / 2.0
    J = (J + J.transpose(-1, -2)) / 2 * (1 - torch.eye(4))
    s = (v * e).mean(-1)
    chosen = solver.x.view(2, 2, 4)  # (B, H, T), detached
    energy = -(chosen * torch.einsum("bhnm,bhm->bhn", J, chosen) + s * chosen)
    expected = attn.out_proj((energy.unsqueeze(-1) * e).transpose(1, 2).reshape(2, 4, 8))
    torch.testing.assert_close(out, expected)

    # and the solution is the QUBO's optimum: no assignment has a lower energy
    qubo = qama_qubo(J.detach(), s.detach(), torch.ones(2, 2, 4, dtype=torch.bool), linear=0.3)
    torch.testing.assert_close(qubo.energy(solver.x), resolve_solver("exact").solve(qubo).energy)

    grads = torch.autograd.grad(out.square().sum(), [x, attn.q_proj.weight, e])
    expected_grads = torch.autograd.grad(expected.square().sum(), [x, attn.q_proj.weight, e])
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want)
    assert all(g.abs().sum() > 0 for g in grads)  # gradients reach queries, keys, values and e


def test_padded_tokens_are_never_selected_and_weight_rows_are_valid():
    torch.manual_seed(0)
    attn = AnnealingMultiheadAttention(8, 2, solver="batched", linear=5.0)  # strong linear terms: many selected
    x = torch.randn(3, 6, 8)
    padding = torch.zeros(3, 6, dtype=torch.bool)
    padding[0, 4:], padding[1, 1:] = True, True
    _, weights = attn(x, x, x, key_padding_mask=padding, average_attn_weights=False)  # (B, H, N, S)
    assert not weights.isnan().any()
    assert (weights[padding[:, None, None, :].expand_as(weights)] == 0).all()  # padded keys: weight 0
    assert (weights >= 0).all()
    sums = weights.sum(-1)
    assert torch.all(((sums - 1).abs() < 1e-5) | (sums == 0))  # a selected query's row sums to 1, others 0
    assert (sums > 0).any()


def test_a_padded_sequence_has_the_qubo_of_its_real_tokens():
    torch.manual_seed(0)
    J, s = torch.randn(1, 2, 5, 5), torch.randn(1, 2, 5)
    free = torch.ones(1, 2, 5, dtype=torch.bool)
    free[..., 3:] = False
    padded = qama_qubo(J, s, free).dense()[0].view(2, 5, 2, 5)[:, :3, :, :3].reshape(6, 6)
    alone = qama_qubo(J[..., :3, :3], s[..., :3], free[..., :3]).dense()[0]
    torch.testing.assert_close(padded, alone)


@pytest.mark.parametrize("need_weights", [False, True])
def test_fully_masked_queries_are_handled_as_the_shell_does(need_weights):
    torch.manual_seed(0)
    attn = AnnealingMultiheadAttention(8, 2, solver="exact")
    twin = ClassicalMultiheadAttention(8, 2)
    x = torch.randn(2, 4, 8)
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[1] = True  # query 1 may attend to nothing
    out, weights = attn(x, x, x, attn_mask=mask, need_weights=need_weights)
    ref, _ = twin(x, x, x, attn_mask=mask, need_weights=need_weights)
    assert torch.equal(out[:, 1].isnan(), ref[:, 1].isnan())
    if not need_weights:
        torch.testing.assert_close(out[:, 1], attn.out_proj.bias.expand(2, 8))  # zero values, so the bias
        assert weights is None
    else:
        assert weights[:, 1].isnan().all()
    assert not out[:, [0, 2, 3]].isnan().any()


def test_masked_pairs_contribute_no_coupling():
    torch.manual_seed(0)
    solver = Recording()
    attn = AnnealingMultiheadAttention(8, 2, solver=solver)
    x = torch.randn(1, 3, 8)
    causal = torch.ones(3, 3, dtype=torch.bool).triu(1)
    attn(x, x, x, attn_mask=causal)
    unmasked = Recording()
    attn.kernel.solver = unmasked
    attn(x, x, x)
    # a QUBO coupling is the mean of the two directions; causal masking keeps one of them
    torch.testing.assert_close(solver.Q.view(2, 3, 2, 3)[0, 0, 0, 2], 0.5 * unmasked.Q.view(2, 3, 2, 3)[0, 0, 0, 2])
    assert unmasked.Q[0, 0, 2] != 0


def test_the_layer_keeps_torch_call_conventions():
    torch.manual_seed(0)
    attn = AnnealingMultiheadAttention(8, 2, solver="batched", batch_first=False)
    x = torch.randn(5, 3, 8)  # (L, B, E)
    out, weights = attn(x, x, x)
    assert out.shape == (5, 3, 8) and weights.shape == (3, 5, 5)
    single, single_weights = attn(x[:, 0], x[:, 0], x[:, 0], average_attn_weights=False)  # unbatched (L, E)
    assert single.shape == (5, 8) and single_weights.shape == (2, 5, 5)
    empty, empty_weights = attn(x[:0], x[:0], x[:0])
    assert empty.shape == (0, 3, 8) and empty_weights.shape == (3, 0, 0)
    half = AnnealingMultiheadAttention(8, 2, solver="batched").to(torch.bfloat16)
    out, _ = half(x.to(torch.bfloat16), x.to(torch.bfloat16), x.to(torch.bfloat16))
    assert out.dtype == torch.bfloat16


def test_annealing_attention_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="add_bias_kv or add_zero_attn"):
        AnnealingMultiheadAttention(8, 2, solver="exact", add_bias_kv=True)
    attn = AnnealingMultiheadAttention(8, 2, solver="exact")
    with pytest.raises(ValueError, match="self-attention.*lengths must match"):
        attn(torch.randn(1, 3, 8), torch.randn(1, 4, 8), torch.randn(1, 4, 8))
    with pytest.raises(ValueError, match="unknown solver 'annealer'; valid solvers: batched, exact"):
        AnnealingMultiheadAttention(8, 2, solver="annealer")
    with pytest.raises(ValueError, match="at most 20 variables per problem, got 22; use the 'sa' or 'batched'"):
        attn(torch.randn(1, 11, 8), torch.randn(1, 11, 8), torch.randn(1, 11, 8))


def test_configs_name_the_problem_before_anything_runs():
    with pytest.raises(ConfigError, match="unknown solver 'anneal'"):
        load_config(None, ["model.attention=annealing", "model.annealing.solver=anneal"])
    with pytest.raises(ConfigError, match="takes at most 20 variables per QUBO, but this model's largest has 260"):
        load_config("experiments/imdb.toml", ["model.attention=annealing", "model.annealing.solver=exact"])
    config = load_config("experiments/mc.toml", ["model.attention=annealing"])
    assert config.model.annealing.solver == "batched"


def teacher_student(frozen: bool, steps: int = 30) -> float:
    """Final loss of a student annealing layer fitting a teacher's outputs, projections trained or frozen."""
    torch.manual_seed(0)
    teacher = AnnealingMultiheadAttention(8, 2, solver="exact")
    student = AnnealingMultiheadAttention(8, 2, solver="exact")
    data = torch.randn(32, 4, 8)
    with torch.no_grad():
        target, _ = teacher(data, data, data, need_weights=False)
    for proj in (student.q_proj, student.k_proj, student.v_proj):
        proj.requires_grad_(not frozen)
    optimiser = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=0.05)
    for _ in range(steps):
        out, _ = student(data, data, data, need_weights=False)
        loss = (out - target).square().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return loss.item()


def test_trained_projections_learn_what_frozen_ones_cannot():
    trained, frozen = teacher_student(frozen=False), teacher_student(frozen=True)
    assert trained < 0.7 * frozen, f"trained {trained:.4f} vs frozen projections {frozen:.4f}"


def test_grouped_qubo_goes_dense_for_solvers_without_structure():
    torch.manual_seed(0)
    qubo = qama_qubo(torch.randn(2, 2, 3, 3), torch.randn(2, 2, 3), torch.ones(2, 2, 3, dtype=torch.bool))
    assert isinstance(qubo, GroupedQubo)
    grouped, dense = resolve_solver("exact").solve(qubo), resolve_solver("exact").solve(qubo.dense())
    assert torch.equal(grouped.x, dense.x)
    torch.testing.assert_close(grouped.energy, dense.energy)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("quadratic", math.nan, "quadratic must be a finite number, got nan"),
        ("linear", math.nan, "linear must be a finite number, got nan"),
        ("quadratic", math.inf, "quadratic must be a finite number, got inf"),
        ("penalty", -math.inf, "penalty must be a finite number, got -inf"),
        ("penalty", -5.0, "penalty must be >= 0"),
    ],
)
def test_the_layer_and_the_config_refuse_the_same_qubo_weights_naming_the_key(key, value, message):
    with pytest.raises(ValueError, match=message):
        AnnealingMultiheadAttention(8, 2, solver="exact", **{key: value})
    with pytest.raises(ConfigError, match=f"model.annealing.{key}: {message}"):
        load_config(None, ["model.attention=annealing", f"model.annealing.{key}={value}"])


def test_an_annealing_model_evaluates_to_the_same_loss_at_any_batch_size():
    """Each QUBO's answer is its own (seed and coefficients), whatever shares its batch: batches of 16, 4
    and 1 documents of different lengths (so different chunk counts in the global layer) agree exactly."""
    from qattn.model import build_model
    from qattn.trainer import EncodedSplit, evaluate

    overrides = ["model.attention=annealing", "model.annealing.solver=batched", "model.embed_dim=8",
                 "model.num_heads=2", "model.ff_dim=16", "model.chunk_size=8", "model.max_length=64"]
    torch.manual_seed(0)
    model = build_model(load_config(None, overrides).model, vocab_size=30, num_classes=3)
    generator = torch.Generator().manual_seed(1)
    lengths = torch.randint(3, 64, (16,), generator=generator).tolist()
    split = EncodedSplit([torch.randint(1, 30, (n,), generator=generator).tolist() for n in lengths],
                         torch.randint(0, 3, (16,), generator=generator).tolist())
    runs = {size: evaluate(model, split, 3, batch_size=size) for size in (16, 4, 1)}
    assert runs[16].predictions == runs[4].predictions == runs[1].predictions
    # equal but for float rounding, which differs with the batch in a classical model too (~1e-7)
    assert runs[4].loss == pytest.approx(runs[16].loss, rel=1e-6)
    assert runs[1].loss == pytest.approx(runs[16].loss, rel=1e-6)
