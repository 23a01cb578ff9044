"""Score kernels against exact references: hand-derived values and Qiskit statevectors."""

import math

import numpy as np
import pytest
import torch
from qiskit.quantum_info import SparsePauliOp, Statevector

from qattn.circuits import AngleEncoding, FeatureMap, HardwareEfficient, IQPEncoding, StronglyEntangling
from qattn.circuits.qubit_order import qiskit_statevector
from qattn.circuits.to_qiskit import bind, to_qiskit
from qattn.executors import PennyLaneExecutor
from qattn.kernels import KERNELS, DotKernel, FidelityKernel, GaussianKernel

EXECUTOR = PennyLaneExecutor()
EXACT = dict(atol=1e-10, rtol=0)


def identity_map(n_qubits: int, rotation: str = "RY") -> FeatureMap:
    """Angle encoding followed by an ansatz that is the identity at zero weights."""
    return FeatureMap(AngleEncoding(rotation), HardwareEfficient(("RY",), entangler="CZ", layers=1), n_qubits)


def test_single_qubit_fidelity_is_cos_squared_of_half_the_angle_difference():
    fmap = identity_map(1)
    a = torch.linspace(-3, 3, 7, dtype=torch.float64).view(1, 1, 7, 1)  # (B, H, N, F)
    b = torch.linspace(-2, 2.5, 5, dtype=torch.float64).view(1, 1, 5, 1)
    zeros = torch.zeros(1, *fmap.weight_shape, dtype=torch.float64)
    fid = EXECUTOR.fidelities(fmap, a, zeros, b, zeros)[0, 0]  # (N, S)
    expected = torch.cos((a.view(7, 1) - b.view(1, 5)) / 2) ** 2
    torch.testing.assert_close(fid, expected, **EXACT)


@pytest.mark.parametrize("rotation", ["RX", "RY"])
def test_product_encoding_fidelity_is_the_product_over_qubits(rotation):
    fmap = identity_map(3, rotation)
    a, b = torch.randn(2, 2, 4, 3, dtype=torch.float64), torch.randn(2, 2, 5, 3, dtype=torch.float64)
    zeros = torch.zeros(2, *fmap.weight_shape, dtype=torch.float64)
    fid = EXECUTOR.fidelities(fmap, a, zeros, b, zeros)
    expected = (torch.cos((a.unsqueeze(-2) - b.unsqueeze(-3)) / 2) ** 2).prod(-1)
    torch.testing.assert_close(fid, expected, **EXACT)


def qiskit_states(fmap: FeatureMap, x: torch.Tensor, w: torch.Tensor) -> np.ndarray:
    """Reference states from Qiskit, one circuit per (batch, head, token): slow and independent."""
    circuit = to_qiskit(fmap)
    batch, heads, tokens, _ = x.shape
    out = np.empty((batch, heads, tokens, 2**fmap.n_qubits), dtype=complex)
    for b in range(batch):
        for h in range(heads):
            for t in range(tokens):
                out[b, h, t] = qiskit_statevector(bind(circuit, x[b, h, t].numpy(), w[h].numpy()))
    return out


FEATURE_MAPS = [
    FeatureMap(AngleEncoding("RY"), HardwareEfficient(), n_qubits=3),
    FeatureMap(IQPEncoding(), StronglyEntangling(), n_qubits=2),
    FeatureMap(AngleEncoding("RX"), HardwareEfficient(("RX", "RZ"), pattern="ring"), n_qubits=3, reuploads=3),
    FeatureMap(AngleEncoding("RY"), HardwareEfficient(("RY",), pattern="full"), n_qubits=3, reuploads=2),  # real
]


def test_real_circuits_are_simulated_in_real_arithmetic():
    real, complex_ = FEATURE_MAPS[3], FEATURE_MAPS[0]
    assert real.real and not complex_.real and not FEATURE_MAPS[1].real
    x = torch.randn(1, 2, 3, 3, dtype=torch.float64)
    assert EXECUTOR.states(real, x, torch.randn(2, *real.weight_shape, dtype=torch.float64)).dtype == torch.float64
    assert EXECUTOR.states(complex_, x, torch.randn(2, *complex_.weight_shape, dtype=torch.float64)).dtype == torch.complex128


@pytest.mark.parametrize("fmap", FEATURE_MAPS, ids=repr)
def test_states_and_fidelities_match_qiskit(fmap):
    x_q, x_k = torch.randn(2, 2, 3, fmap.input_size, dtype=torch.float64), torch.randn(2, 2, 4, fmap.input_size, dtype=torch.float64)
    w_q, w_k = torch.randn(2, *fmap.weight_shape, dtype=torch.float64), torch.randn(2, *fmap.weight_shape, dtype=torch.float64)
    psi_q, psi_k = qiskit_states(fmap, x_q, w_q), qiskit_states(fmap, x_k, w_k)
    np.testing.assert_allclose(EXECUTOR.states(fmap, x_q, w_q).numpy(), psi_q, atol=1e-10)
    expected = np.abs(np.einsum("bhsd,bhnd->bhns", psi_k.conj(), psi_q)) ** 2
    np.testing.assert_allclose(EXECUTOR.fidelities(fmap, x_q, w_q, x_k, w_k).numpy(), expected, atol=1e-10)


@pytest.mark.parametrize("fmap", FEATURE_MAPS, ids=repr)
def test_z_expectations_match_qiskit_observables(fmap):
    """Z on wire q is Z on Qiskit qubit q: this checks the sign table's order independently."""
    x, w = torch.randn(1, 2, 3, fmap.input_size, dtype=torch.float64), torch.randn(2, *fmap.weight_shape, dtype=torch.float64)
    n, circuit = fmap.n_qubits, to_qiskit(fmap)
    expected = np.empty((1, 2, 3, n))
    for h in range(2):
        for t in range(3):
            state = Statevector(bind(circuit, x[0, h, t].numpy(), w[h].numpy()))
            for q in range(n):
                expected[0, h, t, q] = state.expectation_value(SparsePauliOp.from_sparse_list([("Z", [q], 1.0)], n)).real
    np.testing.assert_allclose(EXECUTOR.z_expectations(fmap, x, w).numpy(), expected, atol=1e-10)


def test_float32_inputs_give_float32_scores():
    kernel = FidelityKernel(2, 8, n_qubits=2)
    scores = kernel(torch.randn(1, 2, 3, 2), torch.randn(1, 2, 4, 2))
    assert scores.dtype == torch.float32 and scores.shape == (1, 2, 3, 4)


def test_fidelity_kernel_scales_fidelities_by_the_head_temperature():
    kernel = FidelityKernel(2, 8, n_qubits=3).double()
    q, k = torch.randn(1, 2, 3, 3, dtype=torch.float64), torch.randn(1, 2, 4, 3, dtype=torch.float64)
    fid = EXECUTOR.fidelities(kernel.feature_map, q, kernel.query_weights, k, kernel.key_weights)
    assert torch.allclose(kernel.log_temperature.exp(), torch.full((2,), 2**1.5, dtype=torch.float64))
    torch.testing.assert_close(kernel(q, k), 2**1.5 * fid)


def test_gaussian_kernel_is_minus_squared_distance_of_z_features():
    kernel = GaussianKernel(2, 8, n_qubits=2).double()
    q, k = torch.randn(1, 2, 3, 2, dtype=torch.float64), torch.randn(1, 2, 4, 2, dtype=torch.float64)
    f_q = EXECUTOR.z_expectations(kernel.feature_map, q, kernel.query_weights)
    f_k = EXECUTOR.z_expectations(kernel.feature_map, k, kernel.key_weights)
    expected = -((f_q.unsqueeze(-2) - f_k.unsqueeze(-3)) ** 2).sum(-1)
    torch.testing.assert_close(kernel(q, k), expected)


def test_dot_kernel_is_scaled_dot_product():
    q, k = torch.randn(2, 3, 4, 8), torch.randn(2, 3, 5, 8)
    torch.testing.assert_close(DotKernel(3, 8)(q, k), q @ k.transpose(-1, -2) / math.sqrt(8))


@pytest.mark.parametrize("fmap", FEATURE_MAPS, ids=repr)
def test_gradcheck_fidelities_and_expectations(fmap):
    def args(tokens):
        return torch.randn(1, 2, tokens, fmap.input_size, dtype=torch.float64, requires_grad=True)

    w_q = torch.randn(2, *fmap.weight_shape, dtype=torch.float64, requires_grad=True)
    w_k = torch.randn(2, *fmap.weight_shape, dtype=torch.float64, requires_grad=True)
    x_q, x_k = args(2), args(3)
    assert torch.autograd.gradcheck(lambda *a: EXECUTOR.fidelities(fmap, *a), (x_q, w_q, x_k, w_k))
    assert torch.autograd.gradcheck(lambda x, w: EXECUTOR.z_expectations(fmap, x, w), (x_q, w_q))


def test_kernel_registry_lists_the_kernels():
    assert KERNELS.names() == ["dot", "fidelity", "gaussian", "uniform"]
