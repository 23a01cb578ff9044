"""Bitstrings from a device: Qiskit Runtime's Sampler on ``bits`` programs, for work that needs samples
rather than the expectation values the attention stages estimate (the ``qaoa`` solver's one sampling
circuit per QUBO).

The same devices (:func:`qattn.ibm.devices.resolve_device`: ``fake_<name>`` in local testing mode,
any other name through the saved account), the same ISA programs (:mod:`qattn.ibm.programs`) and the
same executor-based primitives and execution modes as ``qattn ibm``. The call waits for its jobs.
"""

from __future__ import annotations

import numpy as np

from qattn.circuits.qubit_order import qiskit_samples_to_wire_order

from .devices import Device, HardwareError
from .programs import Program

MAX_EXECUTIONS = 10_000_000  # per job (circuits x shots); IBM's documented limit


def sample(
    device: Device, pubs: list[tuple[Program, np.ndarray]], shots: int, *, seed_simulator: int | None = None,
    mode: str = "batch", max_executions: int = MAX_EXECUTIONS,
) -> list[np.ndarray]:
    """Each ``bits`` program on its ``(M, slots)`` angle rows, ``shots`` times: per pub a bool
    ``(M, shots, n)`` array in wire order. Rows are split into jobs of at most ``max_executions``
    executions, all in one Batch (or Session); ``seed_simulator`` seeds local testing mode only."""
    from qiskit_ibm_runtime import Batch, Session
    from qiskit_ibm_runtime.executor_sampler import Sampler

    if any(program.kind != "bits" for program, _ in pubs):
        raise ValueError("sample() takes bits programs (qattn.ibm.programs.sampler_program)")
    options: dict = {"default_shots": shots}
    if device.local and seed_simulator is not None:
        options["simulator"] = {"seed_simulator": seed_simulator}
    per_job = max(1, max_executions // shots)
    chunks = [(i, start) for i, (_, angles) in enumerate(pubs) for start in range(0, len(angles), per_job)]
    context = Session if mode == "session" else Batch
    with context(backend=device.mode) as runtime:
        sampler = Sampler(mode=runtime, options=options)
        pubs_sent = [[pubs[i][0].pub(pubs[i][1][start : start + per_job])] for i, start in chunks]
        jobs = [runtime_step(device, sampler.run, sent) for sent in pubs_sent]
        results = [runtime_step(device, job.result)[0].data.meas for job in jobs]
    bits: list[list[np.ndarray]] = [[] for _ in pubs]
    for (i, _), samples in zip(chunks, results):
        bits[i].append(qiskit_samples_to_wire_order(samples))
    return [np.concatenate(parts) if parts else np.zeros((0, shots, program.circuit.num_clbits), dtype=bool)
            for parts, (program, _) in zip(bits, pubs)]


def runtime_step(device: Device, call, *args):
    """A Qiskit Runtime call; any failure becomes a :class:`HardwareError` that names the device."""
    try:
        return call(*args)
    except Exception as err:  # noqa: BLE001 - input, network, service and job errors alike
        raise HardwareError(
            f"Qiskit Runtime's Sampler failed on {device.name} ({type(err).__name__}: {str(err)[:300]})"
        ) from None
