"""Job statuses: asked of IBM Quantum, or read from local testing mode's files; and ``qattn ibm status``.

Nothing here loads a model, torch or MLflow, so ``qattn ibm status`` answers from the journal and
the runtime alone (for a fake device, from the journal folder alone), with the tracking server down too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from qattn.runtime.devices import HardwareError, LocalJobs, job_status, result_values, runtime_service

from .journal import FAILED, Journal, damaged_stages, locked, save_values, values_problem

Echo = Callable[[str], None]


def runtime_call(what: str, call, *args):
    """A Qiskit Runtime call; a job IBM does not know gives None, any other failure a clear error."""
    from qiskit_ibm_runtime.exceptions import RuntimeJobNotFound

    try:
        return call(*args)
    except RuntimeJobNotFound:
        return None
    except Exception as err:  # noqa: BLE001 - network, authentication and service errors alike
        raise HardwareError(
            f"could not {what} ({type(err).__name__}: {str(err)[:300]}); the journal is unchanged, try again"
        ) from None


def poll(folder: Path, journal: Journal, service=None, keep_values: bool = True, echo: Echo = print) -> None:
    """Ask for every unfinished job's status; save the values of those done (``keep_values``).
    ``service``: the ``QiskitRuntimeService`` of a real device (None for local testing mode). A retrieved
    job whose saved values are missing or damaged is done again: its values are fetched once more."""
    local = LocalJobs(folder / "local")
    try:
        for job in journal.jobs:
            if job.status == "RETRIEVED" and (problem := values_problem(folder, job.job_id)):
                echo(f"{problem}: job {job.job_id}'s values are fetched again"
                     f"{'' if keep_values else f' by `qattn ibm retrieve {folder}`'}")
                job.status = "DONE"
            if job.status in FAILED or job.status == "RETRIEVED" or (job.status == "DONE" and not keep_values):
                continue
            if journal.local:
                status, fetch = local.status(job.job_id), lambda: local.values(job.job_id)
            else:
                remote = runtime_call(f"look up job {job.job_id}", service.job, job.job_id)
                status = "LOST" if remote is None else job_status(remote)
                fetch = lambda: result_values(  # noqa: E731
                    runtime_call(f"fetch job {job.job_id}'s result", remote.result)
                )
            if status == "DONE" and keep_values:
                save_values(folder, job.job_id, fetch())
                status = "RETRIEVED"
            job.status = status
    finally:
        journal.save(folder)


def status(folder: Path, echo: Echo = print) -> tuple[Journal, list[str]]:
    """Each job's status now (values are not fetched), and what is wrong with the journal's stage files."""
    with locked(folder):
        journal = Journal.load(folder)
        poll(folder, journal, None if journal.local else runtime_service(), keep_values=False, echo=echo)
        return journal, damaged_stages(folder, journal)
