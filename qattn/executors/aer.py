"""Qiskit Aer executor: exact statevectors, shot sampling, and the noise of IBM devices; CPU or GPU.

    AerExecutor()                                # exact: every token's statevector, overlaps by matmul
    AerExecutor(shots=4096, seed=7)              # sampled: compute-uncompute fidelities, Z counts
    AerExecutor(shots=4096, noise="FakeManilaV2")  # sampled with that device's noise model and layout
    AerExecutor(shots=4096, cluster=Client("tcp://10.0.0.5:8786"), max_job_size=256)  # spread over Dask

Angles are computed in torch from the backend-neutral gates (so features and weights keep their
gradients) and bound to a circuit with one parameter slot per angled gate. Every slot is a rotation
``exp(-i theta P / 2)`` with ``P^2 = I``, which gives exact shift rules, batched in one Aer call:

- states (exact mode): ``d psi / d theta = psi(theta + pi) / 2``;
- probabilities and expectation values (sampled modes): ``dE/dtheta = (E(theta + pi/2) - E(theta - pi/2)) / 2``.

Each forward is one Aer call carrying all parameter bindings of the batch (never one call per
circuit), and each backward one more call with all shifted bindings. Sampled modes run through
Aer's ``SamplerV2`` primitive, the interface the IBM runtime executor shares.

Scaling out: given a ``cluster`` (any ``concurrent.futures.Executor``-style object with ``submit``:
a ``dask.distributed.Client``, a process pool; or a Dask scheduler address), each Aer call is split
into sub-jobs of ``max_job_size`` bindings that run on it. This is Aer's own ``executor`` /
``max_job_size`` contract, done here because Aer 0.18 accepts those options but no longer splits jobs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Executor as Pool
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from qiskit import QuantumCircuit

from qattn.circuits import FeatureMap, Gate
from qattn.circuits.qubit_order import qiskit_samples_to_wire_order, qiskit_states_to_wire_order
from qattn.circuits.to_qiskit import slot_circuit

from .base import StatevectorExecutor, complex_dtype, per_head, used_pairs, used_tokens

Evaluate = Callable[[np.ndarray], np.ndarray]  # (M, slots) angles -> (M, outputs)


class ShiftRule(torch.autograd.Function):
    """Outputs of a circuit at given slot angles, differentiated by a parameter-shift rule.

    ``rule`` is a list of (shift, coefficient): ``d out / d theta_k = sum c * out(theta + shift e_k)``.
    All shifted evaluations of the batch go to ``evaluate`` in one call.
    """

    @staticmethod
    def forward(ctx, angles: torch.Tensor, evaluate: Evaluate, rule: tuple[tuple[float, float], ...], dtype: torch.dtype):
        ctx.save_for_backward(angles)
        ctx.evaluate, ctx.rule = evaluate, rule
        return torch.as_tensor(evaluate(angles.detach().cpu().double().numpy()), dtype=dtype, device=angles.device)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (angles,) = ctx.saved_tensors
        values = angles.detach().cpu().double().numpy()  # (M, K)
        m, k = values.shape
        eye = np.eye(k)
        shifted = np.concatenate([values[None] + shift * eye[:, None, :] for shift, _ in ctx.rule])  # (R*K, M, K)
        outputs = ctx.evaluate(shifted.reshape(-1, k)).reshape(len(ctx.rule), k, m, -1)
        derivative = sum(coefficient * outputs[i] for i, (_, coefficient) in enumerate(ctx.rule))  # (K, M, O)
        grad = grad_out.detach().cpu().numpy()  # (M, O)
        grad_angles = np.real(np.einsum("mo,kmo->mk", np.conj(grad), derivative))
        return torch.as_tensor(grad_angles, dtype=angles.dtype, device=angles.device), None, None, None


STATE_RULE = ((math.pi, 0.5),)
EXPECTATION_RULE = ((math.pi / 2, 0.5), (-math.pi / 2, -0.5))


def slot_angles(fmap: FeatureMap, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``(B, H, N, F)`` features and ``(H, ...)`` weights -> ``(B, H, N, slots)`` gate angles, in torch."""
    batch, heads, tokens, features = x.shape
    per_head = []
    for h in range(heads):
        flat = x[:, h].reshape(-1, features).transpose(0, 1)  # (F, B*N): families index x[i]
        angles = [g.angle for g in fmap.gates(flat, w[h]) if g.angle is not None]
        stacked = torch.stack([torch.as_tensor(a, dtype=x.dtype, device=x.device).expand(batch * tokens) for a in angles], -1)
        per_head.append(stacked.view(batch, tokens, -1))  # (B, N, G)
    return torch.stack(per_head, 1)  # (B, H, N, G)


def fake_backend(name: str):
    """An IBM device's snapshot (noise, coupling map, basis) from qiskit-ibm-runtime's fake provider."""
    try:
        from qiskit_ibm_runtime import fake_provider
    except ImportError:
        raise ImportError("device noise needs qiskit-ibm-runtime: pip install 'qattn[ibm]'") from None
    names = sorted(n for n in dir(fake_provider) if n.startswith("Fake") and "Provider" not in n)
    if name not in names:
        raise ValueError(f"unknown fake backend {name!r}; valid: {', '.join(names)}")
    return getattr(fake_provider, name)()


class AerExecutor(StatevectorExecutor):
    name: ClassVar[str] = "aer"
    max_qubits: ClassVar[int] = 20

    def __init__(
        self,
        *,
        shots: int | None = None,
        noise: str | None = None,
        method: str = "automatic",
        device: str = "CPU",
        seed: int | None = None,
        seed_transpiler: int | None = None,
        cluster: Pool | str | None = None,
        max_job_size: int | None = None,
    ) -> None:
        from qiskit_aer import AerSimulator

        if shots is not None and (isinstance(shots, bool) or not isinstance(shots, int) or shots < 1):
            raise ValueError(f"shots must be a positive integer or None (exact), got {shots!r}")
        if noise is not None and shots is None:
            raise ValueError("a noisy simulation samples: give shots as well as noise")
        available = AerSimulator().available_devices()
        if device not in available:
            raise ValueError(
                f"device={device!r} is not available to Qiskit Aer here (available: {', '.join(available)}); "
                "for GPUs install qiskit-aer-gpu (pip install 'qattn[gpu]') on a machine with an NVIDIA GPU"
            )
        methods = AerSimulator().available_methods()
        if method not in methods:
            raise ValueError(f"unknown Aer method {method!r}; valid: {', '.join(methods)}")
        self.shots, self.noise, self.method, self.device = shots, noise, method, device
        self.seed, self.seed_transpiler = seed, seed_transpiler
        if max_job_size is not None and (isinstance(max_job_size, bool) or not isinstance(max_job_size, int) or max_job_size < 1):
            raise ValueError(f"max_job_size must be a positive integer (circuit bindings per sub-job), got {max_job_size!r}")
        if cluster is not None and max_job_size is None:
            raise ValueError("a cluster needs max_job_size: the circuit bindings per sub-job it receives (e.g. 256)")
        self.max_job_size = max_job_size
        self.cluster = connect_cluster(cluster) if isinstance(cluster, str) else cluster
        self.backend = fake_backend(noise) if noise else None
        self._programs: dict[tuple[FeatureMap, str], Evaluate] = {}

    def __repr__(self) -> str:
        spread = f", cluster={self.cluster!r}, max_job_size={self.max_job_size}" if self.cluster is not None else ""
        return f"AerExecutor(shots={self.shots}, noise={self.noise!r}, method={self.method!r}, device={self.device!r}{spread})"

    def check_qubits(self, n_qubits: int) -> None:
        super().check_qubits(n_qubits)
        if self.backend is not None and n_qubits > self.backend.num_qubits:
            raise ValueError(f"n_qubits={n_qubits} exceeds {self.noise}'s {self.backend.num_qubits} qubits")

    # -- exact -----------------------------------------------------------------------------------

    def states(self, fmap: FeatureMap, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        angles = slot_angles(fmap, x, w)  # (B, H, N, G)
        psi = self.run_states(fmap, angles.reshape(-1, angles.shape[-1]), complex_dtype(x.dtype))
        return psi.view(*angles.shape[:3], -1)

    def state_pair(self, fmap, x_q, w_q, x_k, w_k):
        """Query and key states in one Aer call."""
        a_q, a_k = slot_angles(fmap, x_q, w_q), slot_angles(fmap, x_k, w_k)
        flat_q, flat_k = a_q.reshape(-1, a_q.shape[-1]), a_k.reshape(-1, a_k.shape[-1])
        psi = self.run_states(fmap, torch.cat([flat_q, flat_k]), complex_dtype(x_q.dtype))
        psi_q, psi_k = psi.split([len(flat_q), len(flat_k)])
        return psi_q.view(*a_q.shape[:3], -1), psi_k.view(*a_k.shape[:3], -1)

    def run_states(self, fmap: FeatureMap, angles: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``(M, G)`` slot angles -> ``(M, 2^n)`` statevectors (wire order), differentiable, one call."""
        if self.shots is not None:
            raise NotImplementedError("sampled Aer executors have no statevectors; use fidelities or z_expectations")
        return ShiftRule.apply(angles, self.program(fmap, "states"), STATE_RULE, dtype)

    # -- sampled ---------------------------------------------------------------------------------

    def fidelities(self, fmap, x_q, w_q, x_k, w_k, scale=None, needed=None):
        if self.shots is None:
            return super().fidelities(fmap, x_q, w_q, x_k, w_k, scale)
        a_q, a_k = slot_angles(fmap, x_q, w_q), slot_angles(fmap, x_k, w_k)  # (B, H, N, G), (B, H, S, G)
        tokens, keys = a_q.shape[2], a_k.shape[2]
        pairs = torch.cat([a_q.unsqueeze(3).expand(-1, -1, -1, keys, -1), a_k.unsqueeze(2).expand(-1, -1, tokens, -1, -1)], -1)
        flat = pairs.reshape(-1, pairs.shape[-1])
        used = used_pairs(needed, pairs.shape[:4])
        fid = only_needed(lambda a: ShiftRule.apply(a, self.program(fmap, "fidelity"), EXPECTATION_RULE, x_q.dtype), flat, used, 1)
        return per_head(scale, fid.view(*pairs.shape[:4]))

    def z_expectations(self, fmap, x, w):
        if self.shots is None:
            return super().z_expectations(fmap, x, w)
        angles = slot_angles(fmap, x, w)
        return self.sampled_z(fmap, angles.reshape(-1, angles.shape[-1]), x.dtype).view(*angles.shape[:3], -1)

    def z_expectation_pair(self, fmap, x_q, w_q, x_k, w_k, needed=None):
        """Query and key ``<Z_q>`` features in one Aer call (exact: from the states)."""
        if self.shots is None:
            psi_q, psi_k = self.state_pair(fmap, x_q, w_q, x_k, w_k)
            return self.z_from_states(fmap, psi_q), self.z_from_states(fmap, psi_k)
        a_q, a_k = slot_angles(fmap, x_q, w_q), slot_angles(fmap, x_k, w_k)
        flat_q, flat_k = a_q.reshape(-1, a_q.shape[-1]), a_k.reshape(-1, a_k.shape[-1])
        used = used_tokens(needed, a_q.shape[:3], a_k.shape[2])
        z = only_needed(lambda a: self.sampled_z(fmap, a, x_q.dtype), torch.cat([flat_q, flat_k]), used, fmap.n_qubits)
        z_q, z_k = z.split([len(flat_q), len(flat_k)])
        return z_q.view(*a_q.shape[:3], -1), z_k.view(*a_k.shape[:3], -1)

    def sampled_z(self, fmap: FeatureMap, angles: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``(M, G)`` slot angles -> ``(M, n)`` sampled ``<Z_q>``, differentiable, one call."""
        return ShiftRule.apply(angles, self.program(fmap, "z"), EXPECTATION_RULE, dtype)

    # -- programs: circuits, transpilation and samplers, built once per feature map ----------------

    def program(self, fmap: FeatureMap, kind: str) -> Evaluate:
        """The function of slot angles behind ``states`` / sampled ``fidelity`` / sampled ``z``."""
        key = (fmap, kind)
        if key not in self._programs:
            gates = list(fmap.gates(np.zeros(fmap.input_size), np.zeros(fmap.weight_shape)))
            self._programs[key] = self.gate_program(gates, fmap.n_qubits, kind)
        return self._programs[key]

    def gate_program(self, gates: list[Gate], n_qubits: int, kind: str) -> Evaluate:
        """The same for any backend-neutral circuit (its gates' angles are ignored: each angled gate is
        a slot, in gate order). Kinds: ``states`` (exact executors), ``fidelity``, ``z``, and ``bits``:
        the sampled bitstrings themselves, ``(M, shots, n)`` bool in wire order (sampled executors)."""
        if (kind == "states") != (self.shots is None):
            raise ValueError(f"an Aer executor with shots={self.shots} has no {kind!r} program")
        key = (tuple((g.name, g.wires) for g in gates), n_qubits, kind)
        if key not in self._programs:
            program = self.build_program(gates, n_qubits, kind)
            self._programs[key] = lambda values: self.run_program(program, values)
        return self._programs[key]

    def build_program(self, gates: list[Gate], n_qubits: int, kind: str) -> AerProgram:
        circuit, _ = slot_circuit(gates, n_qubits, "a")
        if kind == "states":
            circuit.save_statevector()
            method = "statevector" if self.method == "automatic" else self.method
            return AerProgram(circuit, kind, n_qubits, {"method": method, "device": self.device})
        if kind == "fidelity":  # compute-uncompute: P(0...0) = |<phi_k|phi_q>|^2
            circuit = circuit.compose(slot_circuit(gates, n_qubits, "b")[0].inverse())
        circuit.measure_all()
        options = {"method": self.method, "device": self.device}
        if self.backend is not None:  # the device's layout, basis gates and noise
            from qiskit.transpiler import generate_preset_pass_manager
            from qiskit_aer import AerSimulator

            simulator = AerSimulator.from_backend(self.backend, device=self.device)
            manager = generate_preset_pass_manager(optimization_level=1, backend=simulator, seed_transpiler=self.seed_transpiler)
            circuit = manager.run(circuit)
            options = {"noise_model": simulator.options.noise_model, "device": self.device}
        return AerProgram(circuit, kind, n_qubits, options, self.shots, parameter_columns(circuit))

    def run_program(self, program: AerProgram, values: np.ndarray) -> np.ndarray:
        """``program`` on ``(M, slots)`` angles: in this process, or, given a ``cluster``, as sub-jobs of
        ``max_job_size`` rows on it. Chunk ``i`` is seeded ``seed + i`` wherever it runs, so a seeded
        run gives the same values in process and on a cluster with the same ``max_job_size``."""
        size = self.max_job_size or len(values) or 1
        chunks = [values[start : start + size] for start in range(0, len(values), size)] or [values]
        seeds = [None if self.seed is None else self.seed + i for i in range(len(chunks))]
        if self.cluster is None:
            return np.concatenate([program(chunk, seed) for chunk, seed in zip(chunks, seeds)])
        futures = [self.cluster.submit(program, chunk, seed) for chunk, seed in zip(chunks, seeds)]
        return np.concatenate([future.result() for future in futures])


@dataclass(frozen=True)
class AerProgram:
    """One slot circuit and how to simulate it: a picklable function of ``(M, slots)`` angles, so a
    chunk of bindings can run in another process or on another machine (a Dask worker)."""

    circuit: QuantumCircuit
    kind: str  # "states": statevectors; "fidelity": P(0...0); "z": <Z_q> of every wire; "bits": the samples
    n_qubits: int
    options: dict  # AerSimulator options: method or noise_model, device
    shots: int | None = None
    columns: list[int] | None = None  # sampled: our angle columns in the order of circuit.parameters

    def __call__(self, values: np.ndarray, seed: int | None) -> np.ndarray:
        if self.kind == "states":
            from qiskit_aer import AerSimulator

            simulator = AerSimulator(**self.options, seed_simulator=seed)
            result = simulator.run(self.circuit, parameter_binds=[bindings(self.circuit, values)]).result()
            states = np.stack([np.asarray(result.data(i)["statevector"]) for i in range(len(values))])
            return qiskit_states_to_wire_order(states, self.n_qubits)
        from qiskit_aer.primitives import SamplerV2

        sampler = SamplerV2(default_shots=self.shots, seed=seed, options={"backend_options": self.options})
        result = sampler.run([(self.circuit, values[:, self.columns])]).result()[0]
        bits = qiskit_samples_to_wire_order(result.data.meas)  # (M, shots, n)
        if self.kind == "bits":
            return bits
        if self.kind == "fidelity":
            return (~bits.any(-1)).mean(-1, keepdims=True)
        return (1.0 - 2.0 * bits).mean(-2)


def connect_cluster(address: str):
    """A Dask ``distributed.Client`` for the scheduler at ``address`` (e.g. ``tcp://10.0.0.5:8786``)."""
    try:
        from distributed import Client
    except ImportError:
        raise ImportError("a cluster address needs Dask: pip install 'qattn[dask]'") from None
    try:
        return Client(address, timeout="10s")
    except (OSError, TimeoutError) as err:
        raise ValueError(
            f"cannot reach the Dask scheduler at {address!r} ({type(err).__name__}: {str(err)[:160]}); start one with "
            "`dask scheduler` and workers with `dask worker <address>` on the machines that should simulate"
        ) from None


def only_needed(run: Callable[[torch.Tensor], torch.Tensor], angles: torch.Tensor, used: torch.Tensor, outputs: int):
    """``run`` on the rows of ``angles`` that are ``used``; zeros elsewhere, whose scores attention
    masks anyway. Sampled circuits are paid per row, so masked ones are never run."""
    if used.all():
        return run(angles)
    rows = used.nonzero().squeeze(1)
    out = torch.zeros(len(angles), outputs, dtype=angles.dtype, device=angles.device)
    return out if len(rows) == 0 else out.index_put((rows,), run(angles[rows]).to(out.dtype))


def parameter_columns(circuit) -> list[int]:
    """Columns of our (slot-ordered, query slots 'a' before key slots 'b') angle arrays, in the order
    Qiskit lists ``circuit.parameters``."""
    vectors = {p.vector.name: p.vector for p in circuit.parameters}
    names = sorted(vectors)
    sizes = {name: len(vectors[name]) for name in names}  # whole vectors: a slot the transpiler dropped still counts
    offset = {name: sum(sizes[m] for m in names[:i]) for i, name in enumerate(names)}
    return [offset[p.vector.name] + p.index for p in circuit.parameters]


def bindings(circuit, values: np.ndarray) -> dict:
    """``parameter_binds`` for one circuit: each slot parameter gets its column of ``values``."""
    return {p: values[:, p.index] for p in circuit.parameters}
