import numpy as np
import pytest

from qattn.executors import randomized
from qattn.executors.randomized import (
    histograms,
    overlap_variance,
    overlaps,
    random_rotations,
    rotation_gates,
    rotation_unitary,
    sample_bits,
)


def haar_states(count: int, n: int, rng: np.random.Generator) -> np.ndarray:
    psi = rng.normal(size=(count, 2**n)) + 1j * rng.normal(size=(count, 2**n))
    return psi / np.linalg.norm(psi, axis=1, keepdims=True)


def test_basis_state_bits_follow_wire_order():
    state = np.zeros((1, 4), dtype=complex)
    state[0, 2] = 1.0  # |10>: wire 0 is the most significant bit
    bits = sample_bits(state, np.zeros((3, 4)), shots=5, rng=np.random.default_rng(0))
    assert bits.shape == (1, 3, 5, 2)
    assert (bits == np.array([True, False])).all()
    assert np.array_equal(histograms(bits)[0, 0], [0.0, 0.0, 1.0, 0.0])


def test_estimator_on_deterministic_bitstrings_is_x():
    n = 3
    basis = np.eye(2**n, dtype=complex)
    bits = sample_bits(basis, np.zeros((1, 2 * n)), shots=1, rng=np.random.default_rng(0))
    estimates, errors = overlaps(bits, bits)
    index = np.arange(2**n)
    distance = np.array([[int(s ^ t).bit_count() for t in index] for s in index])
    assert np.array_equal(estimates, 2.0**n * (-2.0) ** (-distance))
    assert np.array_equal(errors, np.zeros_like(errors))


@pytest.mark.parametrize("budget", [1 << 23, 20])
def test_overlaps_match_a_dense_reference_in_any_chunking(budget, monkeypatch):
    monkeypatch.setattr(randomized, "_BUDGET", budget)  # 20: one rotation, three rows of A per block
    rng = np.random.default_rng(4)
    n, k = 3, 7
    bits_a, bits_b = rng.random((5, k, 4, n)) < 0.3, rng.random((6, k, 2, n)) < 0.6
    x = np.array([[2.0, -1.0], [-1.0, 2.0]])
    dense = np.kron(np.kron(x, x), x)
    per_rotation = np.einsum("akd,de,bke->abk", histograms(bits_a), dense, histograms(bits_b))
    estimates, errors = overlaps(bits_a, bits_b)
    assert np.allclose(estimates, per_rotation.mean(axis=2))
    assert np.allclose(errors, per_rotation.std(axis=2, ddof=1) / np.sqrt(k))
    basis = np.eye(2**n, dtype=complex)
    bits = sample_bits(basis, np.zeros((k, 2 * n)), shots=3, rng=rng)
    assert np.array_equal(bits, np.broadcast_to(bits[:, :1, :1], bits.shape))
    assert np.array_equal(histograms(bits)[:, 0], np.eye(2**n))


def test_rotation_unitary_is_a_kron_in_wire_order():
    rng = np.random.default_rng(1)
    row = random_rotations(2, 1, rng)[0]
    first = rotation_unitary(np.concatenate([row[:2], [0.0, 0.0]]), 2)
    assert np.allclose(first, np.kron(rotation_unitary(row[:2], 1), np.eye(2)))
    assert np.allclose(rotation_unitary(row, 2), np.kron(rotation_unitary(row[:2], 1), rotation_unitary(row[2:], 1)))
    phi, theta = row[:2]
    rz = np.diag([np.exp(-0.5j * phi), np.exp(0.5j * phi)])
    ry = np.array([[np.cos(theta / 2), -np.sin(theta / 2)], [np.sin(theta / 2), np.cos(theta / 2)]])
    assert np.allclose(rotation_unitary(row[:2], 1), ry @ rz)


def test_rotation_gates_bind_to_rotation_unitary():
    pytest.importorskip("qiskit")
    from qattn.circuits.qubit_order import qiskit_unitary
    from qattn.circuits.to_qiskit import slot_circuit

    n = 3
    row = random_rotations(n, 1, np.random.default_rng(2))[0]
    circuit, slots = slot_circuit(rotation_gates(n), n)
    assert slots == 2 * n
    bound = circuit.assign_parameters(dict(zip(circuit.parameters, row, strict=True)))
    assert np.allclose(qiskit_unitary(bound), rotation_unitary(row, n))


def test_sampled_frequencies_match_rotated_state():
    rng = np.random.default_rng(3)
    n, shots = 2, 40_000
    state = haar_states(1, n, rng)
    rotation = random_rotations(n, 1, rng)
    exact = np.abs(rotation_unitary(rotation[0], n) @ state[0]) ** 2
    found = histograms(sample_bits(state, rotation, shots, rng))[0, 0]
    assert np.all(np.abs(found - exact) <= 5 * np.sqrt(exact * (1 - exact) / shots) + 1e-3)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_unbiased_for_identical_generic_and_orthogonal_pairs(n):
    rng = np.random.default_rng(10 + n)
    a, b = haar_states(2, n, rng)
    orthogonal = b - np.vdot(a, b) * a
    orthogonal /= np.linalg.norm(orthogonal)
    states_a, states_b = a[None], np.stack([a, b, orthogonal])
    exact = np.abs(states_b.conj() @ a) ** 2  # 1, |<a|b>|^2, 0
    repeats, k, shots = 200, 8, 4
    found = np.empty((repeats, 3))
    for r in range(repeats):
        rotations = random_rotations(n, k, rng)
        bits_a = sample_bits(states_a, rotations, shots, rng)
        bits_b = sample_bits(states_b, rotations, shots, rng)
        found[r] = overlaps(bits_a, bits_b)[0][0]
    spread = found.std(axis=0, ddof=1) / np.sqrt(repeats)
    assert np.all(np.abs(found.mean(axis=0) - exact) <= 4 * spread + 1e-9), (found.mean(axis=0), exact, spread)


def test_standard_errors_match_spread_across_repeats():
    rng = np.random.default_rng(20)
    n, repeats, k, shots_a, shots_b = 2, 300, 16, 8, 3
    states_a, states_b = haar_states(2, n, rng), haar_states(3, n, rng)
    estimates, errors = np.empty((repeats, 2, 3)), np.empty((repeats, 2, 3))
    for r in range(repeats):
        rotations = random_rotations(n, k, rng)
        estimates[r], errors[r] = overlaps(
            sample_bits(states_a, rotations, shots_a, rng), sample_bits(states_b, rotations, shots_b, rng)
        )
    reported = np.sqrt((errors**2).mean(axis=0))  # root-mean-square reported standard error
    spread = estimates.std(axis=0, ddof=1)
    assert np.all(np.abs(reported / spread - 1) < 0.25), reported / spread
    assert abs(np.mean(reported / spread) - 1) < 0.1, reported / spread  # pooled over the six pairs


def test_overlap_variance_matches_shot_noise_at_fixed_rotations():
    rng = np.random.default_rng(30)
    n, repeats, k, shots = 2, 400, 4, (3, 5)
    states_a, states_b = haar_states(2, n, rng), haar_states(2, n, rng)
    states_b[1] = states_a[0]
    rotations = random_rotations(n, k, rng)
    bits = [
        (sample_bits(states_a, rotations, shots[0], rng), sample_bits(states_b, rotations, shots[1], rng))
        for _ in range(repeats)
    ]
    estimates = np.stack([overlaps(bits_a, bits_b)[0] for bits_a, bits_b in bits])
    predicted = overlap_variance(states_a, states_b, rotations, shots)
    ratio = estimates.var(axis=0, ddof=1) / predicted
    assert np.all(np.abs(ratio - 1) < 0.25), ratio
    assert abs(np.mean(ratio) - 1) < 0.1, ratio  # pooled over the four pairs


def test_overlap_variance_is_zero_for_deterministic_outcomes():
    basis = np.eye(4, dtype=complex)
    assert np.allclose(overlap_variance(basis, basis, np.zeros((2, 4)), shots=7), 0.0)


def test_overlaps_checks_shapes():
    with pytest.raises(ValueError):
        overlaps(np.zeros((1, 2, 3, 2), bool), np.zeros((1, 3, 3, 2), bool))
