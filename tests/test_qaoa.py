"""The ``qaoa`` QUBO solver: its Ising form, its circuit against a statevector built by hand, its
solutions against the ``exact`` solver, and its sampling on Aer and through Qiskit Runtime's local
testing mode (a fake IBM device; no test reaches the network)."""

import itertools

import numpy as np
import pytest
import torch

from qattn.config import load_config
from qattn.executors import SampledAerExecutor
from qattn.model import annealing_solver
from qattn.runtime.sampling import DeviceSampler
from qattn.solvers import SOLVERS, resolve_solver
from qattn.solvers.qaoa import QaoaSolver, linear_ramp, qubo_to_ising


def random_qubos(problems: int, n: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    Q = torch.randn(problems, n, n, generator=generator, dtype=torch.float64)
    return (Q + Q.mT) / 2


def all_assignments(n: int) -> np.ndarray:
    """``(2^n, n)``, row ``b`` the bits of ``b`` with variable 0 the most significant (qattn's wire order)."""
    return np.array(list(itertools.product([0, 1], repeat=n)), dtype=float)



def test_the_ising_form_has_the_qubo_energies():
    Q = random_qubos(1, 4, seed=3)[0].numpy()
    ising = qubo_to_ising(Q)
    x = all_assignments(4)
    qubo = np.einsum("bi,ij,bj->b", x, Q, x)
    np.testing.assert_allclose(ising.energy(1 - 2 * x), qubo, atol=1e-12)  # x = (1 - z) / 2
    np.testing.assert_allclose(ising.spectrum(), qubo, atol=1e-12)  # basis state b is the assignment of row b
    assert np.allclose(ising.J, ising.J.T) and np.all(np.diag(ising.J) == 0)


def test_p1_expectation_equals_a_statevector_built_by_hand():
    """Two variables with different linear terms, so swapped qubits would change the answer."""
    Q = np.array([[1.0, -0.7], [-0.7, -0.4]])
    gamma, beta = 0.43, -0.91
    x = all_assignments(2)
    energy = np.einsum("bi,ij,bj->b", x, Q, x)  # index b = 2 x_0 + x_1
    psi = np.full(4, 0.5, dtype=complex)  # H|0> on both qubits
    psi *= np.exp(-1j * gamma * energy)  # exp(-i gamma H): H = x^T Q x up to nothing (offset included)
    rx = np.array([[np.cos(beta), -1j * np.sin(beta)], [-1j * np.sin(beta), np.cos(beta)]])  # exp(-i beta X)
    psi = np.kron(rx, rx) @ psi
    probabilities = np.abs(psi) ** 2

    solver, ising = QaoaSolver(), qubo_to_ising(Q)
    np.testing.assert_allclose(solver.probabilities(ising, np.array([[gamma, beta]])), probabilities, atol=1e-10)
    assert solver.expectation(ising, np.array([[gamma, beta]])) == pytest.approx(probabilities @ energy, abs=1e-10)
    assert probabilities @ energy != pytest.approx(probabilities[[0, 2, 1, 3]] @ energy, abs=1e-3)  # order is tested


def test_optimised_angles_concentrate_on_the_optimum_and_find_it_with_few_shots():
    """12 seeded problems of 8 variables (4 with 2 held at 0), 32 samples each. Measured (samples drawn
    per problem): the exact optimum in 9 to 12 of 12 at seeds 0..7 (uniform sampling would find 2.5 of 12);
    P(optimum) 5 to 45 times the uniform 2^-m."""
    Q = random_qubos(12, 8, seed=1)
    free = torch.ones(12, 8, dtype=torch.bool)
    free[::3, 6:] = False
    solver = QaoaSolver(shots=32, seed=0)
    found = solver.solve(Q, free)
    exact = resolve_solver("exact").solve(Q, free)
    assert torch.all(found.x[~free] == 0)
    assert torch.allclose(found.energy, torch.einsum("pi,pij,pj->p", found.x, Q, found.x))
    assert torch.all(found.energy >= exact.energy - 1e-9)
    assert int(torch.isclose(found.energy, exact.energy).sum()) >= 9
    for run in solver.runs:
        variables = free[run.problem].nonzero().squeeze(1).numpy()
        ising = qubo_to_ising(Q[run.problem].numpy()[np.ix_(variables, variables)]).scaled(1 / run.scale)
        spectrum = ising.spectrum()
        p_optimum = solver.probabilities(ising, run.angles)[np.isclose(spectrum, spectrum.min())].sum()
        assert p_optimum > 2.0 / 2**run.variables
        assert run.expectation / run.scale <= solver.expectation(ising, linear_ramp(1)) + 1e-9  # improved on its start


def test_sampled_mode_is_reproducible_and_noise_models_run():
    Q = random_qubos(3, 4, seed=2)
    exact = resolve_solver("exact").solve(Q)
    first, again = (QaoaSolver(mode="sampled", shots=8, seed=5).solve(Q) for _ in range(2))
    assert torch.equal(first.x, again.x)
    noisy = QaoaSolver(mode="sampled", shots=256, noise="FakeManilaV2", seed=5).solve(Q)  # 256 samples of 16 states
    assert torch.allclose(noisy.energy, exact.energy)


def test_too_many_variables_and_bad_options_say_what_to_do():
    assert SOLVERS.get("qaoa") is QaoaSolver and QaoaSolver.max_variables == 20
    with pytest.raises(ValueError, match=r"at most 20 variables per problem, got 21; use the 'sa' or 'batched' solver"):
        resolve_solver("qaoa").solve(torch.zeros(1, 21, 21))
    with pytest.raises(ValueError, match="noise samples with shots; set mode='sampled'"):
        QaoaSolver(noise="FakeManilaV2")
    with pytest.raises(ValueError, match="a sampler samples with shots; set mode='sampled'"):
        QaoaSolver(sampler=SampledAerExecutor(shots=8))
    with pytest.raises(ValueError, match="unknown optimizer 'adam'; valid: COBYLA"):
        QaoaSolver(optimizer="adam")


def test_a_fake_ibm_device_in_local_testing_mode_plans_and_solves(no_network):
    """One sampling circuit per QUBO through Qiskit Runtime's Sampler on fake_manila (5 qubits, noisy)."""
    Q = random_qubos(3, 4, seed=0)
    free = torch.ones(3, 4, dtype=torch.bool)
    free[1, 2], free[2, :2] = False, False
    device = DeviceSampler("fake_manila", seed=1)  # what a config's model.annealing.qaoa.backend builds
    solver = QaoaSolver(mode="sampled", sampler=device, shots=256, seed=1)
    plans = device.plan(solver, Q, free)
    assert [(p.variables, p.circuits, p.executions) for p in plans] == [(2, 1, 256), (3, 1, 256), (4, 1, 256)]
    assert all(p.depth > 0 and p.two_qubit_gates > 0 and p.qpu_seconds > 0 for p in plans)
    found = solver.solve(Q, free)
    assert set(found.x.unique().tolist()) <= {0.0, 1.0} and torch.all(found.x[~free] == 0)
    assert torch.allclose(found.energy, resolve_solver("exact").solve(Q, free).energy)  # 256 shots of <= 16 states
    with pytest.raises(Exception, match="6 free variables need 6 qubits; fake_manila has 5"):
        solver.solve(random_qubos(1, 6, seed=0))


def test_a_config_naming_a_device_hands_the_solver_that_device_to_sample_on():
    qaoa = ["model.attention=annealing", "model.annealing.solver=qaoa", "model.annealing.qaoa.mode=sampled",
            "model.annealing.seed=3", "model.num_heads=1", "model.chunk_size=4", "model.max_length=16"]
    device = ["model.annealing.qaoa.backend=fake_manila", "model.annealing.qaoa.optimization_level=1"]
    config = load_config(None, [*qaoa, *device])
    solver = annealing_solver(config.model.annealing)
    assert isinstance(solver, QaoaSolver) and isinstance(solver.sampler, DeviceSampler)
    sampler = solver.sampler
    assert (sampler.device_name, sampler.optimization_level, sampler.seed) == ("fake_manila", 1, 3)
    assert "device" not in vars(sampler)  # building a model contacts no device: it opens on first use
    noisy = annealing_solver(load_config(None, [*qaoa, "model.annealing.qaoa.noise=FakeManilaV2"]).model.annealing)
    assert isinstance(noisy.sampler, SampledAerExecutor) and noisy.sampler.noise == "FakeManilaV2"
