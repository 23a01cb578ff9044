"""``qaoa``: each QUBO as an Ising Hamiltonian, minimised by a QAOA circuit; for small problems.

Per problem, on its free variables only (``m`` of them; a held variable is 0 and takes no qubit):

1. **Ising form.** With ``x_i = (1 - z_i) / 2`` (``x_i = 0`` is ``|0>``, where ``Z_i`` has eigenvalue
   ``z_i = +1``) and ``Q`` symmetric::

       x^T Q x = offset + sum_i h_i z_i + sum_{i<j} J_ij z_i z_j
       h_i = -(1/2) sum_j Q_ij      J_ij = Q_ij / 2 (i != j)      offset = (sum_ij Q_ij + sum_i Q_ii) / 4

2. **Angles.** ``p`` layers of :class:`qattn.circuits.QAOA` for ``H / s`` (``s`` the largest
   ``|h_i|``, ``|J_ij|``, so one angle scale suits every problem), optimised by
   ``scipy.optimize.minimize`` on the exact expectation ``<H>`` (an Aer statevector per evaluation),
   from a linear ramp: ``gamma_l = t_l dt``, ``beta_l = -(1 - t_l) dt`` with ``t_l = (l + 1/2) / p``,
   a Trotterised adiabatic path from ``|+...+>`` (the ground state of ``-sum_i X_i``) to ``H``'s.
3. **Solution.** The lowest-energy bitstring among ``shots`` samples of the optimised circuit:
   ``mode="exact"`` draws them from the exact output distribution, seeded per problem from ``seed`` and
   its free-variable count (the same answer whatever shares its batch); ``mode="sampled"`` takes
   Aer's shots (seeded; with a fake device's noise model when ``noise`` names one), or those of the
   ``sampler`` it is handed (:class:`BitSampler`): an IBM device, for instance
   (:class:`qattn.runtime.sampling.DeviceSampler`, which also prices the work before anything is
   sent), one sampling circuit per QUBO, the angles still optimised on the simulator (an optimisation
   loop on hardware would cost a job per evaluation). The solver never opens a device itself.

Up to 20 variables per problem: each evaluation simulates ``2^m`` amplitudes (16 MiB at 20), about
``maxiter`` evaluations per problem; beyond that use ``sa`` or ``batched``. With ``shots`` well above
``2^m`` the best of the samples is nearly always the optimum whatever the angles; QAOA's angles matter
when ``2^m`` outgrows the shots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import ClassVar, Protocol

import numpy as np
import torch
from scipy.optimize import minimize

from qattn.circuits import QAOA, Gate
from qattn.circuits.qubit_order import z_signs
from qattn.executors import AerExecutor, SampledAerExecutor
from qattn.solvers.base import QuboSolver, problem_key

OPTIMIZERS = ("COBYLA", "COBYQA", "Nelder-Mead", "Powell", "L-BFGS-B", "BFGS", "SLSQP")  # scipy methods taking maxiter
MODES = ("exact", "sampled")
RAMP_STEP = 0.75  # dt of the linear-ramp start, for H normalised to unit largest coefficient


@dataclass(frozen=True)
class Ising:
    """``E(z) = offset + h . z + sum_{i<j} J_ij z_i z_j`` over spins ``z`` in ``{+1, -1}^n``."""

    h: np.ndarray  # (n,)
    J: np.ndarray  # (n, n), symmetric, zero diagonal
    offset: float

    @property
    def n(self) -> int:
        return len(self.h)

    @property
    def coefficients(self) -> np.ndarray:
        """``h``, then ``J``'s upper triangle in ``combinations`` order: the inputs of :class:`QAOA`."""
        return np.concatenate([self.h, [self.J[i, j] for i, j in combinations(range(self.n), 2)]])

    @property
    def scale(self) -> float:
        """The largest coefficient's magnitude (0 for a constant)."""
        return float(np.abs(self.coefficients).max(initial=0.0))

    def scaled(self, factor: float) -> Ising:
        return Ising(self.h * factor, self.J * factor, self.offset * factor)

    def energy(self, z: np.ndarray) -> np.ndarray:
        """``(..., n)`` spins -> ``(...)`` energies."""
        return self.offset + z @ self.h + np.einsum("...i,ij,...j->...", z, self.J, z) / 2

    def spectrum(self) -> np.ndarray:
        """``(2^n,)`` energies of the basis states in wire order (wire 0 the most significant bit)."""
        return self.energy(z_signs(self.n))


def qubo_to_ising(Q: np.ndarray) -> Ising:
    """The Ising form of a symmetric QUBO ``(n, n)`` (module docstring), same energies at ``x = (1 - z) / 2``."""
    J = Q / 2
    np.fill_diagonal(J, 0.0)
    return Ising(-Q.sum(1) / 2, J, float(Q.sum() + np.trace(Q)) / 4)


def linear_ramp(p: int, step: float = RAMP_STEP) -> np.ndarray:
    """``(p, 2)`` starting angles ``(gamma_l, beta_l)`` (module docstring)."""
    t = (np.arange(p) + 0.5) / p
    return np.stack([t * step, -(1 - t) * step], 1)


def index_bits(index: np.ndarray, n: int) -> np.ndarray:
    """Basis-state indices ``(...)`` -> bits ``(..., n)`` in wire order (wire 0 the most significant)."""
    return (index[..., None] >> (n - 1 - np.arange(n))) & 1


def check_integer(option: str, value: object, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"in {low}..{high}"
        raise ValueError(f"qaoa solver: {option} must be an integer {bounds}, got {value!r}")


def circuit_problems(Q: torch.Tensor, free: torch.Tensor) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """``(problem, free variables, QUBO on them)`` of the problems that need a circuit: those with free
    variables and a non-constant energy (the rest keep x = 0, as good as any assignment)."""
    Q, free = Q.detach().cpu().double().numpy(), free.cpu().numpy()
    problems = []
    for i in range(len(Q)):
        variables = np.flatnonzero(free[i])
        sub = Q[i][np.ix_(variables, variables)]
        if len(variables) and np.abs(sub).max() > 0:
            problems.append((i, variables, sub))
    return problems


@dataclass
class QaoaRun:
    """One problem's optimisation: ``angles`` ``(p, 2)`` for ``H / scale``, ``<H>`` there (QUBO units)."""

    problem: int
    variables: int
    scale: float
    angles: np.ndarray
    expectation: float
    evaluations: int


@dataclass
class SamplingGroup:
    """The sampling circuits of one free-variable count: one row of gate angles per problem."""

    variables: int
    problems: list[int] = field(default_factory=list)
    free: list[np.ndarray] = field(default_factory=list)  # each problem's free variables
    qubos: list[np.ndarray] = field(default_factory=list)  # each problem's QUBO on them
    rows: list[np.ndarray] = field(default_factory=list)

    def add(self, problem: int, free: np.ndarray, qubo: np.ndarray, slots: np.ndarray) -> None:
        self.problems.append(problem)
        self.free.append(free)
        self.qubos.append(qubo)
        self.rows.append(slots)

    @property
    def slots(self) -> np.ndarray:
        """``(M, slots)`` gate angles, one circuit per problem."""
        return np.stack(self.rows)

    def best(self, bits: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """``(problem, free variables, lowest-energy sample)`` from the ``(M, shots, m)`` samples."""
        energies = [np.einsum("si,ij,sj->s", b, q, b) for b, q in zip(bits, self.qubos)]
        return [(i, v, b[np.argmin(e)]) for i, v, b, e in zip(self.problems, self.free, bits, energies)]


class BitSampler(Protocol):
    """What samples a ``qaoa`` solver's circuits when it is handed one (``sampler=``): sampled Aer
    (:class:`~qattn.executors.aer_sampled.SampledAerExecutor`) or a device
    (:class:`qattn.runtime.sampling.DeviceSampler`)."""

    def check_qubits(self, n_qubits: int) -> None:
        """Raise if circuits of ``n_qubits`` qubits cannot run here."""

    def bits(self, gates: list[Gate], n_qubits: int, slots: np.ndarray, shots: int) -> np.ndarray:
        """``(M, shots, n)`` bitstrings (wire order) of the slot circuit ``gates`` at each row of ``slots``."""


class QaoaSolver(QuboSolver):
    """QAOA on each QUBO's free variables (module docstring). Keyword-only and seeded: the start, the
    optimiser and every sample are deterministic for a given ``seed``."""

    name: ClassVar[str] = "qaoa"
    max_variables: ClassVar[int] = 20  # the statevector each angle evaluation simulates

    def __init__(
        self, *, seed: int = 0, p: int = 1, optimizer: str = "COBYLA", maxiter: int = 100, shots: int = 1024,
        mode: str = "exact", noise: str | None = None, sampler: BitSampler | None = None,
    ) -> None:
        super().__init__(seed=seed)
        for option, value in (("p", p), ("maxiter", maxiter), ("shots", shots)):
            check_integer(option, value, 1)
        methods = {m.lower(): m for m in OPTIMIZERS}
        if not isinstance(optimizer, str) or optimizer.lower() not in methods:
            raise ValueError(f"qaoa solver: unknown optimizer {optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
        if mode not in MODES:
            raise ValueError(f"qaoa solver: mode must be one of {', '.join(MODES)}, got {mode!r}")
        if noise is not None and sampler is not None:
            raise ValueError("qaoa solver: give noise (an Aer noise model) or a sampler (e.g. a device), not both")
        if (noise is not None or sampler is not None) and mode != "sampled":
            raise ValueError(f"qaoa solver: {'noise' if noise else 'a sampler'} samples with shots; set mode='sampled'")
        self.p, self.optimizer, self.maxiter = p, methods[optimizer.lower()], maxiter
        self.shots, self.mode = shots, mode
        self.noise = noise
        self.family = QAOA(layers=p)
        self.simulator = AerExecutor()  # exact statevectors for the angle optimisation
        if mode == "sampled" and sampler is None:  # Aer's shots
            sampler = SampledAerExecutor(shots=shots, noise=noise, seed=seed, seed_transpiler=seed)
        self.sampler = sampler  # None: samples drawn from the exact distribution
        self.runs: list[QaoaRun] = []  # the last solve's optimisations, one per problem with free variables
        self._templates: dict[int, list[Gate]] = {}

    def __repr__(self) -> str:
        where = f", noise={self.noise!r}" if self.noise else f", sampler={self.sampler!r}" if self.sampler else ""
        return (f"QaoaSolver(seed={self.seed}, p={self.p}, optimizer={self.optimizer!r}, maxiter={self.maxiter}, "
                f"shots={self.shots}, mode={self.mode!r}{where})")

    # -- one problem's circuit -----------------------------------------------------------------

    def template(self, n: int) -> list[Gate]:
        """The circuit's gates on ``n`` qubits (angles are slots bound per problem)."""
        if n not in self._templates:
            self._templates[n] = list(self.family.gates(n, np.zeros(self.family.input_size(n)), np.zeros((self.p, 2))))
        return self._templates[n]

    def slot_values(self, ising: Ising, angles: np.ndarray) -> np.ndarray:
        """``(slots,)`` gate angles of the circuit for ``ising`` at ``angles`` ``(p, 2)``."""
        gates = self.family.gates(ising.n, ising.coefficients, np.asarray(angles, dtype=float).reshape(self.p, 2))
        return np.array([g.angle for g in gates if g.angle is not None], dtype=float)

    def probabilities(self, ising: Ising, angles: np.ndarray) -> np.ndarray:
        """``(2^n,)`` exact output probabilities (wire order) of the QAOA circuit for ``ising`` at ``angles``."""
        return np.abs(self.states(ising.n, self.slot_values(ising, angles)[None])[0]) ** 2

    def states(self, n: int, slots: np.ndarray) -> np.ndarray:
        """``(M, slots)`` gate angles -> ``(M, 2^n)`` exact statevectors (wire order), one Aer call."""
        return self.simulator.gate_program(self.template(n), n, "states")(slots)

    def expectation(self, ising: Ising, angles: np.ndarray) -> float:
        """``<H>`` of ``ising`` in the QAOA state at ``angles``, exactly."""
        return float(self.probabilities(ising, angles) @ ising.spectrum())

    def optimise(self, ising: Ising) -> tuple[np.ndarray, float, int]:
        """Angles ``(p, 2)`` minimising ``<ising>`` from the linear ramp; ``<ising>`` there; evaluations."""
        spectrum = ising.spectrum()

        def energy(angles: np.ndarray) -> float:
            return float(self.probabilities(ising, angles) @ spectrum)

        result = minimize(energy, linear_ramp(self.p).ravel(), method=self.optimizer, options={"maxiter": self.maxiter})
        return result.x.reshape(self.p, 2), float(result.fun), int(result.nfev)

    # -- the batch -------------------------------------------------------------------------------

    def _solve(self, Q, free):
        x = np.zeros(free.shape)
        for group in self.prepare(Q, free):
            rngs = [np.random.default_rng(problem_key(self.seed, np.ones(len(v), dtype=bool))) for v in group.free]
            bits = self.samples(group.variables, group.slots, rngs)  # (M, shots, m)
            for i, variables, best in group.best(bits):
                x[i, variables] = best
        return torch.as_tensor(x)

    def prepare(self, Q: torch.Tensor, free: torch.Tensor) -> list[SamplingGroup]:
        """The sampling circuits of a batch, grouped by free-variable count, angles optimised (see
        :attr:`runs`); what a device is then asked to sample. Device and noise-model sizes are checked first."""
        problems = circuit_problems(Q, free)
        for m in sorted({len(variables) for _, variables, _ in problems}):
            if self.sampler is not None:
                self.sampler.check_qubits(m)  # a device, or a noise model's, may have fewer qubits
        groups: dict[int, SamplingGroup] = {}
        self.runs = []
        for i, variables, sub in problems:
            ising = qubo_to_ising(sub)
            scaled = ising.scaled(1.0 / ising.scale)
            angles, value, evaluations = self.optimise(scaled)
            self.runs.append(QaoaRun(i, len(variables), ising.scale, angles, value * ising.scale, evaluations))
            group = groups.setdefault(len(variables), SamplingGroup(len(variables)))
            group.add(i, variables, sub, self.slot_values(scaled, angles))
        return [groups[m] for m in sorted(groups)]

    def samples(self, m: int, slots: np.ndarray, rngs: list[np.random.Generator]) -> np.ndarray:
        """``shots`` bitstrings ``(M, shots, m)`` (wire order, float) of the circuits at ``slots`` ``(M, slots)``;
        exact draws come from each circuit's own generator of ``rngs``."""
        if self.sampler is not None:
            bits = self.sampler.bits(self.template(m), m, slots, self.shots)
        else:
            probabilities = np.abs(self.states(m, slots)) ** 2
            drawn = [rng.choice(2**m, size=self.shots, p=row / row.sum()) for rng, row in zip(rngs, probabilities)]
            bits = index_bits(np.stack(drawn), m)
        return bits.astype(float)

    def problems(self, Q: torch.Tensor, free: torch.Tensor | None = None) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """``(problem, free variables, QUBO on them)`` of the QUBOs this solver would run a circuit for
        (checked as :meth:`solve` checks them); what a sampler prices before anything runs."""
        return circuit_problems(*self.check(Q, free))
