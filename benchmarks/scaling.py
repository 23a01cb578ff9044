"""Scaling out on one machine: torchrun data parallelism, and Aer circuit batches on a Dask cluster.

    python benchmarks/scaling.py                       # both parts
    python benchmarks/scaling.py --part aer --shots 1024 --workers 2

Part "train": the same `qattn train` (quickstart, shrunk) in one process with 1 and W threads, and
under torchrun with W processes of one thread each: same global batch; seconds per epoch read back
from each MLflow run (experiment "scaling-benchmark" of --tracking-uri). Part "aer": one sampled quantum attention layer (forward + parameter-shift
backward) in process, on a ProcessPoolExecutor and on a local Dask cluster of W single-threaded
workers, all with the same max_job_size (so the same sub-jobs and seeds: the outputs are checked equal).

On a machine of W cores, the ratios say what splitting costs or saves there; across machines the
gain comes from cores that one machine does not have.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

QUICKSTART = Path(__file__).resolve().parents[1] / "experiments" / "quickstart.toml"
EXPERIMENT = "scaling-benchmark"


def train_seconds(workers: int, docs: int, epochs: int, attention: str, store: str) -> None:
    from mlflow.tracking import MlflowClient

    print(f"\n## torchrun: quickstart ({attention}), {docs} training documents, {epochs} epochs, {workers} cores")
    print(f"MLflow store {store}, experiment {EXPERIMENT}")
    print(f"{'setting':<34} {'s/epoch':>8} {'ratio':>6}  MLflow run")
    client, base = MlflowClient(store), None
    with tempfile.TemporaryDirectory() as folder:
        for processes, threads in ((1, 1), (1, workers), (workers, 1)):
            overrides = [
                f"model.attention={attention}", f"data.synthetic.train_docs={docs}", f"train.epochs={epochs}",
                "train.patience=100", f"train.threads={threads}", "tracking.system_metrics=false",
                f"train.output_dir={folder}/runs-{processes}x{threads}", f"tokenizer.cache_dir={folder}/tokenizers",
                f"tracking.uri={store}", f"tracking.experiment={EXPERIMENT}", "tracking.attention_maps=0",
            ]
            args = [a for o in overrides for a in ("--set", o)]
            launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
            command = [*(launcher if processes > 1 else [sys.executable]), "-m", "qattn.cli", "train", str(QUICKSTART), *args]
            done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
            if done.returncode:
                sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
            run_id = done.stdout.strip().split()[-1]  # the results table ends with the MLflow run id
            history = client.get_metric_history(run_id, "epoch/seconds")
            seconds = sum(m.value for m in history) / len(history)
            base = base or seconds
            label = f"1 process x {threads} threads" if processes == 1 else f"torchrun, {processes} processes x 1 thread"
            print(f"{label:<34} {seconds:>8.2f} {base / seconds:>5.2f}x  {run_id}")


def aer_seconds(workers: int, shots: int, tokens: int, job_size: int, repeats: int) -> None:
    from distributed import Client, LocalCluster

    from qattn import QuantumMultiheadAttention
    from qattn.executors import SampledAerExecutor

    print(f"\n## Aer, sampled ({shots} shots): one fidelity layer, 2 documents x {tokens} tokens, 2 heads, 4 qubits;"
          f" forward + backward; sub-jobs of {job_size} bindings")
    print(f"{'where':<34} {'seconds':>8} {'ratio':>6}")
    x = torch.randn(2, tokens, 16, generator=torch.Generator().manual_seed(0))
    with LocalCluster(n_workers=workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster, \
            Client(cluster) as dask, ProcessPoolExecutor(workers) as pool:
        reference, base = None, None
        for where, spread in (("in process", None), (f"ProcessPoolExecutor({workers})", pool), (f"Dask, {workers} workers", dask)):
            executor = SampledAerExecutor(shots=shots, seed=7, cluster=spread, max_job_size=job_size)
            torch.manual_seed(0)
            layer = QuantumMultiheadAttention(16, 2, n_qubits=4, executor=executor)

            def step():
                layer.zero_grad()
                out, _ = layer(x, x, x)
                out.square().mean().backward()
                return out.detach()

            out = step()  # warm-up: programs built, workers import Aer
            start = time.perf_counter()
            for _ in range(repeats):
                step()
            seconds = (time.perf_counter() - start) / repeats
            reference = out if reference is None else reference
            assert torch.equal(out, reference), f"{where}: outputs differ from the in-process run"
            base = base or seconds
            print(f"{where:<34} {seconds:>8.2f} {base / seconds:>5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["train", "aer", "both"], default="both")
    parser.add_argument("--workers", type=int, default=2, help="processes / Dask workers (and cores used)")
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--attention", choices=["quantum", "classical"], default="quantum")
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="where the training runs are recorded")
    parser.add_argument("--shots", type=int, default=1024)
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--job-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    if args.part in ("train", "both"):
        train_seconds(args.workers, args.docs, args.epochs, args.attention, args.tracking_uri)
    if args.part in ("aer", "both"):
        aer_seconds(args.workers, args.shots, args.tokens, args.job_size, args.repeats)


if __name__ == "__main__":
    main()
