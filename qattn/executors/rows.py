"""The base of every executor that pays per circuit: sampled Aer, the staged IBM executor.

A kernel call becomes rows of gate angles, one per circuit, and the values each circuit returns
are scattered back into ``(B, H, N, S)`` scores or ``(B, H, N, n)`` features. This class owns all
of it: which rows attention needs (masked pairs cost nothing), the angle rows of each circuit kind
(:mod:`qattn.executors.circuits`), how many shots each row gets, and which estimator computes the
fidelities. A backend implements one method, :meth:`CircuitExecutor.run`: run these bound circuits.

Fidelity estimators:

- ``pairwise``: one compute-uncompute circuit per (query, key) pair, O(N x S) circuits;
- ``randomized``: each query and key state once per shared random local rotation, all N x S
  overlaps from the bitstrings (:mod:`qattn.executors.randomized`), O(N + S) circuits.

Shots per pairwise circuit: a fixed ``shots``, or a :class:`~qattn.executors.budget.ShotBudget`
(a target error on the attention weights): ``exact`` prior, shots allocated from simulated
fidelities; ``adaptive``, a first pass of ``pilot_shots`` per circuit, then more shots only where
that pass says the weights are uncertain (two runs, so two stages on a device).

Gradients: pairwise fidelities and Z features are expectation values, differentiated by the
parameter-shift rule (:class:`~qattn.executors.shift.ShiftRule`, all shifted rows in one more run). Randomized overlaps
are products of two circuits' frequencies; they serve evaluation and hardware runs, not training.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import numpy as np
import torch

from qattn.circuits import FeatureMap

from .base import Executor, per_head, used_pairs, used_tokens
from .budget import ShotBudget, allocate, pilot_prior
from .circuits import slot_angles
from .randomized import overlaps, random_rotations
from .shift import EXPECTATION_RULE, ShiftRule

ESTIMATORS = ("pairwise", "randomized")


class CircuitExecutor(Executor):
    """Fidelities and Z features from circuits run row by row; subclasses implement :meth:`run`."""

    name: ClassVar[str]
    differentiable: ClassVar[bool] = True  # parameter-shift gradients (a device's staged results have none)

    def __init__(
        self, *, shots: int = 4096, estimator: str = "pairwise", rotations: int = 64, budget: ShotBudget | None = None,
        rotation_seed: int | None = 0,
    ) -> None:
        if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
            raise ValueError(f"shots must be a positive integer, got {shots!r}")
        if estimator not in ESTIMATORS:
            raise ValueError(f"unknown fidelity estimator {estimator!r}; valid: {', '.join(ESTIMATORS)}")
        if isinstance(rotations, bool) or not isinstance(rotations, int) or rotations < 1:
            raise ValueError(f"rotations must be a positive integer (random local rotations per token), got {rotations!r}")
        if budget is not None and not isinstance(budget, ShotBudget):
            raise TypeError(f"budget must be a qattn.executors.budget.ShotBudget, got {type(budget).__name__}")
        if budget is not None and estimator != "pairwise":
            raise ValueError("a shot budget allocates pairwise circuits' shots; the randomized estimator takes rotations and shots")
        self.shots, self.estimator, self.rotations, self.budget = shots, estimator, rotations, budget
        self.rotation_seed = rotation_seed
        self.rotation_rng = np.random.default_rng(rotation_seed)
        self.exact = None  # an exact executor, for the exact prior and for stand-ins; made on first use

    @abstractmethod
    def run(self, kind: str, fmap: FeatureMap, angles: np.ndarray, shots: np.ndarray) -> np.ndarray | None:
        """Run the ``kind`` circuit of ``fmap`` (:func:`qattn.executors.circuits.fmap_circuit`) on each
        ``(M, slots)`` angle row with ``shots[i]`` shots (rows arrive sorted by shots). Returns
        ``fidelity`` ``(M, 1)``, ``z`` ``(M, n)`` or ``randomized`` bits ``(M, shots, n)``; or None
        when exact simulation is to answer the whole call instead (a planning stand-in)."""

    # -- running rows ------------------------------------------------------------------------------

    def evaluate(self, kind: str, fmap: FeatureMap, angles: torch.Tensor, shots: np.ndarray) -> torch.Tensor | None:
        """Values of the rows, differentiable by the parameter-shift rule when gradients are needed."""
        def run_sorted(values: np.ndarray) -> np.ndarray | None:
            tiled = np.tile(shots, len(values) // max(len(shots), 1))  # shifted copies of the rows, in blocks
            order = np.argsort(tiled, kind="stable")
            out = self.run(kind, fmap, values[order], tiled[order])
            if out is None:
                return None
            restored = np.empty_like(out)
            restored[order] = out
            return restored

        if len(angles) == 0:
            return angles.new_zeros(0, fmap.n_qubits if kind == "z" else 1)
        if self.differentiable and torch.is_grad_enabled() and angles.requires_grad and kind in ("fidelity", "z"):
            return ShiftRule.apply(angles, run_sorted, EXPECTATION_RULE, angles.dtype)
        out = run_sorted(angles.detach().cpu().double().numpy())
        return None if out is None else torch.as_tensor(out, dtype=angles.dtype, device=angles.device)

    def exact_executor(self) -> Executor:
        if self.exact is None:
            from .pennylane import PennyLaneExecutor

            self.exact = PennyLaneExecutor()
        return self.exact

    # -- fidelities --------------------------------------------------------------------------------

    def observe(self, fmap: FeatureMap, inputs: tuple, scale: torch.Tensor | None, needed: torch.Tensor | None) -> None:
        """Called with every fidelity kernel call's inputs; a planner records them (see
        :mod:`qattn.executors.forecast`). Does nothing here."""

    def fidelities(self, fmap, x_q, w_q, x_k, w_k, scale=None, needed=None):
        self.observe(fmap, (x_q, w_q, x_k, w_k), scale, needed)
        a_q, a_k = slot_angles(fmap, x_q, w_q), slot_angles(fmap, x_k, w_k)  # (B, H, N, G), (B, H, S, G)
        shape = (*a_q.shape[:3], a_k.shape[2])
        if self.estimator == "randomized":
            fid = self.randomized(fmap, a_q, a_k, needed, shape)
        else:
            fid = self.pairwise(fmap, (x_q, w_q, x_k, w_k), a_q, a_k, scale, needed, shape)
        if fid is None:  # a stand-in answers: exact simulation of the whole call
            return self.exact_executor().fidelities(fmap, x_q, w_q, x_k, w_k, scale)
        return per_head(scale, fid)

    def pairwise(self, fmap, inputs, a_q, a_k, scale, needed, shape) -> torch.Tensor | None:
        """Compute-uncompute fidelities of the needed pairs, scattered into ``(B, H, N, S)``."""
        rows = used_pairs(needed, shape).nonzero().squeeze(1)
        b, h, n, s = np.unravel_index(rows.numpy(), shape)
        angles = torch.cat([a_q[b, h, n], a_k[b, h, s]], -1)
        if self.budget is None:
            values = self.evaluate("fidelity", fmap, angles, np.full(len(rows), self.shots))
        else:
            values = self.budgeted(fmap, inputs, angles, rows, scale, needed, shape)
        if values is None:
            return None
        return scatter(values.reshape(-1).clamp(0.0, 1.0), rows, shape)  # estimates may stray outside [0, 1]

    def budgeted(self, fmap, inputs, angles, rows, scale, needed, shape) -> torch.Tensor | None:
        """Pairwise values with shots from the budget: allocated on exact fidelities, or on a pilot pass
        whose shots the second pass adds to (the two estimates combined shot-weighted)."""
        budget = self.budget
        mask = used_pairs(needed, shape).view(-1, shape[-1]).numpy()  # (B*H*N, S)
        tau = np.ones(shape[1]) if scale is None else scale.detach().double().cpu().numpy()
        row_scale = np.broadcast_to(tau[None, :, None], shape[:3]).reshape(-1)
        pilot = None
        if budget.prior == "adaptive":
            pilot = self.evaluate("fidelity", fmap, angles, np.full(len(rows), budget.pilot_shots))
        if pilot is None:  # the exact prior (a stand-in's pilot is planned on exact fidelities too)
            with torch.no_grad():
                prior = self.exact_executor().fidelities(fmap, *inputs).double().cpu().numpy().reshape(mask.shape)
        else:
            prior = np.zeros(mask.size)
            prior[rows.numpy()] = pilot_prior(pilot.detach().double().cpu().numpy().reshape(-1), budget.pilot_shots)
            prior = prior.reshape(mask.shape)
        shots = allocate(prior, row_scale, mask, budget).reshape(-1)[rows.numpy()]
        if budget.prior == "exact":
            return self.evaluate("fidelity", fmap, angles, shots)
        extra = np.maximum(shots - budget.pilot_shots, 0)
        more = extra.nonzero()[0]
        second = self.evaluate("fidelity", fmap, angles[more], extra[more])
        if pilot is None or second is None:
            return None
        combined = pilot.reshape(-1) * budget.pilot_shots
        combined = combined.index_add(0, torch.as_tensor(more), second.reshape(-1) * torch.as_tensor(extra[more], dtype=second.dtype))
        return combined / torch.as_tensor(np.maximum(shots, budget.pilot_shots), dtype=combined.dtype)

    def randomized(self, fmap, a_q, a_k, needed, shape) -> torch.Tensor | None:
        """Every needed query and key state once per shared random rotation; overlaps classically."""
        if torch.is_grad_enabled() and (a_q.requires_grad or a_k.requires_grad):
            raise ValueError(
                "randomized-measurement fidelities have no gradient here: use them to evaluate (under torch.no_grad()) "
                "or on hardware, and train with the pairwise estimator or an exact executor"
            )
        batch, heads, tokens, keys = shape
        used = used_tokens(needed, shape[:3], keys).numpy()
        flat = torch.cat([a_q.reshape(-1, a_q.shape[-1]), a_k.reshape(-1, a_k.shape[-1])]).detach()
        chosen = used.nonzero()[0]
        rotations = random_rotations(fmap.n_qubits, self.rotations, self.rotation_rng)  # shared by every token
        token_rows = flat[chosen].double().cpu().numpy()
        angles = np.concatenate([np.repeat(token_rows, self.rotations, 0), np.tile(rotations, (len(chosen), 1))], 1)
        bits = self.run("randomized", fmap, angles, np.full(len(angles), self.shots))
        if bits is None:
            return None
        bits = np.asarray(bits).reshape(len(chosen), self.rotations, self.shots, fmap.n_qubits)
        where = np.full(len(used), -1)
        where[chosen] = np.arange(len(chosen))
        query_at = where[: batch * heads * tokens].reshape(batch, heads, tokens)
        key_at = where[batch * heads * tokens :].reshape(batch, heads, keys)
        fid = np.zeros(shape)
        for b in range(batch):
            for h in range(heads):
                qi, ki = query_at[b, h], key_at[b, h]
                qs, ks = (qi >= 0).nonzero()[0], (ki >= 0).nonzero()[0]
                if len(qs) and len(ks):
                    fid[b, h][np.ix_(qs, ks)] = overlaps(bits[qi[qs]], bits[ki[ks]])[0]
        if needed is not None:
            fid = np.where(needed.expand(shape).numpy(), fid, 0.0)
        return torch.as_tensor(fid, dtype=a_q.dtype, device=a_q.device)

    # -- Z features --------------------------------------------------------------------------------

    def z_expectations(self, fmap, x, w):
        angles = slot_angles(fmap, x, w)
        used = torch.ones(angles[..., 0].numel(), dtype=torch.bool)
        z = self.z_features(fmap, [angles], used)
        return self.exact_executor().z_expectations(fmap, x, w) if z is None else z[0]

    def z_expectation_pair(self, fmap, x_q, w_q, x_k, w_k, needed=None):
        a_q, a_k = slot_angles(fmap, x_q, w_q), slot_angles(fmap, x_k, w_k)
        used = used_tokens(needed, a_q.shape[:3], a_k.shape[2])
        z = self.z_features(fmap, [a_q, a_k], used)
        return self.exact_executor().z_expectation_pair(fmap, x_q, w_q, x_k, w_k) if z is None else tuple(z)

    def z_features(self, fmap, sets, used) -> list[torch.Tensor] | None:
        """``<Z>`` features of several ``(B, H, N, G)`` angle sets in one run, for the ``used`` tokens
        of their concatenation (zeros elsewhere: attention masks them)."""
        flat = torch.cat([a.reshape(-1, a.shape[-1]) for a in sets])
        rows = used.nonzero().squeeze(1)
        values = self.evaluate("z", fmap, flat[rows], np.full(len(rows), self.shots))
        if values is None:
            return None
        z = flat.new_zeros(len(flat), fmap.n_qubits).index_put((rows,), values.clamp(-1.0, 1.0).to(flat.dtype))
        return [part.view(*a.shape[:3], -1) for part, a in zip(z.split([a[..., 0].numel() for a in sets]), sets)]


def scatter(values: torch.Tensor, rows: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """``values`` at flat positions ``rows`` of a zero tensor of ``shape`` (differentiable)."""
    out = values.new_zeros(int(np.prod(shape)))
    return out.index_put((rows,), values).view(shape)
