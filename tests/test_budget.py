"""Shots from an error budget: the allocation follows the softmax's sensitivity, and a seeded sampled
run meets the error it predicts (within statistical tolerance)."""

import numpy as np
import pytest
import torch

from qattn import QuantumMultiheadAttention
from qattn.executors import PennyLaneExecutor, SampledAerExecutor, ShotBudget
from qattn.executors.budget import allocate, binomial_variance, predicted_tv, row_weights
from qattn.executors.forecast import Call, allocated_error, budgeted_shots, fixed_error


def test_hot_heads_and_leading_keys_get_the_shots():
    fid = np.array([[0.6, 0.55, 0.5, 0.05], [0.6, 0.55, 0.5, 0.05]])
    mask = np.ones_like(fid, dtype=bool)
    shots = allocate(fid, np.array([1.0, 8.0]), mask, ShotBudget(0.01, min_shots=1))
    assert shots[1, :3].sum() > 3 * shots[0, :3].sum()  # a hot head (temperature 8) needs far more than a flat one (1)
    assert shots[1, 0] > 20 * shots[1, 3]  # in the hot row a key far below the maximum barely matters
    one_key = allocate(fid, np.array([1.0, 8.0]), np.array([[True, False, False, False]] * 2), ShotBudget(0.01))
    assert one_key[:, 1:].sum() == 0 and (one_key[:, 0] == 16).all()  # a lone key's weight is 1 whatever its estimate: the floor


def test_the_allocation_is_cheaper_than_uniform_shots_for_the_same_predicted_error():
    rng = np.random.default_rng(0)
    fid = rng.beta(0.5, 2.0, size=(64, 32))
    mask, scale = np.ones_like(fid, dtype=bool), rng.uniform(1, 10, size=64)
    budget = ShotBudget(0.02, min_shots=1)
    shots = allocate(fid, scale, mask, budget)
    weights = row_weights(fid, scale, mask)
    error = predicted_tv(weights, scale, binomial_variance(fid, shots)).mean()
    assert 0.6 * 0.02 < error <= 0.02  # rounding shots up to their levels only lowers the error
    uniform = next(n for n in 2 ** np.arange(1, 20) if predicted_tv(weights, scale, binomial_variance(fid, n)).mean() <= error)
    assert shots.sum() < 0.5 * uniform * fid.size


def layer_and_input(seed=0):
    torch.manual_seed(seed)
    layer = QuantumMultiheadAttention(8, 2, n_qubits=2, batch_first=True).double().eval()
    with torch.no_grad():
        layer.kernel.log_temperature.fill_(np.log(6.0))  # a hot head: the error budget matters
    return layer, torch.randn(2, 10, 8, dtype=torch.float64)


def mean_row_tv(weights, exact):
    return float((0.5 * (weights - exact).abs().sum(-1)).mean())


@pytest.mark.parametrize("prior", ["exact", "adaptive"])
def test_a_seeded_sampled_run_meets_its_predicted_error(prior):
    layer, x = layer_and_input()
    with torch.no_grad():
        _, exact = layer(x, x, x, average_attn_weights=False)
        q, k = (proj(x).view(2, 10, 2, -1).transpose(1, 2) for proj in (layer.q_proj, layer.k_proj))
        inputs = layer.kernel.circuit_inputs(q, k)
        call = Call.record(layer.kernel.feature_map, inputs, layer.kernel.log_temperature.exp(), None)
    budget = ShotBudget(0.03, prior, pilot_shots=16, min_shots=4)
    shots = budgeted_shots(call, budget)
    predicted = float(allocated_error(call, shots if prior == "exact" else np.maximum(shots, 16)).mean())
    measured = []
    for seed in range(12):
        layer.kernel.executor = SampledAerExecutor(shots=1000, seed=seed, budget=budget)
        with torch.no_grad():
            _, weights = layer(x, x, x, average_attn_weights=False)
        measured.append(mean_row_tv(weights, exact))
    mean, spread = np.mean(measured), np.std(measured, ddof=1) / np.sqrt(len(measured))
    assert predicted <= 0.03 and abs(mean - predicted) <= 0.5 * predicted + 3 * spread, (mean, predicted, spread)
    fixed = float(fixed_error(call, 1000).mean())
    assert fixed < predicted  # the budget spends fewer shots than 1000 per circuit, for a larger (asked-for) error
    layer.kernel.executor = PennyLaneExecutor()
