"""A comparison grid, then its results read back from MLflow with plain ``mlflow`` calls, and its report.

``run_grid`` is ``qattn compare``: every cell (attention kind x seed) is the same config with only the
kind and ``train.seed`` changed, trained as a child run of one MLflow parent run that carries the
grid's tag. Everything a grid produced is in MLflow, so its results are a search away: the parent by
its tag, the cells by their parent, accuracy and settings from their metrics and params. Running the
script again on the same --workdir resumes the grid (finished cells are skipped); more --seeds extend it.

    python examples/grid_results.py --workdir work                       # dot vs fidelity x 2 seeds: ~6 min, 2 cores
    python examples/grid_results.py --workdir work --seeds 1 --set train.epochs=1 ...  # smaller
"""

import argparse
import shlex
import statistics
import sys
from pathlib import Path

import mlflow

from qattn.config import load_config
from qattn.grid import GRID_TAG, run_grid
from qattn.report import write_report

QUICKSTART = Path(__file__).resolve().parents[1] / "experiments" / "quickstart.toml"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("grid-results"), help="MLflow store, checkpoints, report")
    parser.add_argument("--config", type=Path, default=QUICKSTART)
    parser.add_argument("--kinds", nargs="+", default=["dot", "fidelity"],
                        help="compare kinds: dot, fidelity, gaussian, annealing, ...")
    parser.add_argument("--seeds", type=int, default=2, help="seeds 0..N-1")
    parser.add_argument("--experiment", default="grid-results")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, as `qattn compare --set`")
    args = parser.parse_args(argv)

    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{work / 'mlflow.db'}"  # a store of its own, with the artifacts beside it
    config = load_config(args.config, [
        f"compare.kinds={args.kinds!r}", f"compare.seeds={list(range(args.seeds))!r}",
        f"train.output_dir={work / 'runs'}", f"tokenizer.cache_dir={work / 'tokenizers'}",
        f"tracking.uri={uri}", f"tracking.artifacts={work / 'artifacts'}",
        f"tracking.experiment={args.experiment}", *args.overrides,
    ])
    parent_id, outcomes = run_grid(config, shlex.join([sys.executable, *sys.argv]))
    print(f"grid parent run {parent_id}: {len(outcomes)} cells finished")

    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name(args.experiment).experiment_id
    parent = client.search_runs([experiment], f"tags.{GRID_TAG} != ''", order_by=["attributes.start_time DESC"],
                                max_results=1)[0]  # the latest grid of the experiment
    children = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
                                  order_by=["attributes.start_time ASC"])
    print(f"\nfrom MLflow: grid {parent.data.tags[GRID_TAG]}, parent run {parent.info.run_id}, "
          f"{len(children)} child runs")
    print(f"{'attention':<22}{'seed':>5}{'test acc':>10}  run")
    by_kind: dict[str, list[float]] = {}
    for run in children:
        params, accuracy = run.data.params, run.data.metrics["test/accuracy"]
        quantum = params["model.attention"] == "quantum"
        kind = params["model.attention"] + (f" {params['model.kernel']}" if quantum else "")
        by_kind.setdefault(kind, []).append(accuracy)
        print(f"{kind:<22}{params['train.seed']:>5}{accuracy:>10.4f}  {run.info.run_id}")
    for kind, values in by_kind.items():
        spread = f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else ""
        print(f"mean test accuracy, {kind}: {statistics.mean(values):.4f}{spread} over {len(values)} seed(s)")

    report = write_report(parent.info.run_id, results=work / "results")
    print(f"\nreport: {report} (plots in {report.with_suffix('')}/, also logged to the parent run)")
    print(report.read_text().splitlines()[0])


if __name__ == "__main__":
    main()
