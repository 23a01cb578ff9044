"""The catalogue: PennyLane and Qiskit compilations agree, qubit order is fixed, families are pluggable."""

import numpy as np
import pennylane as qml
import pytest
import torch

from qiskit import QuantumCircuit

from qattn.circuits import (
    GATE_SET,
    CATALOGUE,
    AngleEncoding,
    CircuitFamily,
    FeatureMap,
    Gate,
    HardwareEfficient,
    IQPEncoding,
    StronglyEntangling,
    entangling_pairs,
)
from qattn.circuits.qubit_order import qiskit_statevector, qiskit_unitary, z_signs
from qattn.circuits.matrices import gate_matrix
from qattn.circuits.to_pennylane import PENNYLANE_GATES, apply_pennylane
from qattn.circuits.to_qiskit import QISKIT_GATES
from qattn.circuits.to_qiskit import bind, to_qiskit
from qattn.executors.pennylane import unitary

FAMILIES = [CATALOGUE.get(name) for name in CATALOGUE.names()] + [
    HardwareEfficient(rotations=("RX", "RY", "RZ"), entangler="CZ", pattern="ring", layers=3),
    HardwareEfficient(rotations=("RY",), pattern="full", layers=1),
    IQPEncoding(reps=2),
]


def random_arguments(family: CircuitFamily, n: int, rng: np.random.Generator):
    x = rng.uniform(-np.pi, np.pi, family.input_size(n))
    w = rng.uniform(-np.pi, np.pi, family.weight_shape(n))
    return x, w


def pennylane_unitary(gates_of, n: int) -> np.ndarray:
    return qml.matrix(lambda: apply_pennylane(gates_of()), wire_order=range(n))()


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("family", FAMILIES, ids=repr)
def test_pennylane_and_qiskit_compile_to_the_same_unitary(family, n):
    rng = np.random.default_rng(n)
    x, w = random_arguments(family, n, rng)
    expected = qiskit_unitary(bind(to_qiskit(family, n), x, w))
    actual = pennylane_unitary(lambda: family.gates(n, x, w), n)
    np.testing.assert_allclose(actual, expected, atol=1e-10)
    # the executor's unitary (qattn.circuits.matrices, each applied on its own wires), batched over 2 angle sets
    batch_x, batch_w = (torch.as_tensor(np.stack([a, -a], -1)) for a in (x, w))  # trailing batch axis
    batched = unitary(list(family.gates(n, batch_x, batch_w)), n, 2, torch.complex128)
    np.testing.assert_allclose(batched[0].numpy(), expected, atol=1e-10)
    np.testing.assert_allclose(batched[1].numpy(), qiskit_unitary(bind(to_qiskit(family, n), -x, -w)), atol=1e-10)


@pytest.mark.parametrize("name", list(GATE_SET))
def test_every_gate_matrix_is_pennylanes_and_qiskits_and_keeps_the_angles_gradient(name):
    arity, angled = GATE_SET[name]
    angles = torch.tensor([0.3, -1.7, 2.9], dtype=torch.float64, requires_grad=True)
    matrix = gate_matrix(Gate(name, tuple(range(arity)), angles if angled else None), torch.complex128)
    for i, angle in enumerate(angles.detach() if angled else [None]):
        op = PENNYLANE_GATES[name]
        pennylane = op.compute_matrix(angle.item()) if angled else op.compute_matrix()
        circuit = QuantumCircuit(arity)
        circuit.append(QISKIT_GATES[name](angle.item()) if angled else QISKIT_GATES[name](), list(range(arity)))
        for reference in (pennylane, qiskit_unitary(circuit)):
            np.testing.assert_allclose(matrix[i].detach().numpy() if angled else matrix.numpy(), reference, atol=1e-12)
    if angled:
        matrix.real.sum().backward()
        assert angles.grad is not None and angles.grad.abs().sum() > 0


@pytest.mark.parametrize("reuploads", [1, 3])
def test_feature_map_compiles_to_the_same_unitary(reuploads):
    fmap = FeatureMap(IQPEncoding(), StronglyEntangling(layers=1), n_qubits=3, reuploads=reuploads)
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=fmap.input_size), rng.normal(size=fmap.weight_shape)
    expected = qiskit_unitary(bind(to_qiskit(fmap), x, w))
    np.testing.assert_allclose(pennylane_unitary(lambda: fmap.gates(x, w), 3), expected, atol=1e-10)


def test_qubit_order_wire_zero_is_the_most_significant_bit():
    """A flip of wire 0 alone lands on basis state |100> = index 4 in both backends."""
    flip = FeatureMap(AngleEncoding("RX"), HardwareEfficient(("RZ",), entangler="CZ", layers=1), n_qubits=3)
    x, w = [np.pi, 0.0, 0.0], np.zeros(flip.weight_shape)
    qiskit_state = qiskit_statevector(bind(to_qiskit(flip), x, w))
    dev = qml.device("default.qubit", wires=3)
    pennylane_state = qml.QNode(lambda: (apply_pennylane(flip.gates(x, w)), qml.state())[1], dev)()
    for state in (qiskit_state, pennylane_state):
        assert np.argmax(np.abs(state)) == 4
        assert abs(state[4]) == pytest.approx(1.0)


def test_z_signs_follow_the_wire_order():
    np.testing.assert_array_equal(z_signs(2), [[1, 1], [1, -1], [-1, 1], [-1, -1]])


def test_strongly_entangling_matches_pennylane_template():
    n, rng = 4, np.random.default_rng(1)
    w = rng.normal(size=(3, n, 3))
    ours = pennylane_unitary(lambda: StronglyEntangling(layers=3).gates(n, None, w), n)
    template = qml.matrix(qml.StronglyEntanglingLayers(w, wires=range(n)), wire_order=range(n))
    np.testing.assert_allclose(ours, template, atol=1e-10)


def test_iqp_encoding_matches_pennylane_template():
    n, rng = 3, np.random.default_rng(2)
    x = rng.normal(size=n)
    ours = pennylane_unitary(lambda: IQPEncoding(reps=2).gates(n, x, None), n)
    template = qml.matrix(qml.IQPEmbedding(x, wires=range(n), n_repeats=2), wire_order=range(n))
    np.testing.assert_allclose(ours, template, atol=1e-10)


def test_hardware_efficient_ring_matches_basic_entangler_template():
    n, rng = 4, np.random.default_rng(3)
    w = rng.normal(size=(2, n, 1))
    ours = pennylane_unitary(lambda: HardwareEfficient(("RY",), pattern="ring").gates(n, None, w), n)
    template = qml.matrix(qml.BasicEntanglerLayers(w[..., 0], wires=range(n), rotation=qml.RY), wire_order=range(n))
    np.testing.assert_allclose(ours, template, atol=1e-10)


def test_entangling_patterns():
    assert entangling_pairs(4, "linear") == [(0, 1), (1, 2), (2, 3)]
    assert entangling_pairs(4, "ring") == [(0, 1), (1, 2), (2, 3), (3, 0)]
    assert entangling_pairs(2, "ring") == [(0, 1)]
    assert entangling_pairs(3, "full") == [(0, 1), (0, 2), (1, 2)]


def test_every_catalogue_entry_documents_its_paper():
    for name in CATALOGUE:
        assert "arXiv:" in CATALOGUE.get(name).paper, name


def test_bad_family_options_are_named():
    with pytest.raises(ValueError, match="pattern must be one of linear, ring, full"):
        HardwareEfficient(pattern="star")
    with pytest.raises(ValueError, match="rotations must be drawn from RX, RY, RZ"):
        HardwareEfficient(rotations=("RW",))
    with pytest.raises(ValueError, match="'RX' or 'RY'"):
        AngleEncoding("RZ")


def test_a_user_family_with_an_unknown_gate_fails_by_name():
    class Broken(CircuitFamily):
        paper = "none"

        def weight_shape(self, n):
            return (n,)

        def gates(self, n, x, w):
            yield Gate("TOFFOLI", (0, 1))

    with pytest.raises(ValueError, match="unknown gate 'TOFFOLI'; valid gates: H, RX"):
        FeatureMap(AngleEncoding(), Broken(), n_qubits=2)
