"""Parameter-shift gradients for executors that run circuits: outputs at given gate angles, differentiated
by evaluating the same circuits at shifted angles (every shifted row of a batch in one more run).

Every slot of a slot circuit is a rotation ``exp(-i theta P / 2)`` with ``P^2 = I``, which gives exact rules:

- states (exact simulators): ``d psi / d theta = psi(theta + pi) / 2`` (:data:`STATE_RULE`);
- probabilities and expectation values (sampled): ``dE/dtheta = (E(theta + pi/2) - E(theta - pi/2)) / 2``
  (:data:`EXPECTATION_RULE`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

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
