"""The job journal: everything needed to find, retrieve and resubmit a hardware evaluation's jobs.

One folder per evaluation::

    journal.json        what was asked (model, data slice, device, options) and every job: its id,
                        stage, rows and last known status; rewritten (atomically) after each submission
    stage-<k>.npz       the angles and output rows of stage k's circuits (what its jobs contain); for a
                        ``bits`` stage also each circuit's qubits and the QUBO it samples
    results/<id>.npy    a retrieved job's values (expectation values, or a ``bits`` stage's bitstrings)
    local/<id>.npz      local testing mode only: a finished local job's values (see qattn.runtime.devices)

Each job id is also set as a tag on the evaluation's MLflow run the moment it is known, so a lost
folder can be rebuilt by hand from MLflow. No credential is ever written here.
"""

from __future__ import annotations

import fcntl
import json
import os
import zipfile
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qattn.runtime.devices import CALIBRATION_RESERVE, HardwareError, is_local

FINAL = {"DONE", "ERROR", "CANCELLED", "LOST", "RETRIEVED"}  # RETRIEVED: DONE and its values saved here
FAILED = {"ERROR", "CANCELLED", "LOST"}  # LOST: a local job whose process ended before it did, or unknown to IBM
SAMPLER_KINDS = ("bits", "randomized")  # stages of bitstrings (the Sampler); the others are Estimator expectation values


class Options(BaseModel):
    """How the circuits run (Qiskit Runtime Estimator options, transpilation, execution mode). A ``bits``
    stage (the ``qaoa`` solver's sampling circuits) runs on the Sampler: shots, dynamical decoupling and
    the seeds apply, the Estimator's resilience options do not."""

    model_config = ConfigDict(extra="forbid")

    shots: int = Field(4096, ge=1)
    mode: Literal["batch", "session"] = "batch"
    optimization_level: int = Field(2, ge=0, le=3)
    seed_transpiler: int | None = 0
    resilience_level: int = Field(1, ge=0, le=2)  # 1: TREX readout mitigation; 2: + ZNE
    measure_mitigation: bool | None = None  # None: what resilience_level implies
    dynamical_decoupling: Literal["XX", "XpXm", "XY4"] | None = None
    twirl_gates: bool | None = None
    twirl_measure: bool | None = None
    seed_simulator: int | None = None  # local testing mode only
    max_executions: int = Field(10_000_000, ge=CALIBRATION_RESERVE + 1)  # per job (circuits x shots); IBM's documented job limit
    estimator: Literal["pairwise", "randomized"] = "pairwise"  # how fidelities are estimated (qattn.executors.rows)
    rotations: int = Field(64, ge=1)  # randomized: shared random local rotations per token (shots: per rotation)
    target_error: float | None = Field(None, gt=0, lt=1)  # pairwise: mean row TV of the attention weights -> shots per circuit
    adaptive: bool = False  # with target_error: a pilot pass, then shots where the weights are uncertain (two stages)
    pilot_shots: int = Field(64, ge=1)
    min_shots: int = Field(16, ge=1)

    def budget(self):
        """The :class:`~qattn.executors.budget.ShotBudget` of ``target_error`` (None: fixed shots)."""
        if self.target_error is None:
            return None
        from qattn.executors.budget import ShotBudget

        return ShotBudget(self.target_error, "adaptive" if self.adaptive else "exact", self.pilot_shots, self.min_shots)

    def estimator_options(self, local: bool) -> dict:
        options: dict = {"default_shots": self.shots, "resilience_level": self.resilience_level}
        if self.measure_mitigation is not None:
            options["resilience"] = {"measure_mitigation": self.measure_mitigation}
        if self.dynamical_decoupling:
            options["dynamical_decoupling"] = {"enable": True, "sequence_type": self.dynamical_decoupling}
        twirling = {"enable_gates": self.twirl_gates, "enable_measure": self.twirl_measure}
        if any(v is not None for v in twirling.values()):
            options["twirling"] = {k: v for k, v in twirling.items() if v is not None}
        if local and self.seed_simulator is not None:
            options["simulator"] = {"seed_simulator": self.seed_simulator}
        return options

    def sampler_options(self, local: bool) -> dict:
        options: dict = {"default_shots": self.shots}
        if self.dynamical_decoupling:
            options["dynamical_decoupling"] = {"enable": True, "sequence_type": self.dynamical_decoupling}
        if local and self.seed_simulator is not None:
            options["simulator"] = {"seed_simulator": self.seed_simulator}
        return options

    def primitive_options(self, kind: str, local: bool) -> dict:
        """The Sampler's options for a ``bits`` stage, the Estimator's for the others."""
        return self.sampler_options(local) if kind in SAMPLER_KINDS else self.estimator_options(local)

    def circuit_executions(self, kind: str, shots: int | None = None) -> int:
        """Executions each circuit of a stage of ``kind`` costs with ``shots`` (default: the options'):
        the Sampler's (bits, randomized) its shots, the Estimator's :meth:`estimator_executions`."""
        shots = self.shots if shots is None else int(shots)
        return shots if kind in SAMPLER_KINDS else self.estimator_executions(shots)

    def job_executions(self, kind: str) -> int:
        """The circuits x shots a job of a stage of ``kind`` may carry (the Sampler has no TREX calibration)."""
        return self.max_executions if kind in SAMPLER_KINDS else self.executions_per_job

    @property
    def measure_mitigation_on(self) -> bool:
        return self.measure_mitigation if self.measure_mitigation is not None else self.resilience_level >= 1

    @property
    def twirled(self) -> bool:
        """Whether the Estimator twirls (level 1 twirls measurements, level 2 gates too; TREX forces it)."""
        level_twirls = self.resilience_level == 2 or (self.resilience_level == 1 and self.twirl_measure is None)
        return bool(self.twirl_gates or self.twirl_measure or self.measure_mitigation_on or level_twirls)

    @property
    def executions_per_circuit(self) -> int:
        """Executions each Estimator circuit of the options' shots costs."""
        return self.estimator_executions(self.shots)

    def estimator_executions(self, shots: int) -> int:
        """Executions an Estimator circuit of ``shots`` costs: twirling rounds shots up to whole
        randomizations (Qiskit Runtime's own rule), and zero-noise extrapolation runs three noise factors."""
        if self.twirled:
            from qiskit_ibm_runtime.executor.calculate_twirling_shots import calculate_twirling_shots

            randomizations, per_randomization = calculate_twirling_shots(shots, "auto", "auto")
            shots = randomizations * per_randomization
        return shots * (3 if self.resilience_level == 2 else 1)

    @property
    def executions_per_job(self) -> int:
        """The circuits x shots a job may carry: the limit, less room for TREX's calibration circuits."""
        return self.max_executions - (CALIBRATION_RESERVE if self.measure_mitigation_on else 0)


class Stage(BaseModel):
    stage: int
    kind: Literal["fidelity", "z", "randomized", "bits"]  # bits: one sampling circuit per QUBO (the qaoa solver)
    circuits: int
    depth: int
    two_qubit_gates: int
    levels: list[tuple[int, int, int]] = []  # (start, stop, shots): rows with their own shots (an error budget)


class Job(BaseModel):
    job_id: str
    stage: int
    rows: tuple[int, int]  # [start, stop) of the stage's circuits
    status: str = "SUBMITTED"
    submitted_at: str


class Journal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str  # the checkpoint file or MLflow run id given
    model_run_id: str
    tracking_uri: str
    mlflow_run_id: str  # this evaluation's run, a child of the model's
    device: str
    ideal: bool = False
    split: str
    docs: list[int]
    options: Options
    stages: list[Stage] = []
    jobs: list[Job] = []
    finished: bool = False

    @staticmethod
    def path(folder: Path) -> Path:
        return folder / "journal.json"

    @property
    def local(self) -> bool:
        """Local testing mode (a fake device, see :func:`qattn.runtime.devices.resolve_device`)."""
        return is_local(self.device)

    @classmethod
    def load(cls, folder: Path) -> Journal:
        path = cls.path(folder)
        if not path.is_file():
            raise HardwareError(f"{folder} holds no journal.json: give the folder `qattn ibm submit` printed")
        try:
            return cls.model_validate(json.loads(path.read_text()))
        except (ValueError, ValidationError) as err:
            raise HardwareError(f"{path} is not a qattn job journal: {str(err)[:300]}") from None

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path(folder).with_suffix(".tmp")
        tmp.write_text(self.model_dump_json(indent=2))
        os.replace(tmp, self.path(folder))

    def stage_jobs(self, stage: int) -> list[Job]:
        return [job for job in self.jobs if job.stage == stage]

    def ranges(self, stage: int) -> dict[tuple[int, int], list[Job]]:
        """Each row range of a stage with its jobs, oldest first (a resubmission adds a job to its range)."""
        ranges: dict[tuple[int, int], list[Job]] = {}
        for job in self.stage_jobs(stage):
            ranges.setdefault(job.rows, []).append(job)
        return ranges


@contextmanager
def locked(folder: Path):
    """One ``qattn ibm`` command at a time per journal (two retrieves could both send the next stage,
    and the later save would drop the other's job ids). The lock dies with its process."""
    if not folder.is_dir():
        raise HardwareError(f"{folder} is not a journal folder: give the folder `qattn ibm submit` printed")
    with open(folder / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise HardwareError(f"another qattn ibm command is working on {folder}; run this one when it is done") from None
        yield


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def stage_path(folder: Path, stage: int) -> Path:
    return folder / f"stage-{stage}.npz"


def save_stage(folder: Path, stage: int, angles: np.ndarray, rows: np.ndarray, **extra: np.ndarray) -> None:
    """Written whole or not at all, as every file of the journal."""
    tmp = stage_path(folder, stage).with_suffix(".tmp.npz")
    np.savez(tmp, angles=angles, rows=rows, **extra)
    os.replace(tmp, stage_path(folder, stage))


def load_stage(folder: Path, stage: int) -> np.ndarray:
    """Stage ``stage``'s gate angles; a missing or damaged file is a :class:`HardwareError` that says what to do."""
    return load_stage_arrays(folder, stage)["angles"]


def load_stage_arrays(folder: Path, stage: int) -> dict[str, np.ndarray]:
    """Everything stage ``stage``'s file holds (``angles``, ``rows`` and a ``bits`` stage's QUBOs)."""
    path = stage_path(folder, stage)
    try:
        with np.load(path) as data:
            arrays = {key: data[key] for key in data.files}
        if "angles" not in arrays:
            raise KeyError("angles")
        return arrays
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        problem = "is missing" if not path.exists() else f"is damaged ({type(err).__name__}: {str(err)[:100]})"
        raise HardwareError(
            f"{path} {problem}: it holds the gate angles of stage {stage}'s circuits, which `qattn ibm retrieve` and "
            f"`qattn ibm resubmit` match the jobs' values to. Put it back from a copy of {folder}; without one, "
            "this evaluation's results cannot be used: start it again with `qattn ibm submit`"
        ) from None


def damaged_stages(folder: Path, journal: Journal) -> list[str]:
    """What is wrong with the journal's stage files (one message each; empty when all load)."""
    problems = []
    for stage in journal.stages:
        try:
            load_stage(folder, stage.stage)
        except HardwareError as err:
            problems.append(str(err))
    return problems


def values_path(folder: Path, job_id: str) -> Path:
    return folder / "results" / f"{job_id}.npy"


def save_values(folder: Path, job_id: str, values: np.ndarray) -> None:
    """Written whole or not at all (a process killed mid-write leaves no truncated file)."""
    (folder / "results").mkdir(exist_ok=True)
    tmp = values_path(folder, job_id).with_suffix(".tmp.npy")
    np.save(tmp, values)
    os.replace(tmp, values_path(folder, job_id))


def load_values(folder: Path, job_id: str) -> np.ndarray:
    return np.load(values_path(folder, job_id))


def values_problem(folder: Path, job_id: str) -> str | None:
    """Why a retrieved job's saved values cannot be read, or None when they can."""
    path = values_path(folder, job_id)
    if not path.is_file():
        return f"{path} is missing"
    try:
        load_values(folder, job_id)
    except (OSError, ValueError, EOFError) as err:
        return f"{path} is damaged ({type(err).__name__}: {str(err)[:100]})"
    return None
