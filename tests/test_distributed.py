"""Scaling out: data-parallel training under torchrun (gloo, 2 CPU processes), and Aer circuit batches
on a local Dask cluster (two workers on 127.0.0.1)."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from tests.conftest import QUICKSTART, tiny_overrides

# dropout 0: the only randomness left is the shared initialisation and batch order, so a 2-process run
# must end where one process ends (per-rank dropout streams would differ by design). 97 documents in
# batches of 8: each epoch has a batch of one document, where rank 1 joins the all-reduce at weight 0.
EXACT = ["model.dropout=0.0", "train.threads=1", "train.epochs=3", "data.synthetic.train_docs=97"]


def train(overrides, *flags, processes=1, cwd=None, **popen):
    args = [arg for override in overrides for arg in ("--set", override)]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
    command = [*(launcher if processes > 1 else [sys.executable]), "-m", "qattn.cli", "train", str(QUICKSTART), *args, *flags]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if popen:
        return subprocess.Popen(command, env=env, cwd=cwd, start_new_session=True, **popen)
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def only_run(store):
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("quickstart").experiment_id])
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return client, runs[0]


def last_checkpoint(folder):
    (path,) = folder.glob("*/last.pt")
    return torch.load(path, weights_only=True)


def assert_same_weights(actual, expected):
    for name, tensor in expected["model"].items():
        torch.testing.assert_close(actual["model"][name], tensor, rtol=1e-4, atol=1e-5, msg=name)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The reference: one process, same global batch (train.batch_size) and seed."""
    folder = tmp_path_factory.mktemp("single")
    train(tiny_overrides(folder) + EXACT, cwd=folder)
    return last_checkpoint(folder / "runs"), only_run(f"sqlite:///{folder / 'mlflow.db'}")


def test_two_torchrun_processes_train_like_one(tmp_path, tiny, single):
    reference, (ref_client, ref_run) = single
    store = f"sqlite:///{tmp_path / 'ddp.db'}"
    done = train(tiny + EXACT + [f"train.output_dir={tmp_path / 'ddp'}", f"tracking.uri={store}"], processes=2)
    assert done.stdout.count("synthetic-quantum-fidelity-q2-h2-s0") == 1  # rank 0 reports, rank 1 does not

    distributed = last_checkpoint(tmp_path / "ddp")
    assert distributed["state"]["global_step"] == reference["state"]["global_step"] == 3 * 13
    assert_same_weights(distributed, reference)

    client, run = only_run(store)  # one MLflow run, written by rank 0
    assert run.data.tags["world_size"] == "2"
    assert run.data.params["train.batch_size"] == "8"  # the global batch
    for key in ("train/epoch_loss", "dev/loss", "dev/accuracy", "dev/macro_f1"):
        got = [m.value for m in sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)]
        want = [m.value for m in sorted(ref_client.get_metric_history(ref_run.info.run_id, key), key=lambda m: m.step)]
        np.testing.assert_allclose(got, want, rtol=1e-5, err_msg=key)  # reduced over both ranks' shares
    for key in ("test/accuracy", "test/macro_f1"):
        assert run.data.metrics[key] == ref_run.data.metrics[key]
    assert {a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")} == {"checkpoints/best.pt"}


def test_a_torchrun_checkpoint_resumes_in_one_process(tmp_path, tiny, single):
    reference, _ = single
    overrides = tiny + EXACT + ["train.checkpoint_every=5"]
    process = train(overrides, processes=2, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not list((tmp_path / "runs").glob("*/last.pt")):
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # torchrun and both workers
    process.wait(timeout=30)
    assert last_checkpoint(tmp_path / "runs")["state"]["global_step"] < 3 * 13

    train(overrides, "--resume")  # world size 1 now
    assert_same_weights(last_checkpoint(tmp_path / "runs"), reference)


def test_compare_refuses_torchrun(tiny, monkeypatch):
    from qattn.config import load_config
    from qattn.experiment import ExperimentError
    from qattn.grid import run_grid

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ExperimentError, match="under torchrun, train each cell with `qattn train"):
        run_grid(load_config(QUICKSTART, tiny), "qattn compare")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_named(tiny):
    from click.testing import CliRunner

    from qattn.cli import main

    out = CliRunner().invoke(main, ["train", str(QUICKSTART), *[a for o in tiny for a in ("--set", o)], "--set", "train.device=cuda"])
    assert out.exit_code != 0
    assert "train.device = 'cuda' but torch sees no GPU here; use train.device = 'cpu'" in out.output


@pytest.fixture(scope="module")
def dask_scheduler():
    distributed = pytest.importorskip("distributed", reason="Dask is optional: pip install 'qattn[dask]'")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        yield cluster.scheduler_address


@pytest.mark.parametrize("aer", [["model.kernel=gaussian", "model.aer.shots=256", "model.aer.seed=5"], []], ids=["sampled-gaussian", "exact-fidelity"])
def test_aer_evaluation_on_a_dask_cluster_matches_in_process(tiny, dask_scheduler, aer):
    """The configured path users take (model.aer.cluster = a scheduler address): same scores."""
    import distributed

    from qattn.config import load_config
    from qattn.data import load_dataset
    from qattn.model import build_model
    from qattn.tokenizer import build_tokenizer, encode
    from qattn.trainer import EncodedSplit, evaluate, pad_batch

    base = load_config(QUICKSTART, tiny + ["model.executor=aer", "model.aer.max_job_size=100", *aer])
    dataset = load_dataset(base.data)
    tokenizer = build_tokenizer(dataset.train.texts, base.tokenizer)
    dev = EncodedSplit(encode(tokenizer, dataset.dev.texts, base.model.max_length), dataset.dev.labels)
    torch.manual_seed(0)
    local = build_model(base.model, tokenizer.get_vocab_size(), dataset.num_classes)
    clustered = build_model(
        load_config(QUICKSTART, [*tiny, "model.executor=aer", "model.aer.max_job_size=100", *aer,
                                 f"model.aer.cluster={dask_scheduler}"]).model,
        tokenizer.get_vocab_size(), dataset.num_classes,
    )
    clustered.load_state_dict(local.state_dict())
    local.eval(), clustered.eval()
    executor = clustered.local_blocks[0].attn.kernel.executor
    assert executor.cluster is not None and executor.cluster.scheduler_info()["workers"]

    batch = pad_batch(dev.ids, [0, 1, 2, 3])
    with torch.no_grad(), distributed.get_task_stream(executor.cluster) as tasks:
        torch.testing.assert_close(clustered(batch).logits, local(batch).logits, rtol=0, atol=1e-6)
    workers = {task["worker"] for task in tasks.data}
    assert len(tasks.data) >= 4 and len(workers) == 2  # sub-jobs of 100 bindings, on both workers
    assert evaluate(clustered, dev, dataset.num_classes, 8) == evaluate(local, dev, dataset.num_classes, 8)
    executor.cluster.close()


def test_two_torchrun_processes_build_the_feature_cache_together(tmp_path, tiny):
    """Each rank encodes its own blocks of a frozen encoder's feature cache; the entries equal one process's."""
    from qattn.config import load_config
    from qattn.data import load_dataset
    from qattn.inputs import encoded_data
    from tests.encoders import save_tiny_encoder

    encoder = save_tiny_encoder(tmp_path / "encoder")
    footing = [f"model.backbone.name={encoder}", "model.backbone.dtype=float32", "model.chunk_size=16",
               "model.attention=classical", "train.epochs=1", "train.threads=1", "data.synthetic.train_docs=200"]
    together = [*tiny, *footing, f"model.backbone.cache_dir={tmp_path / 'together'}"]
    train(together, processes=2)  # 200 training documents: four blocks, two a rank
    config = load_config(QUICKSTART, [*tiny, *footing, f"model.backbone.cache_dir={tmp_path / 'alone'}"])
    alone = encoded_data(config, load_dataset(config.data))
    for split in alone.cached.values():
        built = tmp_path / "together" / split.folder.name
        assert (built / "meta.json").is_file() and not list((tmp_path / "together").glob("*.partial"))
        np.testing.assert_array_equal(np.load(built / "offsets.npy"), split.offsets)
        np.testing.assert_allclose(np.load(built / "features.npy"), split.features, rtol=1e-6, atol=1e-6)
