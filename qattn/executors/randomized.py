"""Overlaps ``|<a|b>|^2`` from randomized local measurements, for all pairs of two sets of states.

Each state is prepared in its own circuit, a random local unitary ``U = U_0 ⊗ ... ⊗ U_{n-1}`` is
appended and every wire is measured in the Z basis. With the SAME ``U`` used for both states, the
"cross-platform" estimator of Elben et al., PRL 124, 010504 (2020) (arXiv:1906.06216) reads

    Tr(rho_a rho_b) = 2^n E_U [ sum_{s,s'} (-2)^{-D(s,s')} P_a,U(s) P_b,U(s') ],

``D`` the Hamming distance, ``P_x,U`` the outcome distribution of state ``x`` under ``U``. In matrix
form the inner sum is ``P_a X P_b^T`` with ``X = ⊗_q [[2, -1], [-1, 2]]``
(so ``X[s, s'] = 2^n (-2)^{-D(s, s')}``). Each ``U_q`` only has to randomise the measured Bloch
direction uniformly (a 2-design for this purpose); the same local inversion underlies classical
shadows (Huang, Kueng, Preskill, Nat. Phys. 16, 1050 (2020), arXiv:2002.08953). Replacing ``P`` by
empirical histograms of independent circuits keeps the estimator unbiased for any number of shots
``M >= 1`` per circuit and rotations ``K >= 1``.

Why it matters: ``S`` queries against ``S`` keys take ``S^2`` compute-uncompute circuits, but only
``2S`` circuits per rotation here; the price is a larger variance per shot (compare the two at equal
total shots with ``benchmarks/fidelity_estimators.py``).

Conventions: wire 0 is the most significant bit of a basis-state index; bitstrings are arrays
``(..., n)`` of bool in wire order. A rotation is a row of ``2n`` angles
``[phi_0, theta_0, phi_1, theta_1, ...]``, the slot order of :func:`rotation_gates`, and
``U_q = RY(theta_q) RZ(phi_q)`` (RZ first). All functions are plain numpy; :func:`sample_bits`
draws exact outcome distributions and stands in for a device.
"""

from __future__ import annotations

import numpy as np

from qattn.circuits import Gate

_BUDGET = 1 << 23  # elements of the largest temporary array (~64 MiB of float64)


def rotation_gates(n_qubits: int) -> list[Gate]:
    """The measurement-basis rotation to append to a circuit: RZ then RY on each wire, angles as slots.

    The angles are placeholders; executors bind slot angles in gate order, so a row of
    :func:`random_rotations` (``[phi_0, theta_0, phi_1, theta_1, ...]``) fills them in.
    """
    return [Gate(name, (q,), 0.0) for q in range(n_qubits) for name in ("RZ", "RY")]


def random_rotations(n_qubits: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``(count, 2n)`` angles: ``phi`` uniform in ``[0, 2pi)`` and ``cos(theta)`` uniform in ``[-1, 1]``.

    The measured direction of each wire is then uniform on the Bloch sphere.
    """
    phi = rng.uniform(0.0, 2.0 * np.pi, size=(count, n_qubits))
    theta = np.arccos(rng.uniform(-1.0, 1.0, size=(count, n_qubits)))
    angles = np.empty((count, 2 * n_qubits))
    angles[:, 0::2], angles[:, 1::2] = phi, theta
    return angles


def _qubit_unitaries(rotations: np.ndarray) -> np.ndarray:
    """``(K, 2n)`` angles -> ``(K, n, 2, 2)`` single-wire unitaries ``RY(theta) @ RZ(phi)``."""
    rotations = np.asarray(rotations, dtype=float)
    phi, theta = rotations[..., 0::2], rotations[..., 1::2]
    c, s = np.cos(theta / 2), np.sin(theta / 2)
    e = np.exp(-0.5j * phi)  # RZ(phi) = diag(e, conj(e))
    return np.stack([np.stack([c * e, -s * e.conj()], -1), np.stack([s * e, c * e.conj()], -1)], -2)


def rotation_unitary(angles_row: np.ndarray, n_qubits: int) -> np.ndarray:
    """The ``(2^n, 2^n)`` local unitary of one rotation row, in wire order (wire 0 leftmost in the kron)."""
    angles_row = np.asarray(angles_row, dtype=float)
    if angles_row.shape != (2 * n_qubits,):
        raise ValueError(f"expected {2 * n_qubits} angles, got shape {angles_row.shape}")
    unitary = np.ones((1, 1), dtype=complex)
    for u in _qubit_unitaries(angles_row[None])[0]:
        unitary = np.kron(unitary, u)
    return unitary


def _n_qubits(dim: int) -> int:
    n = dim.bit_length() - 1
    if dim != 1 << n:
        raise ValueError(f"state dimension {dim} is not a power of two")
    return n


def _rotated_probabilities(states: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """``|U_k psi_a|^2`` as ``(A, K, 2^n)``, applying ``U_k`` one wire at a time (no dense unitaries)."""
    states = np.asarray(states, dtype=complex)
    (count, dim), n = states.shape, _n_qubits(states.shape[1])
    unitaries = _qubit_unitaries(rotations)  # (K, n, 2, 2)
    k = len(unitaries)
    amps = np.broadcast_to(states.reshape(count, 1, *[2] * n), (count, k, *[2] * n))
    for q in range(n):
        moved = np.moveaxis(amps, 2 + q, -1)
        amps = np.moveaxis(np.einsum("ak...j,kij->ak...i", moved, unitaries[:, q]), -1, 2 + q)
    return (amps.real**2 + amps.imag**2).reshape(count, k, dim)


def histograms(bits: np.ndarray) -> np.ndarray:
    """``(..., M, n)`` bitstrings -> ``(..., 2^n)`` empirical probabilities (wire 0 most significant)."""
    bits = np.asarray(bits, dtype=bool)
    *lead, shots, n = bits.shape
    if shots < 1:
        raise ValueError("histograms need at least one shot")
    bits = bits.reshape(-1, shots, n)
    rows = len(bits)
    index = np.repeat(np.arange(rows, dtype=np.int64) << n, shots).reshape(rows, shots)  # row offsets
    for q in range(n):
        index += bits[..., q].astype(np.int64) << (n - 1 - q)
    counts = np.bincount(index.ravel(), minlength=rows << n)
    return (counts / shots).reshape(*lead, 1 << n)


def apply_x(p: np.ndarray) -> np.ndarray:
    """``p X`` along the last axis (``2^n`` outcomes): the estimator's ``X = ⊗_q [[2, -1], [-1, 2]]``, never dense."""
    return _apply_local(p, _n_qubits(p.shape[-1]), 2.0, -1.0)


def _apply_local(p: np.ndarray, n: int, diagonal: float, off: float) -> np.ndarray:
    """``p`` times ``⊗_q [[diagonal, off], [off, diagonal]]`` along the last axis, one wire at a time."""
    lead = p.shape[:-1]
    t = p.reshape(*lead, *[2] * n)
    for axis in range(len(lead), len(lead) + n):
        t = diagonal * t + off * np.flip(t, axis)
    return t.reshape(p.shape)


def overlaps(bits_a: np.ndarray, bits_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Estimates of ``|<a|b>|^2`` ``(A, B)`` and their standard errors ``(A, B)``.

    ``bits_a`` is ``(A, K, M, n)``, ``bits_b`` ``(B, K, M', n)``: the same ``K`` rotations in the same
    order; ``M`` and ``M'`` may differ. The estimate is the mean over rotations of ``P̂_a,k X P̂_b,k^T``;
    its standard error is the spread over rotations (ddof=1) over ``sqrt(K)``, so it covers both shot
    and rotation noise. With ``K == 1`` the standard error is reported as 0 (not estimable).

    ``X`` is applied one wire at a time, never as a dense matrix; rotations and rows of A are taken in
    chunks of about ``_BUDGET`` elements, their means and squared deviations merged exactly (Chan, Golub,
    LeVeque's pairwise update), so no ``(A, B, K)`` array is built.
    """
    bits_a, bits_b = np.asarray(bits_a, dtype=bool), np.asarray(bits_b, dtype=bool)
    if bits_a.ndim != 4 or bits_b.ndim != 4:
        raise ValueError("bits must be (states, rotations, shots, qubits)")
    if bits_a.shape[1] != bits_b.shape[1] or bits_a.shape[3] != bits_b.shape[3]:
        raise ValueError(f"rotations or qubits differ: {bits_a.shape} vs {bits_b.shape}")
    (a_count, k, _, n), b_count = bits_a.shape, len(bits_b)
    k_step = max(1, _BUDGET // ((a_count + b_count) << n))  # rotations whose histograms are held at once
    a_step = max(1, _BUDGET // (b_count * min(k, k_step)))  # rows of A per (rotations, rows, B) block
    means, squares = np.zeros((a_count, b_count)), np.zeros((a_count, b_count))
    for k0 in range(0, k, k_step):
        p_a = histograms(bits_a[:, k0 : k0 + k_step]).transpose(1, 0, 2)  # (k', A, D)
        xp_b = _apply_local(histograms(bits_b[:, k0 : k0 + k_step]), n, 2.0, -1.0).transpose(1, 2, 0)  # (k', D, B)
        seen, new = k0, len(p_a)
        for a0 in range(0, a_count, a_step):
            block = p_a[:, a0 : a0 + a_step] @ xp_b  # one estimate per rotation
            mean = block.mean(axis=0)
            delta = mean - means[a0 : a0 + a_step]  # merge with the rotations seen so far (Chan et al.)
            means[a0 : a0 + a_step] += delta * (new / (seen + new))
            squares[a0 : a0 + a_step] += ((block - mean) ** 2).sum(axis=0) + delta**2 * (seen * new / (seen + new))
    errors = np.sqrt(squares / ((k - 1) * k)) if k > 1 else squares
    return means, errors


def sample_bits(states: np.ndarray, rotations: np.ndarray, shots: int, rng: np.random.Generator) -> np.ndarray:
    """Simulated measurements: ``(A, K, shots, n)`` bits drawn from ``|U_k psi_a|^2`` exactly.

    ``states`` is ``(A, 2^n)`` in wire order, ``rotations`` ``(K, 2n)``. Sampling is inverse-CDF by
    binary search, which reads the bits off wire by wire (most significant first).
    """
    states = np.asarray(states, dtype=complex)
    rotations = np.atleast_2d(np.asarray(rotations, dtype=float))
    count, dim = states.shape
    n, k = _n_qubits(dim), len(rotations)
    if rotations.shape[1] != 2 * n:
        raise ValueError(f"rotations need {2 * n} angles for {n} qubits, got {rotations.shape[1]}")
    bits = np.empty((count, k, shots, n), dtype=bool)
    step = max(1, _BUDGET // (4 * max(1, count * max(dim, shots))))  # rotations per chunk
    for start in range(0, k, step):
        cdf = np.cumsum(_rotated_probabilities(states, rotations[start : start + step]), axis=-1)
        u = rng.random((*cdf.shape[:2], shots))
        low = np.zeros(u.shape, dtype=np.int64)
        for q in range(n):
            half = dim >> (q + 1)
            upper = np.take_along_axis(cdf, low + (half - 1), axis=-1) <= u  # outcome past the lower half
            bits[:, start : start + step, :, q] = upper
            low += upper * half
    return bits


def overlap_variance(
    states_a: np.ndarray, states_b: np.ndarray, rotations: np.ndarray, shots: int | tuple[int, int]
) -> np.ndarray:
    """Exact variance ``(A, B)`` of :func:`overlaps`' estimate over shot noise, given these rotations.

    ``shots`` is ``M`` for both sets or ``(M_a, M_b)``. Per rotation, with ``p`` the exact
    distributions, ``E[p̂ p̂^T] = p p^T + (diag p - p p^T) / M`` and the two histograms are independent,
    so ``Var_k = tr(E_a X E_b X) - (p_a X p_b)^2``; the estimate's variance is ``sum_k Var_k / K^2``.
    The variance from drawing the rotations themselves is not included. Builds ``(K, A, B)`` arrays:
    meant for modest sizes (tests, error planning).
    """
    m_a, m_b = (shots, shots) if np.isscalar(shots) else shots
    p_a = _rotated_probabilities(states_a, rotations).transpose(1, 0, 2)  # (K, A, D)
    p_b = _rotated_probabilities(states_b, rotations).transpose(1, 2, 0)  # (K, D, B)
    n = _n_qubits(p_a.shape[2])
    xp_a = _apply_local(p_a, n, 2.0, -1.0)
    xp_b = _apply_local(p_b.transpose(0, 2, 1), n, 2.0, -1.0).transpose(0, 2, 1)
    mean = p_a @ xp_b  # (K, A, B): p_a X p_b
    cross_a = (xp_a**2) @ p_b  # p_a X diag(p_b) X p_a
    cross_b = p_a @ (xp_b**2)  # p_b X diag(p_a) X p_b
    diagonal = _apply_local(p_a, n, 4.0, 1.0) @ p_b  # diag(p_a) X diag(p_b) X, traced: X∘X = ⊗[[4,1],[1,4]]
    second = (
        (1 - 1 / m_a) * (1 - 1 / m_b) * mean**2
        + (1 - 1 / m_a) / m_b * cross_a
        + (1 - 1 / m_b) / m_a * cross_b
        + diagonal / (m_a * m_b)
    )
    return np.maximum(second - mean**2, 0.0).sum(axis=0) / len(mean) ** 2
