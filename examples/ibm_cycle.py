"""The IBM hardware cycle from Python: train, plan, submit, status, retrieve; offline on a fake device.

``qattn ibm plan|submit|status|retrieve`` are these calls (``from qattn.ibm import ...``). A fake device
(``fake_manila``: a 5-qubit Falcon snapshot with its noise) runs in Qiskit Runtime's local testing mode,
inside ``submit`` and ``retrieve``, so nothing leaves the machine; an IBM device name (``ibm_fez``) with a
saved Qiskit account runs the same code on hardware, where ``retrieve`` returns False until a stage's jobs
are done (this script then asks again every --poll seconds; the CLI leaves that to you).
The model is the quickstart's, trained here into a SQLite MLflow store in --workdir; the journal folder
there keeps every job id, and the hardware-vs-exact comparison is an MLflow run under the model's run.

    python examples/ibm_cycle.py --workdir work                  # quickstart, 2 epochs, gaussian, doc 0: ~2 min
    python examples/ibm_cycle.py --workdir work --ideal --resilience-level 0 --set train.epochs=1 ...
"""

import argparse
import time
from pathlib import Path

import mlflow

from qattn.config import load_config
from qattn.experiment import run_experiment
from qattn.ibm import Options, plan, retrieve, status, submit
from qattn.ibm.planning import STAGE_HEADER, aligned, stage_rows

QUICKSTART = Path(__file__).resolve().parents[1] / "experiments" / "quickstart.toml"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("ibm-cycle"), help="MLflow store, checkpoints, journals")
    parser.add_argument("--config", type=Path, default=QUICKSTART)
    parser.add_argument("--kernel", choices=["fidelity", "gaussian"], default="gaussian")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--backend", default="fake_manila")
    parser.add_argument("--docs", default="0", help="test documents: 0:4 or 0,3,7")
    parser.add_argument("--shots", type=int, default=256)
    parser.add_argument("--resilience-level", type=int, default=1, choices=[0, 1, 2])
    parser.add_argument("--ideal", action="store_true", help="fake devices: simulate without the device's noise")
    parser.add_argument("--poll", type=float, default=300, help="IBM devices: seconds between retrieves")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, as `qattn train --set`")
    args = parser.parse_args(argv)
    start, _, stop = args.docs.partition(":")
    docs = list(range(int(start), int(stop))) if stop else [int(d) for d in args.docs.split(",")]

    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{work / 'mlflow.db'}"  # a store of its own, with the artifacts beside it
    config = load_config(args.config, [
        "model.attention=quantum", f"model.kernel={args.kernel}", f"train.epochs={args.epochs}",
        f"train.seed={args.seed}",
        f"train.output_dir={work / 'runs'}", f"tokenizer.cache_dir={work / 'tokenizers'}",
        f"tracking.uri={uri}", f"tracking.artifacts={work / 'artifacts'}",
        "tracking.experiment=ibm-cycle", *args.overrides,
    ])
    model = run_experiment(config, restart=True)  # also points MLflow at the store, where plan and submit find the run
    print(f"trained {model.run_name}: MLflow run {model.run_id}, test accuracy {model.test.accuracy:.4f}")

    options = Options(shots=args.shots, resilience_level=args.resilience_level, seed_simulator=args.seed)
    plans, model_kernel, _ = plan(model.run_id, args.backend, options, split="test", docs=docs)
    print(f"\nplan on {args.backend}, test documents {docs}, {args.shots} shots per circuit (nothing sent):")
    print("\n".join(aligned(STAGE_HEADER, stage_rows(plans, model_kernel))))  # the table `qattn ibm plan` prints

    journal = work / "ibm-jobs" / f"{model.run_id}-{args.backend}"
    submit(model.run_id, args.backend, options, split="test", docs=docs, folder=journal, ideal=args.ideal)
    record, problems = status(journal)
    print(f"\nstatus: {len(record.stages)} stage(s) submitted, jobs {[job.status for job in record.jobs]}, "
          f"problems {problems}")
    retrieves = 1
    while not retrieve(journal):  # each call collects finished jobs and sends the next stage (one per layer)
        time.sleep(0 if args.backend.startswith("fake_") else args.poll)  # local jobs finish inside the call
        retrieves += 1
    record, _ = status(journal)
    print(f"\nretrieved: {record.finished}, after {retrieves} retrieve(s); {len(record.jobs)} job(s) in {journal}")

    client = mlflow.MlflowClient(uri)
    run = client.get_run(record.mlflow_run_id)  # the comparison retrieve printed, as MLflow keeps it
    print(f"MLflow run {record.mlflow_run_id}, child of {run.data.tags['mlflow.parentRunId']}: "
          f"{len(run.data.metrics)} metrics, artifacts {[a.path for a in client.list_artifacts(run.info.run_id)]}")
    print(f"prediction agreement hardware vs exact: {run.data.metrics['prediction_agreement']:.4f}")


if __name__ == "__main__":
    main()
