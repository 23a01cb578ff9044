"""Devices by name: ``fake_<name>`` runs offline in Qiskit Runtime's local testing mode; any other
name is an IBM Quantum backend reached through the saved account.

Credentials come only from Qiskit's saved account (``QiskitRuntimeService.save_account``) or its
environment variables (``QISKIT_IBM_TOKEN``, ``QISKIT_IBM_INSTANCE``, ``QISKIT_IBM_CHANNEL``);
qattn never reads, prints, logs or stores the token.

Local testing mode runs jobs in this process, where they vanish with it. So that ``retrieve`` works
from the journal alone there too, :class:`LocalJobs` keeps each finished local job's values under
the journal's folder, the part IBM's servers play for real jobs.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np


CALIBRATION_RESERVE = 100_000  # executions kept free per job for readout-mitigation calibration (32 x 128 today)


class HardwareError(RuntimeError):
    """A hardware request that cannot go ahead; the message says what to do."""


SAVE_ACCOUNT = (  # the key is typed at a prompt, so it never lands in the shell's history
    "save an IBM Quantum account once with\n"
    "  python -c \"import getpass; from qiskit_ibm_runtime import QiskitRuntimeService as S; "
    "S.save_account(token=getpass.getpass('API key: '), instance='<CRN>')\"\n"
    "or set QISKIT_IBM_TOKEN (and QISKIT_IBM_INSTANCE) in the environment; "
    "or try the workflow offline on a fake device: --backend fake_manila"
)


@dataclass
class Device:
    name: str
    backend: object  # a BackendV2: the device, or its fake snapshot
    local: bool  # local testing mode (fake snapshot simulated with Aer, in this process)
    ideal: bool = False  # local only: simulate without the snapshot's noise
    service: object = None  # the QiskitRuntimeService of a real device

    @property
    def mode(self):
        """What the primitives run on: the backend, or for an ideal local run a noiseless Aer copy."""
        if not self.ideal:
            return self.backend
        from qiskit_aer import AerSimulator

        simulator = AerSimulator.from_backend(self.backend)
        simulator.set_options(noise_model=None)
        return simulator

    @property
    def rep_delay(self) -> float:
        """Seconds between shots (the device's default repetition delay; 0 if it has none)."""
        configuration = getattr(self.backend, "configuration", None)
        return float(getattr(configuration(), "default_rep_delay", 0.0) or 0.0) if configuration else 0.0


def fake_devices() -> dict[str, type]:
    from qiskit_ibm_runtime import fake_provider

    devices = {}
    for attribute in dir(fake_provider):
        cls = getattr(fake_provider, attribute)
        backend_name = getattr(cls, "backend_name", None)
        if attribute.startswith("Fake") and isinstance(backend_name, str):
            devices.setdefault(backend_name, cls)
    return devices


def is_local(name: str) -> bool:
    """Whether the device ``name`` runs in local testing mode (``fake_<name>``)."""
    return name.startswith("fake_")


def resolve_device(name: str, ideal: bool = False) -> Device:
    try:
        import qiskit_ibm_runtime  # noqa: F401
    except ImportError:
        raise HardwareError("qattn ibm needs qiskit-ibm-runtime: pip install 'qattn[ibm]'") from None
    if is_local(name):
        devices = fake_devices()
        if name not in devices:
            raise HardwareError(f"unknown fake device {name!r}; valid: {', '.join(sorted(devices))}")
        return Device(name, devices[name](), local=True, ideal=ideal)
    if ideal:
        raise HardwareError("--ideal (no noise) exists only for fake devices in local testing mode")
    service = runtime_service()
    try:
        return Device(name, service.backend(name), local=False, service=service)
    except Exception as err:  # noqa: BLE001 - the service raises several kinds for an unknown name
        raise HardwareError(f"IBM Quantum has no backend {name!r} for this account ({type(err).__name__}: {str(err)[:200]})") from None


def runtime_service():
    """The account's ``QiskitRuntimeService``; a clear error when no account is saved or set."""
    from qiskit_ibm_runtime import QiskitRuntimeService

    if not os.environ.get("QISKIT_IBM_TOKEN") and not QiskitRuntimeService.saved_accounts():
        raise HardwareError(f"no IBM Quantum account found; {SAVE_ACCOUNT}")
    try:
        return QiskitRuntimeService()
    except Exception as err:  # noqa: BLE001 - account, network and authentication errors alike
        raise HardwareError(f"could not open the IBM Quantum account ({type(err).__name__}: {str(err)[:200]}); {SAVE_ACCOUNT}") from None


def job_status(job) -> str:
    """``QUEUED``, ``RUNNING``, ``DONE``, ``ERROR``, ``CANCELLED``...: runtime jobs give strings, local ones enums."""
    status = job.status()
    return str(getattr(status, "name", status)).upper()


def result_values(result) -> np.ndarray:
    """A finished job's values, its pubs' rows in order: the Estimator's expectation values, or the
    Sampler's bitstrings as uint8 ``(rows, shots, n)`` in wire order (:func:`stack_rows`)."""
    from qattn.circuits.qubit_order import qiskit_samples_to_wire_order

    parts = []
    for pub in result:
        if "evs" in pub.data:
            parts.append(np.asarray(pub.data.evs))
        else:  # a Sampler pub: the register measure_all names "meas"
            parts.append(qiskit_samples_to_wire_order(pub.data.meas).astype(np.uint8))
    return stack_rows(parts)


def stack_rows(parts: list[np.ndarray]) -> np.ndarray:
    """Rows of several pubs or jobs in one array; bitstrings of fewer qubits are padded with 0 to the widest
    (a ``bits`` stage samples QUBOs of several sizes; each row's width is in the stage file)."""
    if parts and parts[0].ndim == 3:
        width = max(part.shape[-1] for part in parts)
        parts = [np.pad(part, ((0, 0), (0, 0), (0, width - part.shape[-1]))) for part in parts]
    return np.concatenate(parts)


class LocalJobs:
    """The values of finished local-mode jobs, one ``<job id>.npz`` each (see :func:`result_values`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, job_id: str) -> Path:
        return self.folder / f"{job_id}.npz"

    def keep(self, job) -> None:
        """Wait for a local job and store its values."""
        values = result_values(job.result())
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path(job.job_id()).with_suffix(".tmp.npz")
        np.savez(tmp, values=values)
        tmp.replace(self.path(job.job_id()))

    def status(self, job_id: str) -> str:
        """``DONE`` when the job's values are here and readable; ``LOST`` when its process ended before
        it did (or the file was damaged): resubmit it."""
        try:
            self.values(job_id)
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
            return "LOST"
        return "DONE"

    def values(self, job_id: str) -> np.ndarray:
        with np.load(self.path(job_id)) as data:
            return data["values"]
