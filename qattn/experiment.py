"""One experiment run, start to end: data -> tokenizer -> model -> Trainer, recorded in MLflow."""

from __future__ import annotations

import shutil
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import torch
from mlflow.exceptions import MlflowException
from tokenizers import Tokenizer

from qattn import tracking
from qattn.artifacts import attention_figure, circuit_files, confusion_figure, learning_curves_figure
from qattn.attention import parameter_counts
from qattn.config import ConfigError, ExperimentConfig, config_from_toml, digest, dump_config
from qattn.data import TextDataset, load_dataset
from qattn.distributed import Ranks, process_group
from qattn.model import TextClassifier, build_model
from qattn.tokenizer import build_tokenizer, encode
from qattn.trainer import EncodedSplit, Metrics, Trainer, evaluate, pad_batch, seed_everything


class ExperimentError(RuntimeError):
    """A run that cannot start as asked; the message says what to do."""


@dataclass
class RunResult:
    run_id: str
    run_name: str
    tracking_uri: str
    test: Metrics
    best_epoch: int
    epochs_run: int
    seconds_per_epoch: float
    docs_per_s: float
    tokens_per_s: float
    parameters: dict[str, int]


def checkpoint_dir(config: ExperimentConfig) -> Path:
    """``<output_dir>/<run name>-<hash>``: the hash covers everything that shapes training (not where
    results go, nor the grid around it), so a changed config never resumes, or overwrites, another
    config's checkpoints."""
    identity = digest(config, exclude={"tracking": True, "compare": True, "train": {"output_dir"}}, length=8)
    return Path(config.train.output_dir) / f"{tracking.run_name(config)}-{identity}"


def run_experiment(config: ExperimentConfig, *, resume: bool = False, restart: bool = False, nested: bool = False) -> RunResult:
    """Train and test one model; ``resume`` continues from the run's last checkpoint; ``nested`` makes
    the MLflow run a child of the active run (a grid's parent run). Under torchrun every process
    calls this; rank 0 alone writes the MLflow run and the checkpoints (:mod:`qattn.distributed`)."""
    if resume and restart:
        raise ExperimentError("--resume and --restart exclude each other: continue the run, or start it over")
    with process_group(config.train.device) as ranks:
        return train_and_test(config, ranks, resume=resume, restart=restart, nested=nested)


def train_and_test(config: ExperimentConfig, ranks: Ranks, *, resume: bool, restart: bool, nested: bool) -> RunResult:
    uri = ranks.from_main(tracking.connect(config) if ranks.main else None)
    name = tracking.run_name(config)
    run_dir = checkpoint_dir(config)
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
    # One tokenizer for all ranks: rank 0 trains (or loads) it, the others receive it.
    tokenizer = Tokenizer.from_str(ranks.from_main(build_tokenizer(dataset.train.texts, config.tokenizer).to_str() if ranks.main else None))
    train, dev, test = (
        EncodedSplit(encode(tokenizer, split.texts, config.model.max_length), split.labels)
        for split in (dataset.train, dataset.dev, dataset.test)
    )
    seed_everything(config.train.seed)
    try:
        model = build_model(config.model, tokenizer.get_vocab_size(), dataset.num_classes).to(ranks.device)
    except (ValueError, ImportError) as err:  # e.g. an unknown fake backend, a GPU that is not there
        raise ConfigError(f"model: {err}") from None

    checkpoint = torch.load(last, weights_only=True, map_location=ranks.device) if resume else None
    run_id = checkpoint["mlflow_run_id"] if checkpoint else None
    if run_id is not None and ranks.main:
        try:
            mlflow.MlflowClient().get_run(run_id)
        except MlflowException:
            raise ExperimentError(
                f"the MLflow run {run_id} of {last} is not in {uri} (deleted, or logged to another store); "
                "resume against the store it was logged to, or pass --restart"
            ) from None
    recording = partial(mlflow.start_run, run_id=run_id, run_name=name, nested=nested, log_system_metrics=config.tracking.system_metrics)
    with recording() if ranks.main else nullcontext() as run:
        resolved = dump_config(config)
        if ranks.main and not resume:
            tracking.log_run_metadata(config, parameter_counts(model))
            mlflow.log_text(resolved, "config.toml")
        if ranks.main:  # a tag, not a param: a resumed run may have another world size
            mlflow.set_tag("world_size", ranks.world_size)
        extra = {
            "config": resolved,
            "tokenizer": tokenizer.to_str(),
            "label_names": dataset.label_names,
            "mlflow_run_id": ranks.from_main(run.info.run_id if ranks.main else None),
        }
        trainer = Trainer(
            model, train, dev, dataset.num_classes, config.train, run_dir, extra,
            log=lambda metrics, step: mlflow.log_metrics(metrics, step=step) if ranks.main else None, ranks=ranks,
        )
        if checkpoint:
            trainer.resume(checkpoint)
        state = trainer.fit()

        model.load_state_dict(torch.load(trainer.best_path, weights_only=True, map_location=ranks.device)["model"])
        test_metrics = evaluate(model, test, dataset.num_classes, config.train.batch_size, ranks)
        if ranks.main:
            mlflow.log_metrics({**test_metrics.scalars("test"), "best_epoch": state.best_epoch})
            log_artifacts(config, model, tokenizer, dataset, dev, test_metrics, state.history)
            mlflow.log_artifact(str(trainer.best_path), "checkpoints")

    epochs = state.history
    return RunResult(
        run_id=extra["mlflow_run_id"],
        run_name=name,
        tracking_uri=uri,
        test=test_metrics,
        best_epoch=state.best_epoch,
        epochs_run=len(epochs),
        seconds_per_epoch=sum(r["epoch/seconds"] for r in epochs) / len(epochs),
        docs_per_s=sum(r["epoch/docs_per_s"] for r in epochs) / len(epochs),
        tokens_per_s=sum(r["epoch/tokens_per_s"] for r in epochs) / len(epochs),
        parameters=parameter_counts(model),
    )


def log_artifacts(config, model: TextClassifier, tokenizer: Tokenizer, dataset: TextDataset, dev: EncodedSplit,
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
            chunk = dev.ids[doc][: config.model.chunk_size]
            tokens = [tokenizer.decode([i]) for i in chunk]
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
    tokenizer: Tokenizer
    dataset: TextDataset
    path: Path
    run_id: str | None  # the MLflow run that trained it

    def encoded(self, split: str) -> EncodedSplit:
        data = getattr(self.dataset, split)
        return EncodedSplit(encode(self.tokenizer, data.texts, self.config.model.max_length), data.labels)


def load_saved(target: str) -> SavedModel:
    """A best checkpoint, given as a file or as the MLflow run id that holds it."""
    path = Path(target)
    if not path.is_file():
        try:
            path = Path(mlflow.artifacts.download_artifacts(run_id=target, artifact_path="checkpoints/best.pt"))
        except Exception as err:  # noqa: BLE001 - MLflow raises several kinds for "not there"
            raise ExperimentError(
                f"{target!r} is neither a checkpoint file nor an MLflow run (at {mlflow.get_tracking_uri()}) "
                f"holding checkpoints/best.pt: {str(err)[:200]}"
            ) from None
    try:
        payload = torch.load(path, weights_only=True)
        saved_config, saved_tokenizer, weights = payload["config"], payload["tokenizer"], payload["model"]
    except Exception as err:  # noqa: BLE001 - unpickling, zip and key errors all mean "not ours"
        raise ExperimentError(f"{path} is not a qattn checkpoint ({type(err).__name__}: {str(err)[:120]})") from None
    config = config_from_toml(saved_config, source=f"the config saved in {path}")
    tokenizer = Tokenizer.from_str(saved_tokenizer)
    dataset = load_dataset(config.data)
    if dataset.label_names != payload["label_names"]:
        raise ExperimentError(
            f"the data now gives classes {dataset.label_names}, the checkpoint was trained on {payload['label_names']}"
        )
    model = build_model(config.model, tokenizer.get_vocab_size(), dataset.num_classes)
    model.load_state_dict(weights)
    model.eval()
    return SavedModel(model, config, tokenizer, dataset, path, payload.get("mlflow_run_id"))


def evaluate_saved(target: str, split: str = "test") -> tuple[Metrics, ExperimentConfig, Path]:
    """Evaluate a best checkpoint, given as a file or as the MLflow run id that holds it."""
    saved = load_saved(target)
    metrics = evaluate(saved.model, saved.encoded(split), saved.dataset.num_classes, saved.config.train.batch_size)
    return metrics, saved.config, saved.path
