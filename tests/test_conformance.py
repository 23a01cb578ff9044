"""One conformance suite for every executor and estimator, against the exact reference (PennyLane).

Exact executors must agree to 1e-6 on fidelities, Z features, scores, attention weights, layer outputs
and gradients. Sampled ones (sampled Aer with fixed shots, with an error budget and adaptively, and
the staged IBM executor answered by sampled Aer) must agree within 5 binomial standard errors for
their shot count; randomized-measurement fidelities within 5 of their own standard errors. Noisy
ones are reported (their deviation is printed and recorded), not asserted equal.
"""

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from qiskit_aer import AerSimulator

from qattn import QuantumMultiheadAttention
from qattn.circuits import AngleEncoding, FeatureMap, HardwareEfficient, IQPEncoding, StronglyEntangling
from qattn.executors import AerExecutor, PennyLaneExecutor, SampledAerExecutor, ShotBudget
from qattn.executors.rows import EXPECTATION_RULE, ShiftRule
from qattn.ibm.staged import Pending, StagedExecutor
from qattn.executors.base import SquaredModulus

SHOTS = 4000
REFERENCE = PennyLaneExecutor()
EXACT = {
    "aer-statevector": lambda: AerExecutor(seed=11),
    # sub-jobs of 7 bindings on a thread pool: the splitting a Dask cluster gets (tests/test_distributed.py)
    "aer-statevector-split": lambda: AerExecutor(seed=11, cluster=ThreadPoolExecutor(2), max_job_size=7),
}
class StagedBySampledAer(StagedExecutor):
    """The staged IBM executor, each pending stage answered by sampled Aer: the hardware code path
    (rows, stages, replays) with a simulator where the device would be."""

    def __init__(self, **options):
        super().__init__(shots=options.pop("shots", SHOTS), **options)
        self.device = SampledAerExecutor(shots=self.shots, seed=11)

    def replayed(self, call):
        self.results = {}  # each call is its own evaluation
        while True:
            self.reset()
            try:
                return call()
            except Pending as pending:
                request = pending.request
                shots = np.full(request.circuits, self.shots) if request.shots is None else request.shots
                self.results[request.stage] = (request.angles, self.device.run(request.kind, request.fmap, request.angles, shots),
                                               request.shots)

    def fidelities(self, *args, **kwargs):
        return self.replayed(lambda: super(StagedBySampledAer, self).fidelities(*args, **kwargs))

    def z_expectations(self, *args, **kwargs):
        return self.replayed(lambda: super(StagedBySampledAer, self).z_expectations(*args, **kwargs))

    def z_expectation_pair(self, *args, **kwargs):
        return self.replayed(lambda: super(StagedBySampledAer, self).z_expectation_pair(*args, **kwargs))


AT_LEAST_SHOTS = ShotBudget(0.01, min_shots=SHOTS)  # every circuit gets >= SHOTS, so the bound below holds
SAMPLED = {
    "aer-shots": lambda: SampledAerExecutor(shots=SHOTS, seed=11),
    "aer-shots-split": lambda: SampledAerExecutor(shots=SHOTS, seed=11, cluster=ThreadPoolExecutor(2), max_job_size=7),
    "aer-budget": lambda: SampledAerExecutor(shots=SHOTS, seed=11, budget=AT_LEAST_SHOTS),
    "aer-adaptive": lambda: SampledAerExecutor(shots=SHOTS, seed=11, budget=ShotBudget(0.01, "adaptive", pilot_shots=SHOTS, min_shots=SHOTS)),
    "ibm-staged": lambda: StagedBySampledAer(),
    "ibm-staged-budget": lambda: StagedBySampledAer(budget=AT_LEAST_SHOTS),
}
NOISY = {"aer-FakeManilaV2": lambda: SampledAerExecutor(shots=SHOTS, noise="FakeManilaV2", seed=11, seed_transpiler=5)}
FEATURE_MAPS = [
    FeatureMap(AngleEncoding("RY"), HardwareEfficient(), n_qubits=3),
    FeatureMap(IQPEncoding(), StronglyEntangling(layers=1), n_qubits=2, reuploads=2),
    FeatureMap(AngleEncoding("RY"), HardwareEfficient(("RY",)), n_qubits=3, reuploads=2),  # real amplitudes
    # one upload: the PennyLane executor folds U_K^† U_Q into one metric (real, mixed, complex arithmetic)
    FeatureMap(AngleEncoding("RY"), HardwareEfficient(("RY",)), n_qubits=3),
    FeatureMap(AngleEncoding("RX"), HardwareEfficient(), n_qubits=2),
    FeatureMap(IQPEncoding(), StronglyEntangling(layers=1), n_qubits=2),
]


@pytest.mark.parametrize("fmap", FEATURE_MAPS[:1] + FEATURE_MAPS[3:], ids=repr)
def test_float32_fidelities_stay_within_float32_rounding_of_float64(fmap):
    """Training runs in float32 (complex64 where a circuit is complex): no precision games beyond rounding."""
    x_q, w_q, x_k, w_k = inputs(fmap)
    want = REFERENCE.fidelities(fmap, x_q, w_q, x_k, w_k)
    got = REFERENCE.fidelities(fmap, x_q.float(), w_q.float(), x_k.float(), w_k.float())
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, atol=1e-6, rtol=0)


def test_squared_modulus_gradients_match_finite_differences():
    re, im = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True), torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(SquaredModulus.apply(re, im), re**2 + im**2)
    assert torch.autograd.gradcheck(SquaredModulus.apply, (re, im))


def inputs(fmap, seed=0):
    g = torch.Generator().manual_seed(seed)
    x_q = torch.randn(2, 2, 3, fmap.input_size, dtype=torch.float64, generator=g)
    x_k = torch.randn(2, 2, 4, fmap.input_size, dtype=torch.float64, generator=g)
    w_q = torch.randn(2, *fmap.weight_shape, dtype=torch.float64, generator=g)
    w_k = torch.randn(2, *fmap.weight_shape, dtype=torch.float64, generator=g)
    return x_q, w_q, x_k, w_k


@pytest.mark.parametrize("fmap", FEATURE_MAPS, ids=repr)
@pytest.mark.parametrize("name", list(EXACT))
def test_exact_executors_agree_on_fidelities_and_features(name, fmap):
    executor, (x_q, w_q, x_k, w_k) = EXACT[name](), inputs(fmap)
    want = REFERENCE.fidelities(fmap, x_q, w_q, x_k, w_k)
    torch.testing.assert_close(executor.fidelities(fmap, x_q, w_q, x_k, w_k), want, atol=1e-6, rtol=0)
    scale = torch.tensor([0.5, 3.0], dtype=torch.float64)  # per head, folded in where an executor can
    for ex in (executor, REFERENCE):
        torch.testing.assert_close(ex.fidelities(fmap, x_q, w_q, x_k, w_k, scale), scale[:, None, None] * want, atol=1e-6, rtol=0)
    torch.testing.assert_close(executor.z_expectations(fmap, x_q, w_q), REFERENCE.z_expectations(fmap, x_q, w_q), atol=1e-6, rtol=0)


@pytest.mark.parametrize("kernel", ["fidelity", "gaussian"])
@pytest.mark.parametrize("name", list(EXACT))
def test_exact_executors_agree_on_scores_weights_outputs_and_gradients(name, kernel):
    torch.manual_seed(3)
    reference = QuantumMultiheadAttention(8, 2, n_qubits=2, kernel=kernel, reuploads=2).double()
    other = QuantumMultiheadAttention(8, 2, n_qubits=2, kernel=kernel, reuploads=2, executor=EXACT[name]()).double()
    other.load_state_dict(reference.state_dict())
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    results = []
    for layer in (reference, other):
        q = layer.q_proj(x).view(2, 5, 2, -1).transpose(1, 2)
        k = layer.k_proj(x).view(2, 5, 2, -1).transpose(1, 2)
        scores = layer.kernel(q, k)
        out, weights = layer(x, x, x, average_attn_weights=False)
        out.square().sum().backward()
        results.append((scores, weights, out, [p.grad for p in layer.kernel.parameters()]))
    (s0, w0, o0, g0), (s1, w1, o1, g1) = results
    for got, want in ((s1, s0), (w1, w0), (o1, o0), *zip(g1, g0)):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def five_sigma(p: torch.Tensor, shots: int) -> torch.Tensor:
    """5 binomial standard errors of a frequency estimate of ``p``."""
    return 5 * torch.sqrt(p * (1 - p) / shots) + 1e-12


@pytest.mark.parametrize("fmap", FEATURE_MAPS, ids=repr)
@pytest.mark.parametrize("name", list(SAMPLED))
def test_sampled_executors_agree_within_their_shot_noise(name, fmap):
    executor, (x_q, w_q, x_k, w_k) = SAMPLED[name](), inputs(fmap)
    exact = REFERENCE.fidelities(fmap, x_q, w_q, x_k, w_k)
    sampled = executor.fidelities(fmap, x_q, w_q, x_k, w_k)
    assert torch.all((sampled - exact).abs() <= five_sigma(exact, SHOTS))
    z_exact = REFERENCE.z_expectations(fmap, x_q, w_q)
    z_sampled = executor.z_expectations(fmap, x_q, w_q)
    p_one = (1 - z_exact) / 2  # <Z> = 1 - 2 P(bit = 1)
    assert torch.all((z_sampled - z_exact).abs() <= 2 * five_sigma(p_one, SHOTS))


def test_sampled_executors_run_only_the_circuits_attention_uses():
    executor, fmap = SAMPLED["aer-shots"](), FEATURE_MAPS[0]
    x_q, w_q, x_k, w_k = inputs(fmap)
    needed = torch.tensor([[True, True, False, False], [True, True, True, False]])[:, None, None, :].expand(2, 2, 3, 4)
    rows = {}

    def counted(kind, evaluate):  # the angle rows a program is asked to sample
        def run(values, *shots):
            rows[kind] = len(values)
            return evaluate(values, *shots)

        return run

    for kind in ("fidelity", "z"):
        executor._programs[(fmap, kind)] = counted(kind, executor.program(fmap, kind))
    sampled = executor.fidelities(fmap, x_q, w_q, x_k, w_k, needed=needed)
    exact = REFERENCE.fidelities(fmap, x_q, w_q, x_k, w_k)
    assert rows["fidelity"] == int(needed.sum()) == 2 * 3 * (2 + 3)  # heads x queries x unmasked keys
    assert torch.all(sampled[~needed] == 0) and torch.all((sampled - exact).abs()[needed] <= five_sigma(exact[needed], SHOTS))
    z_q, z_k = executor.z_expectation_pair(fmap, x_q, w_q, x_k, w_k, needed=needed)
    assert rows["z"] == 2 * 2 * 3 + 2 * (2 + 3)  # every query (each has unmasked keys), only unmasked keys
    assert torch.all(z_k[0, :, 2:] == 0) and torch.all(z_k[1, :, 3] == 0)


@pytest.mark.parametrize("fmap", FEATURE_MAPS[:2] + FEATURE_MAPS[4:5], ids=repr)
@pytest.mark.parametrize("name", ["aer", "ibm-staged"])
def test_randomized_fidelities_agree_within_their_standard_errors(name, fmap):
    """O(N) circuits: every needed token once per shared rotation; the N x S overlaps from bitstrings."""
    options = {"estimator": "randomized", "rotations": 400, "shots": 16}
    executor = SampledAerExecutor(seed=11, **options) if name == "aer" else StagedBySampledAer(**options)
    x_q, w_q, x_k, w_k = inputs(fmap)
    exact = REFERENCE.fidelities(fmap, x_q, w_q, x_k, w_k)
    with torch.no_grad():
        randomized = executor.fidelities(fmap, x_q, w_q, x_k, w_k)
    # single-rotation variance is below 2.5^n / M + 1 (Elben et al.); 5 standard errors of the mean over rotations
    bound = 5 * math.sqrt((2.5**fmap.n_qubits / 16 + 1) / 400)
    assert randomized.shape == exact.shape and torch.all((randomized - exact).abs() <= bound)
    assert (randomized - exact).mean().abs() <= bound / math.sqrt(exact.numel())  # no bias beyond the noise of the mean


@pytest.mark.parametrize("name", list(NOISY))
def test_noisy_executors_are_reported(name, record_property, capsys):
    fmap = FEATURE_MAPS[0]
    executor, (x_q, w_q, x_k, w_k) = NOISY[name](), inputs(fmap)
    exact = REFERENCE.fidelities(fmap, x_q, w_q, x_k, w_k)
    noisy = executor.fidelities(fmap, x_q, w_q, x_k, w_k)
    assert noisy.shape == exact.shape and torch.all((noisy >= 0) & (noisy <= 1))
    deviation = (noisy - exact).abs().mean().item()
    record_property(f"{name}_mean_abs_fidelity_deviation", deviation)
    with capsys.disabled():
        print(f"\n{name}: mean |noisy - exact| fidelity = {deviation:.4f} over {exact.numel()} pairs, {SHOTS} shots")


@pytest.mark.parametrize("executor", [*EXACT.values(), *SAMPLED.values()], ids=[*EXACT, *SAMPLED])
def test_qubit_order_wire_zero_is_the_most_significant_bit(executor):
    """RX(pi) on wire 0 alone: basis state |10> (index 2), <Z_0> = -1 and <Z_1> = +1."""
    fmap = FeatureMap(AngleEncoding("RX"), HardwareEfficient(("RZ",), entangler="CZ", layers=1), n_qubits=2)
    x = torch.tensor([[[[math.pi, 0.0]]]], dtype=torch.float64)
    w = torch.zeros(1, *fmap.weight_shape, dtype=torch.float64)
    torch.testing.assert_close(executor().z_expectations(fmap, x, w), torch.tensor([[[[-1.0, 1.0]]]], dtype=torch.float64))
    if executor().shots is None:
        assert executor().states(fmap, x, w)[0, 0, 0].abs().argmax().item() == 2


def test_gradcheck_aer_states_against_finite_differences():
    fmap = FEATURE_MAPS[1]
    executor = AerExecutor()
    x = torch.randn(1, 2, 2, fmap.input_size, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, *fmap.weight_shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: executor.states(fmap, a, b), (x, w))


def test_gradcheck_the_expectation_shift_rule():
    """The two-term rule the sampled modes use, on a function it is exact for: prod_k cos(theta_k)."""
    evaluate = lambda values: np.cos(values).prod(-1, keepdims=True)  # noqa: E731
    angles = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: ShiftRule.apply(a, evaluate, EXPECTATION_RULE, torch.float64), (angles,))


@pytest.mark.parametrize("kernel", ["fidelity", "gaussian"])
def test_training_on_sampled_aer_takes_steps(kernel):
    torch.manual_seed(0)
    layer = QuantumMultiheadAttention(4, 1, n_qubits=2, kernel=kernel, executor=SampledAerExecutor(shots=256, seed=1))
    x = torch.randn(2, 3, 4)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    before = layer.kernel.query_weights.detach().clone()
    for _ in range(2):
        loss = layer(x, x, x)[0].square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert not torch.equal(before, layer.kernel.query_weights)


def test_bad_aer_options_are_named():
    with pytest.raises(ValueError, match="device='GPU' is not available to Qiskit Aer here .*qiskit-aer-gpu"):
        if "GPU" in AerSimulator().available_devices():
            pytest.skip("this machine has a GPU")
        AerExecutor(device="GPU")
    with pytest.raises(ValueError, match="unknown fake backend 'FakeNowhere'; valid: .*FakeManilaV2"):
        SampledAerExecutor(shots=10, noise="FakeNowhere")
    with pytest.raises(ValueError, match="give shots as well as noise"):
        AerExecutor(noise="FakeManilaV2")
    with pytest.raises(ValueError, match="shots must be a positive integer"):
        SampledAerExecutor(shots=0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'shots'"):  # exact: sampled Aer is its own class
        AerExecutor(shots=10)
    with pytest.raises(ValueError, match="a cluster needs max_job_size"):
        AerExecutor(cluster=ThreadPoolExecutor(1))
    with pytest.raises(ValueError, match="max_job_size must be a positive integer"):
        AerExecutor(max_job_size=0)
    with pytest.raises(ValueError, match="cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'.*dask scheduler"):
        AerExecutor(cluster="tcp://127.0.0.1:9", max_job_size=8)
    with pytest.raises(ValueError, match="n_qubits=6 exceeds FakeManilaV2's 5 qubits"):
        QuantumMultiheadAttention(12, 2, n_qubits=6, executor=SampledAerExecutor(shots=10, noise="FakeManilaV2"))
