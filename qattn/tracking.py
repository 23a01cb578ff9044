"""MLflow: where every run is recorded. Default store is MLflow's own (``sqlite:///mlflow.db``);
any tracking URI, a real ``mlflow server`` included, works unchanged.

A password in the tracking URI (``http://user:password@host``) is used to connect and nowhere else:
for an HTTP server it moves into MLflow's ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``
of this process (so MLflow's own messages carry no password), and every URI that qattn stores or
prints goes through :func:`qattn.uris.mask_uri`. A store that stops answering during a run is waited for, with
a notice on stderr (:func:`patiently`), for ``$QATTN_TRACKING_WAIT`` seconds at most.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import mlflow
import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from qattn.config import ExperimentConfig, flatten
from qattn.data import Split, TextDataset, hash_params, notice
from qattn.uris import bare_uri, mask_uri

PACKAGES = ("qattn", "torch", "pennylane", "qiskit", "qiskit-aer", "mlflow", "tokenizers", "numpy")
MAX_PARAM_LENGTH = 6000  # MLflow's limit on a param value
EPOCH_TAG = "qattn_epochs_from"  # "1" on runs whose epoch metrics count epochs from 1 (runs without it: from 0)
WAIT_ENV = "QATTN_TRACKING_WAIT"  # seconds a run waits for a store that stopped answering
DEFAULT_WAIT = 600.0
OUTAGE_CODES = {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}  # MLflow's codes for "not now"
WRITE_REFUSED = {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "PERMISSION_DENIED"}  # and "not writable" (SQLite's too)
VERSION_TAG = "qattn_version"  # on experiments: the qattn that last connected to write (that write checks the store)

T = TypeVar("T")


class TrackingError(RuntimeError):
    """The tracking store cannot be used; the message says how to fix it."""


class StoreUnreachable(TrackingError):
    """The store stopped answering during a run and did not come back within the wait."""


def public_config(config: ExperimentConfig) -> ExperimentConfig:
    """``config`` as it may be stored (MLflow params, config.toml, checkpoints): the URI's password masked."""
    tracking = config.tracking.model_copy(update={"uri": mask_uri(config.tracking.uri)})
    return config.model_copy(update={"tracking": tracking})


def connect(config: ExperimentConfig) -> str:
    """Point MLflow at the configured store, check it answers and takes writes, select the experiment
    (created with its artifacts at ``tracking.artifacts`` if it does not exist yet); return the URI (to
    connect with; :func:`mask_uri` it to show it). All of it before any run starts, so that a store that
    cannot be written is one message and leaves no half-made run."""
    if config.tracking.uri:
        mlflow.set_tracking_uri(config.tracking.uri)
    uri = check_store()
    with store_writes(uri):
        experiment_id = find_or_create_experiment(config.tracking.experiment, config.tracking.artifacts)
        MlflowClient().set_experiment_tag(experiment_id, VERSION_TAG, package_versions()["version.qattn"])
    mlflow.set_experiment(experiment_id=experiment_id)
    return uri


def find_or_create_experiment(name: str, artifacts: str | None) -> str:
    """The id of the experiment ``name``, created (its artifacts at ``artifacts``, if set) when missing, also
    when another process creates it at the same moment: MLflow's own ``set_experiment(name)`` then leaves
    the experiment unselected, and the process's runs land in "Default"."""
    client = MlflowClient()
    location = None
    if artifacts is not None:
        location = artifacts if "://" in artifacts else Path(artifacts).expanduser().resolve().as_uri()
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name, artifact_location=location)
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        experiment = client.get_experiment_by_name(name)  # another process created it just now
    elif location is not None and experiment.artifact_location.rstrip("/") != location.rstrip("/"):
        notice(f"experiment {name!r} exists, with its artifacts at {experiment.artifact_location}: "
               f"tracking.artifacts = {artifacts!r} applies to experiments qattn creates")
    return experiment.experiment_id


@contextmanager
def store_writes(uri: str) -> Iterator[None]:
    """MLflow calls that write to the store at ``uri``: a store that answers but refuses writes (a read-only
    SQLite file, a server without write access) is one :class:`TrackingError` naming the store and the fix,
    and MLflow's log of the database error (a long traceback) stays unprinted."""
    database_log = logging.getLogger("mlflow.store.db.utils")
    level = database_log.level
    database_log.setLevel(logging.CRITICAL)
    try:
        yield
    except MlflowException as err:
        if err.error_code not in WRITE_REFUSED:
            raise
        said = re.search(r"\(\w+\.\w*Error\) ([^\n]+)", err.message)  # the database's own words, if MLflow has them
        reason = said.group(1) if said else err.message.strip().split("\n")[0][:200]
        database = uri.removeprefix("sqlite:///").split("?")[0].removeprefix("file:")  # a SQLite store's file
        fix = (f"make {database} and its folder writable" if uri.startswith("sqlite:///")
               else "give this user write access to the server's store")
        raise TrackingError(
            f"the MLflow tracking store at {mask_uri(uri)} takes no writes ({reason}): {fix}, or set tracking.uri "
            "(or MLFLOW_TRACKING_URI) to a store qattn can write"
        ) from None
    finally:
        database_log.setLevel(level)


def check_store() -> str:
    """The current tracking URI (to connect with; :func:`mask_uri` it to show it), after checking that
    the store answers (a clear error if not)."""
    uri = without_password(mlflow.get_tracking_uri())
    try:
        with quick_requests():
            MlflowClient(uri).search_experiments(max_results=1)
    except Exception as err:  # noqa: BLE001 - any failure here means the same thing to the user
        raise TrackingError(
            f"cannot reach the MLflow tracking store at {mask_uri(uri)} ({type(err).__name__}: {str(err)[:200]}). "
            "Start the server (e.g. `mlflow server --host 127.0.0.1 --port 5000`), or set tracking.uri "
            "(or MLFLOW_TRACKING_URI) to a reachable store such as sqlite:///mlflow.db"
        ) from None
    return uri


def without_password(uri: str) -> str:
    """An HTTP(S) tracking URI's user and password go to MLflow's credential variables of this process,
    and MLflow keeps the URI without them; other stores (a database URI) need them in the URI."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or parts.password is None:
        return uri
    os.environ["MLFLOW_TRACKING_USERNAME"] = unquote(parts.username or "")
    os.environ["MLFLOW_TRACKING_PASSWORD"] = unquote(parts.password)
    mlflow.set_tracking_uri(bare_uri(uri))
    return bare_uri(uri)


@contextmanager
def quick_requests(timeout: int = 10):
    """No MLflow retries and a short timeout, unless the user set them: for the reachability check, and
    for each attempt of :func:`patiently`, which does the waiting itself."""
    quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout)}
    saved = {key: os.environ.get(key) for key in quick}
    os.environ.update({key: value for key, value in quick.items() if saved[key] is None})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)


def patiently(call: Callable[[], T]) -> T:
    """``call()`` (an MLflow call of a run), waiting for the store while it does not answer: one notice
    on stderr, retries with growing pauses, a notice when it answers again; after ``$QATTN_TRACKING_WAIT``
    seconds (default 600) :class:`StoreUnreachable`. Errors that are not outages are raised at once."""
    try:
        wait = float(os.environ.get(WAIT_ENV) or DEFAULT_WAIT)
    except ValueError:
        raise TrackingError(f"${WAIT_ENV} must be a number of seconds, got {os.environ[WAIT_ENV]!r}") from None
    started, pause, notified = time.monotonic(), 1.0, False
    while True:
        try:
            with quick_requests(timeout=30):  # each attempt fails fast; the waiting is done here, with notices
                result = call()
            if notified:
                notice(f"the MLflow tracking store answers again after {time.monotonic() - started:.0f} s; continuing")
            return result
        except (MlflowException, requests.RequestException, ConnectionError, TimeoutError) as err:
            if isinstance(err, MlflowException) and err.error_code not in OUTAGE_CODES:
                raise
            waited = time.monotonic() - started
            if waited >= wait:
                store = mask_uri(mlflow.get_tracking_uri())
                raise StoreUnreachable(
                    f"the MLflow tracking store at {store} did not answer for {waited:.0f} s ({why(err)})"
                ) from None
            if not notified:
                notice(
                    f"the MLflow tracking store at {mask_uri(mlflow.get_tracking_uri())} is unreachable "
                    f"({why(err)}); qattn waits and retries for up to {wait:.0f} s (${WAIT_ENV} sets how long)"
                )
                notified = True
            time.sleep(min(pause, wait - waited))
            pause = min(2 * pause, 30.0)


def why(err: Exception) -> str:
    """The operating system's reason when there is one (``Connection refused``), else the error's start."""
    reason = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(err))
    return reason.group(1).strip() if reason else f"{type(err).__name__}: {str(err)[:160]}"


@contextmanager
def recorded_run(**start_run: Any) -> Iterator[mlflow.ActiveRun]:
    """``mlflow.start_run(**start_run)``, ended FINISHED (FAILED on an error) through :func:`patiently`.
    When the store stays unreachable the run is only forgotten here: the store still has it RUNNING,
    and ``--resume`` continues it."""
    run = mlflow.start_run(**start_run)
    try:
        yield run
    except TrackingError:  # the store is gone (during the run, or at a grid's next cell)
        with quick_requests(), contextlib.suppress(Exception):
            mlflow.end_run("FAILED")  # MLflow forgets the run before it tells the store, which cannot hear it
        raise
    except BaseException:
        end_run(run.info.run_id, "FAILED")
        raise
    end_run(run.info.run_id, "FINISHED")


def end_run(run_id: str, status: str) -> None:
    try:
        with quick_requests():
            mlflow.end_run(status)
    except Exception:  # noqa: BLE001 - MLflow forgot the run already; tell the store, with patience
        patiently(lambda: MlflowClient().set_terminated(run_id, status))


PREDICTIONS = "predictions/test.json"  # a run's test labels and predictions, per document in the split's order


def log_predictions(test: Split, predictions: list[int]) -> None:
    """The test split's labels, the model's predictions, and each document's id (null without one) and text hash
    (:func:`qattn.data.text_hash`): paired tests between models (:mod:`qattn.stats`) match two runs'
    answers by document, and refuse runs tested on other documents."""
    answers = {"labels": list(test.labels), "predictions": list(predictions), "ids": list(test.ids)}
    mlflow.log_dict({**answers, "sha256": test.hashes}, PREDICTIONS)


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[f"version.{name}"] = version(name)
        except PackageNotFoundError:
            versions[f"version.{name}"] = "not installed"
    return versions


def log_run_metadata(config: ExperimentConfig, parameter_counts: dict[str, int],
                     data: TextDataset | dict[str, str]) -> None:
    """Resolved config as flattened params, parameter counts, git commit and package versions, and the data's
    identity by content: a run's ``data`` set, its hashes and overlap counts (:meth:`qattn.data.TextDataset.params`);
    a grid's parent run, which loads no data, gives the hashes of the data files (:func:`qattn.data.data_hashes`)."""
    flat = flatten(public_config(config))
    params: dict[str, Any] = {key: str(value)[:MAX_PARAM_LENGTH] for key, value in flat.items()}
    params.update({f"parameters.{kind}": count for kind, count in parameter_counts.items()})
    params.update(data.params() if isinstance(data, TextDataset) else hash_params(data))
    params.update(package_versions())
    mlflow.log_params(params)
    commit = git_commit()
    mlflow.set_tags({"mlflow.source.git.commit": commit, "git_commit": commit, "attention": config.model.attention})


# Documents without text that data.on_empty = "skip" skipped: said and logged alike by every kind of run.


def notice_skipped_empty(dataset: TextDataset) -> None:
    """Say on stderr how many documents without text the run skips, per split file, if any."""
    if dataset.skipped_empty:
        counts = ", ".join(f"{count} in {split}" for split, count in dataset.skipped_empty.items())
        notice(f"skipped {sum(dataset.skipped_empty.values())} empty documents ({counts}): data.on_empty = 'skip'")


def log_skipped_empty(config: ExperimentConfig, dataset: TextDataset) -> None:
    """With ``data.on_empty = "skip"``, how many documents the run never saw, per split file: the params
    ``data.skipped_empty.train``, ``.dev`` and ``.test`` (0 where none)."""
    if config.data.on_empty == "skip":
        mlflow.log_params({f"data.skipped_empty.{split}": dataset.skipped_empty.get(split, 0)
                           for split in ("train", "dev", "test")})
