"""The circuits learn: a query-key matching task that trained circuits solve and frozen ones cannot.

Each example has S keys with random angles (a, b) and the value one-hot(position); the query is the
target key with its first angle shifted by pi/2. The answer is the attended one-hot's argmax, so it
is right only when the target key gets the most attention. Projections, values and output are fixed
(identity / angle selection), so the kernel's circuits (plus their input scale and temperature)
are the only thing that can learn. Near-identity circuits score the target at fidelity
cos^2(pi/4) = 0.5, no better than a random key; trained circuits learn U_K^† U_Q = RY(pi/2) on wire 0.
"""

import math

import pytest
import torch
from torch import nn

from qattn import QuantumMultiheadAttention

KEYS = 4


def matching_batch(size: int, generator: torch.Generator):
    keys = (torch.rand(size, KEYS, 2, generator=generator) * 2 - 1) * math.pi  # (n, S, 2)
    target = torch.randint(0, KEYS, (size,), generator=generator)
    query = keys[torch.arange(size), target].clone()
    query[:, 0] += math.pi / 2
    tokens = torch.cat([keys, torch.eye(KEYS).expand(size, KEYS, KEYS)], -1)  # (n, S, 2 + S)
    query = torch.cat([query, torch.zeros(size, KEYS)], -1).unsqueeze(1)  # (n, 1, 2 + S)
    return query, tokens, target


def matching_layer() -> QuantumMultiheadAttention:
    layer = QuantumMultiheadAttention(2 + KEYS, 1, n_qubits=2, kernel="fidelity")
    angles = torch.cat([torch.eye(2), torch.zeros(2, KEYS)], 1)
    with torch.no_grad():
        for proj, weight in ((layer.q_proj, angles), (layer.k_proj, angles)):
            proj.weight.copy_(weight)
        for proj in (layer.v_proj, layer.out_proj):
            proj.weight.copy_(torch.eye(2 + KEYS))
    for proj in (layer.q_proj, layer.k_proj, layer.v_proj, layer.out_proj):
        proj.requires_grad_(False)
    return layer


def attended_positions(layer, query, tokens):
    return layer(query, tokens, tokens)[0][:, 0, 2:]  # (n, S): attention mass on each key


def accuracy(layer) -> float:
    query, tokens, target = matching_batch(1000, torch.Generator().manual_seed(999))
    with torch.no_grad():
        return (attended_positions(layer, query, tokens).argmax(-1) == target).float().mean().item()


@pytest.mark.parametrize("seed", [0, 1])
def test_trained_circuits_solve_query_key_matching_that_frozen_circuits_cannot(seed):
    torch.manual_seed(seed)
    layer = matching_layer()
    frozen_accuracy = accuracy(layer)

    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(layer.kernel.parameters(), lr=0.1)
    for _ in range(40):
        query, tokens, target = matching_batch(64, generator)
        loss = nn.functional.nll_loss(attended_positions(layer, query, tokens).clamp_min(1e-9).log(), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    assert frozen_accuracy < 0.75
    assert accuracy(layer) > 0.95
