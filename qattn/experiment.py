"""One experiment run, start to end: data -> tokenizer -> model -> Trainer, recorded in MLflow."""

from __future__ import annotations

import fcntl
import os
import pickle
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import mlflow
import torch
from mlflow.exceptions import MlflowException
from tokenizers import Tokenizer

from qattn import tracking
from qattn.artifacts import attention_figure, circuit_files, confusion_figure, learning_curves_figure
from qattn.attention import parameter_counts
from qattn.backbone import Source, changes, check_encoder, locate
from qattn.config import ConfigError, ExperimentConfig, config_from_toml, dump_config
from qattn.data import TextDataset, check_unchanged, data_changes, load_dataset
from qattn.distributed import Ranks, process_group
from qattn.identity import RunIdentity, run_identity
from qattn.kinds import KINDS, AttentionKind
from qattn.model import TextClassifier, build_model
from qattn.run_result import RunResult
from qattn.inputs import SPLITS, ModelInputs, model_inputs, saved_inputs
from qattn.trainer import EncodedSplit, Metrics, Trainer, evaluate, pad_batch, seed_everything
from qattn.uris import mask_uri


class ExperimentError(RuntimeError):
    """A run that cannot start as asked; the message says what to do."""


@contextmanager
def folder_lock(folder: Path) -> Iterator[str | None]:
    """Hold ``<folder>.lock`` while training into ``folder``: yields None when this process got it, else
    who holds it (pid, host, since when). One process per run folder, ``qattn train`` and ``qattn compare``
    alike; the lock dies with its process, and sits next to the folder, so ``--restart`` keeps it."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.with_name(f"{folder.name}.lock"), "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            yield handle.read().strip() or "a process that is just starting"
            return
        handle.truncate(0)
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {datetime.now():%Y-%m-%d %H:%M:%S}\n")
        handle.flush()
        yield None


def check_writable(config: ExperimentConfig) -> None:
    """The folders a run writes to, checked before anything starts (a ConfigError naming the key)."""
    folders = {"train.output_dir": config.train.output_dir, "tokenizer.cache_dir": config.tokenizer.cache_dir}
    if config.model.backbone is not None:
        folders["model.backbone.cache_dir"] = config.model.backbone.cache_dir
    for key, folder in folders.items():
        path = Path(folder)
        try:
            if path.exists() and not path.is_dir():
                raise NotADirectoryError(0, "it is a file, not a folder")
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError as err:
            raise ConfigError(
                f"{key} = {folder!r} cannot be written ({err.strerror or err}); set it to a writable folder "
                f"(--set {key}=PATH)"
            ) from None


CHECKPOINT_KEYS = ("model", "config", "tokenizer", "label_names", "mlflow_run_id")  # every checkpoint holds these
RESUME_KEYS = (*CHECKPOINT_KEYS, "optimizer", "scheduler", "state", "rng")  # and what --resume needs
RESTART = "`qattn train CONFIG --restart` deletes it and trains the run afresh"


def load_checkpoint(path: Path, keys: tuple[str, ...] = CHECKPOINT_KEYS, *, map_location: Any = None,
                    name: str | None = None, fix: str = RESTART) -> dict[str, Any]:
    """A checkpoint qattn wrote (``torch.load(weights_only=True)``), or an :class:`ExperimentError`
    naming the file (``name``, if given) and ``fix`` when it is truncated, foreign or lacks ``keys``."""
    try:
        payload = torch.load(path, weights_only=True, map_location=map_location)
    except pickle.UnpicklingError:  # torch's text would suggest weights_only=False: never for a checkpoint of ours
        raise unusable(name or path, "it holds objects a qattn checkpoint never holds", fix) from None
    except Exception as err:  # noqa: BLE001 - truncated, empty, not a zip: all mean "not readable"
        raise unusable(name or path, f"unreadable, truncated or not a torch file: {type(err).__name__}", fix) from None
    missing = [key for key in keys if key not in payload] if isinstance(payload, dict) else list(keys)
    if missing:
        raise unusable(name or path, f"it lacks {', '.join(missing)}", fix)
    return payload


def unusable(path: Path | str, reason: str, fix: str = RESTART) -> ExperimentError:
    return ExperimentError(f"{path} is not a qattn checkpoint, or a damaged one ({reason}); {fix}")


def first_lines(err: Exception, limit: int = 300) -> str:
    return " ".join(line.strip() for line in str(err).splitlines() if line.strip())[:limit]


def run_experiment(
    config: ExperimentConfig, *, resume: bool = False, restart: bool = False, nested: bool = False
) -> RunResult:
    """Train and test one model (a bag-of-words kind: fit, select and test it); ``resume`` continues from
    the run's last checkpoint; ``nested`` makes the MLflow run a child of the active run. Checks the
    folders it writes, connects to MLflow and holds the run folder's lock (:func:`folder_lock`) first.
    Under torchrun every process calls this; rank 0 alone takes the lock and writes the MLflow run and
    the checkpoints (:mod:`qattn.distributed`)."""
    check_resume(config, resume, restart)
    check_writable(config)
    check_footing(config)
    if not KINDS.get(config.model.attention).network:
        return run_standalone(config, tracking.connect(config), nested=nested)
    identity = run_identity(config)
    with process_group(config.train.device) as ranks:
        with folder_lock(identity.folder) if ranks.main else nullcontext() as holder:
            if holder:
                raise ExperimentError(
                    f"another qattn process is training this run in {identity.folder} ({holder}); "
                    "wait for it to end or stop it (then --resume continues its run)"
                )
            uri = ranks.from_main(tracking.connect(config) if ranks.main else None)
            return train_and_test(config, identity, uri, ranks, resume=resume, restart=restart, nested=nested)


def run_cell(config: ExperimentConfig, identity: RunIdentity, uri: str, *, resume: bool, restart: bool) -> RunResult:
    """One cell of a grid, as a child of the grid's active run: the grid has checked the folders, is connected
    to ``uri`` and holds the lock of the cell's folder (``identity``, computed once for the cell)."""
    check_resume(config, resume, restart)
    if not KINDS.get(config.model.attention).network:
        return run_standalone(config, uri, nested=True)
    with process_group(config.train.device) as ranks:
        return train_and_test(config, identity, uri, ranks, resume=resume, restart=restart, nested=True)


def check_footing(config: ExperimentConfig) -> Source | None:
    """A pretrained encoder, found, its weights' hash checked, and its config, tokenizer and the reader's
    chunk_size checked against each other before anything else (a ConfigError naming the folder or key and the
    fix); None without one."""
    if config.model.backbone is None:
        return None
    source = locate(config.model.backbone)
    check_encoder(source, config.model.backbone, config.model.chunk_size)
    return source


def check_resume(config: ExperimentConfig, resume: bool, restart: bool) -> None:
    if resume and restart:
        raise ExperimentError("--resume and --restart exclude each other: continue the run, or start it over")
    if resume and not KINDS.get(config.model.attention).network:
        raise ExperimentError(
            f"a {config.model.attention} baseline keeps no checkpoint (it refits in minutes): run it without --resume"
        )


def run_standalone(config: ExperimentConfig, uri: str, *, nested: bool) -> RunResult:
    """A kind that is no network trains and records its run itself (:attr:`qattn.kinds.AttentionKind.build`)."""
    return KINDS.get(config.model.attention).builder()(config, uri=uri, nested=nested)


def train_and_test(config: ExperimentConfig, identity: RunIdentity, uri: str, ranks: Ranks, *, resume: bool,
                   restart: bool, nested: bool) -> RunResult:
    name, run_dir = identity.name, identity.folder
    last = run_dir / "last.pt"
    if restart and run_dir.exists() and ranks.main:
        shutil.rmtree(run_dir)
    ranks.barrier()
    if resume and not last.is_file():
        others = sorted(str(p) for p in run_dir.parent.glob(f"{name}-*/last.pt"))
        hint = f"; checkpoints of this run name with other settings: {', '.join(others)}" if others else ""
        raise ExperimentError(f"nothing to resume for this config: no checkpoint at {last}{hint}")
    if last.is_file() and not resume:
        raise ExperimentError(f"{run_dir} holds a checkpoint of an earlier run; pass --resume to continue it or --restart to start over")
    if config.train.threads:
        torch.set_num_threads(config.train.threads)

    dataset = load_dataset(config.data)
    if ranks.main:
        tracking.notice_skipped_empty(dataset)
    inputs = model_inputs(config, dataset, ranks)
    train, dev, test = (EncodedSplit(inputs.ids[name], getattr(dataset, name).labels) for name in SPLITS)
    seed_everything(config.train.seed)
    try:
        model = build_model(config.model, inputs.vocab_size, dataset.num_classes, embed=inputs.embed).to(ranks.device)
    except (ValueError, ImportError) as err:  # e.g. an unknown fake backend, a GPU that is not there
        raise ConfigError(f"model: {err}") from None

    extra = {
        "config": dump_config(tracking.public_config(config)),
        "tokenizer": inputs.tokenizer.to_str(),
        "label_names": dataset.label_names,
        "mlflow_run_id": None,  # once the MLflow run is open
        "data_sha256": dataset.hashes,  # what it was trained on: load_saved compares it (not in older checkpoints)
        "encoder_sha256": inputs.source.hashes() if inputs.source else {},  # and the encoder it read
    }
    checkpoint, first_epoch = None, 1
    if resume:  # everything about the checkpoint is checked before the MLflow run opens
        checkpoint = load_checkpoint(last, RESUME_KEYS, map_location=ranks.device)
        if not isinstance(checkpoint["mlflow_run_id"], str):
            raise unusable(last, "it names no MLflow run")
        first_epoch = ranks.from_main(
            resumed_run_numbering(checkpoint["mlflow_run_id"], last, dataset.hashes, inputs.source) if ranks.main else None
        )

    def log(metrics: dict[str, float], step: int) -> None:
        if ranks.main:
            tracking.patiently(lambda: mlflow.log_metrics(metrics, step=step))

    trainer = Trainer(
        model, train, dev, dataset.num_classes, config.train, run_dir, extra, log=log, ranks=ranks,
        first_epoch=first_epoch,
    )
    if checkpoint:
        try:
            trainer.resume(checkpoint)
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise unusable(last, f"it does not fit this config: {first_lines(err)}") from None

    run_id = checkpoint["mlflow_run_id"] if checkpoint else None
    recording = partial(
        tracking.recorded_run, run_id=run_id, run_name=name, nested=nested,
        log_system_metrics=config.tracking.system_metrics,
    )
    try:
        with recording() if ranks.main else nullcontext() as run:
            if ranks.main and not resume:
                tracking.patiently(lambda: log_run_start(config, model, extra["config"], dataset, inputs.params))
            if ranks.main:  # a tag, not a param: a resumed run may have another world size
                tracking.patiently(lambda: mlflow.set_tag("world_size", ranks.world_size))
            extra["mlflow_run_id"] = ranks.from_main(run.info.run_id if ranks.main else None)
            state = trainer.fit()

            model.load_state_dict(load_checkpoint(trainer.best_path, map_location=ranks.device)["model"])
            test_metrics = evaluate(model, test, dataset.num_classes, config.train.batch_size, ranks)
            if ranks.main:
                final = {**test_metrics.scalars("test"), "best_epoch": state.best_epoch + first_epoch}
                tracking.patiently(lambda: mlflow.log_metrics(final))
                tracking.patiently(lambda: tracking.log_predictions(dataset.test, test_metrics.predictions))
                history = state.history
                tracking.patiently(lambda: log_artifacts(config, model, inputs, dataset, dev, test_metrics, history))
                tracking.patiently(lambda: mlflow.log_artifact(str(trainer.best_path), "checkpoints"))
    except tracking.StoreUnreachable as err:
        if not last.is_file():  # it went away before the first checkpoint
            raise tracking.StoreUnreachable(
                f"{err}. qattn stopped before any checkpoint; run the same command again once the store answers"
            ) from None
        raise tracking.StoreUnreachable(
            f"{err}. qattn stopped, and nothing is lost: the checkpoints are in {run_dir} ({last.name} holds the "
            f"metrics not logged yet), and the MLflow run {extra['mlflow_run_id']} stays open. Once the store "
            f"answers, --resume continues from {last.name} (`qattn train CONFIG --resume`, or for a grid the same "
            "`qattn compare` command)"
        ) from None

    epochs = state.history
    return RunResult(
        run_id=extra["mlflow_run_id"],
        run_name=name,
        tracking_uri=mask_uri(uri),
        test=test_metrics,
        best_epoch=state.best_epoch + 1,
        epochs_run=len(epochs),
        seconds_per_epoch=sum(r["epoch/seconds"] for r in epochs) / len(epochs),
        docs_per_s=sum(r["epoch/docs_per_s"] for r in epochs) / len(epochs),
        tokens_per_s=sum(r["epoch/tokens_per_s"] for r in epochs) / len(epochs),
        parameters=parameter_counts(model),
    )


def log_run_start(config: ExperimentConfig, model: TextClassifier, resolved: str, dataset: TextDataset,
                  footing: dict[str, str]) -> None:
    tracking.log_run_metadata(config, parameter_counts(model), dataset)
    mlflow.log_params(footing)  # the encoder's folder, weights hash, revision and feature cache entries
    tracking.log_skipped_empty(config, dataset)
    mlflow.log_text(resolved, "config.toml")
    mlflow.set_tag(tracking.EPOCH_TAG, "1")


def resumed_run_numbering(run_id: str, last: Path, hashes: dict[str, str], encoder: Source | None = None) -> int:
    """The number the resumed MLflow run gives its first epoch (1; 0 for runs logged before epochs counted
    from 1), after checking that the store holds the run and that the data's content ``hashes`` are the ones
    the run recorded (:func:`qattn.data.check_unchanged`)."""
    try:
        run = mlflow.MlflowClient().get_run(run_id)
    except MlflowException:
        raise ExperimentError(
            f"the MLflow run {run_id} of {last} is not in {mask_uri(mlflow.get_tracking_uri())} (deleted, or "
            "logged to another store); resume against the store it was logged to, or pass --restart"
        ) from None
    check_unchanged(run.data.params, hashes, f"MLflow run {run_id} (checkpoint {last})",
                    "pass --restart to train it afresh on the data as it is now")
    if changed := changes(run.data.params, encoder):
        raise ExperimentError(f"MLflow run {run_id} (checkpoint {last}) read another encoder: {changed}. Restore the "
                              "encoder's files it was trained with, or pass --restart to train it afresh")
    return 1 if run.data.tags.get(tracking.EPOCH_TAG) == "1" else 0


def log_artifacts(config, model: TextClassifier, inputs: ModelInputs, dataset: TextDataset, dev: EncodedSplit,
                  test: Metrics, history: list[dict[str, float]]) -> None:
    figures = {
        "confusion_matrix.png": confusion_figure(test.confusion, dataset.label_names, "test confusion matrix (best model)"),
        "learning_curves.png": learning_curves_figure(history),
    }
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        for doc in range(min(config.tracking.attention_maps, len(dev.ids))):
            out = model(pad_batch(dev.ids, [doc]).to(device), return_attention=True)
            if out.local_attention is None:  # no attention sublayer: nothing to draw
                break
            tokens = inputs.token_labels("dev", doc, config.model.chunk_size)
            local = out.local_attention[0, 0].cpu().numpy()
            global_ = out.global_attention[0].cpu().numpy() if out.global_attention is not None else None
            figures[f"attention/dev_doc_{doc}.png"] = attention_figure(
                local, global_, tokens, f"dev document {doc} (label {dataset.label_names[dev.labels[doc]]})"
            )
    for path, figure in figures.items():
        mlflow.log_figure(figure, path)
        plt.close(figure)
    for path, text in circuit_files(model).items():
        mlflow.log_text(text, path)


@dataclass
class SavedModel:
    """A trained model as its best checkpoint holds it, with what it was trained on."""

    model: TextClassifier
    config: ExperimentConfig
    inputs: ModelInputs
    dataset: TextDataset
    path: str  # where it was loaded from: the checkpoint file, or runs:/<run id>/checkpoints/best.pt
    run_id: str | None  # the MLflow run that trained it

    @property
    def tokenizer(self) -> Tokenizer:
        return self.inputs.tokenizer

    def encoded(self, split: str) -> EncodedSplit:
        return EncodedSplit(self.inputs.ids[split], getattr(self.dataset, split).labels)


class BagOfWordsRun(ExperimentError):
    """An MLflow run of a bag-of-words kind (no network): it keeps no checkpoint to load."""

    def __init__(self, run_id: str, kind: AttentionKind) -> None:
        super().__init__(f"run {run_id} is a {kind.name} baseline, no network: it keeps no checkpoint to evaluate; "
                         "its test figures are in the run's metrics")
        self.run_id, self.kind = run_id, kind


def load_saved(target: str) -> SavedModel:
    """A best checkpoint, given as a file or as the MLflow run id that holds it (downloaded to a
    temporary folder that is gone afterwards); a bag-of-words run is a :class:`BagOfWordsRun`. Data
    whose hashes differ from those the checkpoint recorded is used as it is now, with a notice on stderr
    naming the files and both hashes: evaluating on edited data is a fair question, but its figures are
    not the run's."""
    path = Path(target)
    if path.is_file():
        source, payload = str(path), load_checkpoint(path)
        run = payload.get("mlflow_run_id")
        what = f"checkpoint {source}" + (f" (MLflow run {run})" if isinstance(run, str) else "")
    elif path.suffix == ".pt" or os.sep in target:
        raise ExperimentError(f"{target!r} is neither a checkpoint file nor an MLflow run id: no file {path.resolve()}")
    else:
        tracking.check_store()  # an unreachable store is said at once, not after MLflow's retries
        source = f"runs:/{target}/checkpoints/best.pt"
        with tempfile.TemporaryDirectory(prefix="qattn-evaluate-") as scratch:
            try:
                downloaded = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=scratch)
            except Exception as err:  # noqa: BLE001 - MLflow raises several kinds for "not there"
                if (kind := run_kind(target)) is not None and not kind.network:
                    raise BagOfWordsRun(target, kind) from None
                store = mask_uri(mlflow.get_tracking_uri())
                raise ExperimentError(
                    f"{target!r} is neither a checkpoint file nor an MLflow run (at {store}) holding "
                    f"checkpoints/best.pt: {str(err)[:200]}"
                ) from None
            payload = load_checkpoint(Path(downloaded), name=source)
        what = f"MLflow run {target}"
    config = config_from_toml(payload["config"], source=f"the config saved in {source}")
    dataset = load_dataset(config.data)
    if changed := data_changes(payload.get("data_sha256") or {}, dataset.hashes):
        tracking.notice(f"{what} was trained and tested on other data: {changed}. What follows is on the data as it "
                        "is now, not the data the run was trained and tested on (the run's own figures are its metrics)")
    if dataset.label_names != payload["label_names"]:
        raise ExperimentError(
            f"the data now gives classes {dataset.label_names}, the checkpoint was trained on {payload['label_names']}"
        )
    try:
        inputs = saved_inputs(config, dataset, payload["tokenizer"])  # an encoder is located and checked by hash
        model = build_model(config.model, inputs.vocab_size, dataset.num_classes, embed=inputs.embed)
        model.load_state_dict(payload["model"])
    except ConfigError:  # the encoder's folder or weights: the message names them and the fix
        raise
    except Exception as err:  # noqa: BLE001 - a bad tokenizer, weights of other shapes: not a checkpoint of its config
        raise unusable(source, f"it does not fit its own config: {first_lines(err)}") from None
    if changed := changes(payload.get("encoder_sha256") or {}, inputs.source):
        tracking.notice(f"{what} was trained on another encoder: {changed}. What follows reads the encoder as it is "
                        "now, not the one the run was trained with (the run's own figures are its metrics)")
    model.eval()
    return SavedModel(model, config, inputs, dataset, source, payload.get("mlflow_run_id"))


def run_kind(run_id: str) -> AttentionKind | None:
    """The attention kind an MLflow run was trained with (None: no such run, or a kind not registered)."""
    try:
        attention = mlflow.MlflowClient().get_run(run_id).data.params.get("model.attention")
    except Exception:  # noqa: BLE001 - not a run id, under any of MLflow's exception types
        return None
    return KINDS.get(attention) if attention in KINDS else None


def evaluate_saved(target: str, split: str = "test") -> tuple[Metrics, ExperimentConfig, str]:
    """Evaluate a best checkpoint, given as a file or as the MLflow run id that holds it."""
    saved = load_saved(target)
    metrics = evaluate(saved.model, saved.encoded(split), saved.dataset.num_classes, saved.config.train.batch_size)
    return metrics, saved.config, saved.path
