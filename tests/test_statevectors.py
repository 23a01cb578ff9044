"""The whole-tensor simulation pieces of the PennyLane executor are exact: compiled ansatz unitaries equal
Qiskit's and the gate-by-gate simulation's, and every custom backward matches finite differences."""

import numpy as np
import pytest
import torch

from qattn.circuits import CATALOGUE, CircuitFamily, Gate, HardwareEfficient, IQPEncoding, StronglyEntangling
from qattn.circuits.qubit_order import qiskit_unitary
from qattn.circuits.to_qiskit import bind, to_qiskit
from qattn.executors import statevectors
from qattn.executors.statevectors import KronProduct, ProductStates, SquaredOverlaps, compile_ansatz, fidelity_scores, kron_digits
from qattn.executors.pennylane import batch_last, unitary

ANSATZE = [CATALOGUE.get(name) for name in ("hardware_efficient", "real_amplitudes", "strongly_entangling")] + [
    HardwareEfficient(rotations=("RX", "RY", "RZ"), entangler="CZ", pattern="ring", layers=3),
    HardwareEfficient(rotations=("RY",), pattern="full", layers=1),
    HardwareEfficient(rotations=("RZ", "RX"), entangler="CZ", layers=2),
]


class StartsWithHadamards(CircuitFamily):
    """Fixed gates before the first rotation and a non-monomial (Hadamard) layer between rotations."""

    paper = "test only"

    def weight_shape(self, n_qubits):
        return (2, n_qubits)

    def gates(self, n_qubits, x, w):
        for q in range(n_qubits):
            yield Gate("H", (q,))
        for layer in range(2):
            for q in range(n_qubits):
                yield Gate("RY", (q,), w[layer, q])
            yield Gate("H", (0,))
            if n_qubits > 1:
                yield Gate("CNOT", (0, n_qubits - 1))


class ScaledAngles(CircuitFamily):
    """An angle computed from a weight: does not compile, the executor simulates gate by gate."""

    paper = "test only"

    def weight_shape(self, n_qubits):
        return (n_qubits,)

    def gates(self, n_qubits, x, w):
        for q in range(n_qubits):
            yield Gate("RY", (q,), 2 * w[q])


@pytest.mark.parametrize("n", [1, 2, 3, 5])
@pytest.mark.parametrize("ansatz", [*ANSATZE, StartsWithHadamards()], ids=repr)
def test_compiled_unitaries_equal_qiskit_and_the_gate_by_gate_simulation(ansatz, n):
    plan = compile_ansatz(ansatz, n)
    assert plan is not None
    w = torch.as_tensor(np.random.default_rng(n).uniform(-np.pi, np.pi, (3, *ansatz.weight_shape(n))))
    got = plan.unitaries(w.reshape(3, -1))
    assert got.dtype == (torch.float64 if plan.real else torch.complex128)
    by_gate = unitary(list(ansatz.gates(n, None, batch_last(w))), n, 3, torch.complex128)
    torch.testing.assert_close(got.to(torch.complex128), by_gate, atol=1e-12, rtol=0)
    if not isinstance(ansatz, StartsWithHadamards):
        want = qiskit_unitary(bind(to_qiskit(ansatz, n), None, w[1].numpy()))
        np.testing.assert_allclose(got[1].numpy(), want, atol=1e-12)


def test_real_amplitudes_compile_to_real_unitaries_with_fixed_layers_as_row_orders():
    plan = compile_ansatz(CATALOGUE.get("real_amplitudes"), 4)
    assert plan.real and plan.phases is None and plan.prefix is None and plan.dense == (None, None)
    assert sorted(plan.rows[0]) == list(range(16)) and list(plan.rows[0]) != list(range(16))  # a CNOT chain


def test_ansatze_that_do_not_compile_fall_back_to_gate_by_gate():
    assert compile_ansatz(ScaledAngles(), 3) is None
    assert compile_ansatz(IQPEncoding(), 3) is None  # RZZ and products of features: not an ansatz the plan takes


@pytest.mark.parametrize("ansatz", [ANSATZE[0], StronglyEntangling(layers=1), StartsWithHadamards()], ids=repr)
def test_compiled_unitaries_gradcheck(ansatz):
    plan = compile_ansatz(ansatz, 3)
    w = torch.randn(2, plan.size, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: torch.view_as_real(plan.unitaries(t).to(torch.complex128)), (w,))


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_product_states_equal_the_kronecker_product_and_gradcheck(dtype):
    a = torch.randn(3, 4, 2, dtype=dtype, requires_grad=True)
    with torch.no_grad():
        a[0, 1, 0] = 0  # an exact zero amplitude (sin 0)
    want = a[:, 0]
    for q in range(1, 4):
        want = torch.stack([torch.kron(want[t], a[t, q]) for t in range(3)])
    torch.testing.assert_close(ProductStates.apply(a), want)
    assert torch.autograd.gradcheck(ProductStates.apply, (a,))


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_kron_product_of_matrices_gradchecks_through_zero_entries(dtype):
    m = torch.randn(2, 3, 4, dtype=dtype, requires_grad=True)  # 3 flattened 2x2 factors
    with torch.no_grad():
        m[:, 0, 1] = 0  # a rotation's zero off-diagonal
    digits = torch.as_tensor(kron_digits(3))
    want = torch.kron(torch.kron(m[0, 0].view(2, 2), m[0, 1].view(2, 2)), m[0, 2].view(2, 2))
    torch.testing.assert_close(KronProduct.apply(m, digits)[0].view(8, 8), want)
    assert torch.autograd.gradcheck(lambda t: KronProduct.apply(t, digits), (m,))


@pytest.mark.parametrize("workspace", [statevectors.WORKSPACE_BYTES, 64], ids=["one-block", "row-blocks"])
@pytest.mark.parametrize("parts", [1, 2])
def test_squared_overlaps_match_the_formula_and_gradcheck(parts, workspace, monkeypatch):
    monkeypatch.setattr(statevectors, "WORKSPACE_BYTES", workspace)
    a = torch.randn(2, 3, 7, parts, 4, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    want = sum((a[..., c, :] @ k.mT) ** 2 for c in range(parts))
    torch.testing.assert_close(SquaredOverlaps.apply(a, k), want)
    assert torch.autograd.gradcheck(SquaredOverlaps.apply, (a, k))
    assert len(statevectors.row_blocks(want)) == (1 if workspace > 10**6 else 4)


@pytest.mark.parametrize("states", ["real", "complex"])
@pytest.mark.parametrize("metric", [None, "real", "complex"])
def test_fidelity_scores_are_scaled_squared_overlaps(states, metric):
    g = torch.Generator().manual_seed(0)
    dtype = torch.complex128 if states == "complex" else torch.float64
    s_q, s_k = torch.randn(2, 3, 4, 8, dtype=dtype, generator=g), torch.randn(2, 3, 5, 8, dtype=dtype, generator=g)
    m = None if metric is None else torch.randn(3, 8, 8, dtype=torch.complex128 if metric == "complex" else torch.float64, generator=g)
    scale = torch.tensor([0.5, 1.0, 3.0], dtype=torch.float64)
    ket_q = s_q.to(torch.complex128) if m is None else s_q.to(torch.complex128) @ m.to(torch.complex128).mT
    want = scale[:, None, None] * (ket_q @ s_k.to(torch.complex128).mH).abs() ** 2
    torch.testing.assert_close(fidelity_scores(s_q, s_k, m, scale), want)
