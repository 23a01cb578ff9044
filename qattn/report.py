"""Reports of a comparison grid, from MLflow only (nothing is re-trained or re-evaluated).

    qattn report imdb                 # the latest grid parent run in MLflow experiment "imdb"
    qattn report 3f2c...              # a grid parent run id
    qattn report 3f2c... 9b1e...      # several grids' rows in one report, named by the first grid
    qattn report 3f2c... --results results/long --name 20newsgroups-2048   # another folder and file name

Several grids make one report when one config's kinds ran as separate grids (a grid's id includes its
kinds, so a kind added later is its own grid: ``qattn compare CONFIG --set 'compare.kinds=["annealing"]'``).
Before merging, :func:`check_comparable` refuses grids whose runs differ in anything but the attention
kind and the seed: data, tokenizer, model size, training budget and optimiser must be the same. Every
report first checks that its runs read data of the same content (:func:`check_same_data`: the files'
hashes, not their paths), and pairs two runs' test answers by document (:func:`paired_correct`).

Writes ``results/<name>.md`` (mean +- std over seeds per attention kind of test accuracy and
macro-F1, and of dev accuracy at the chosen checkpoint, the figure hyper-parameters are chosen on;
parameter counts, epoch time, every MLflow run id and the command that ran the grid) and its plots under
``results/<name>/``, and logs both to the parent run (each grid's). The report names the command that
regenerates it by the parent run ids, which keep meaning the same grids after newer grids land in the
experiment.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
from mlflow.entities import Run  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from qattn.config import CHOICE_SECTIONS, PATH_KEYS, dotted  # noqa: E402
from qattn.data import HASH_PARAM, OVERLAP_PARAM  # noqa: E402
from qattn.grid import COMMAND_TAG, GRID_TAG, NAME_TAG, finished_children  # noqa: E402
from qattn.identity import LATER_DEFAULTS, PLACEMENT  # noqa: E402
from qattn.kinds import kind_of, owner_reads  # noqa: E402
from qattn.stats import bootstrap_difference, correct, mcnemar, seed_difference  # noqa: E402
from qattn.tracking import EPOCH_TAG, PREDICTIONS, check_store  # noqa: E402
from qattn.uris import mask_uri  # noqa: E402

SUMMARY = "**Summary.** "  # the line of a report that the results index quotes


class ReportError(RuntimeError):
    """Nothing to report on; the message says what was looked for."""


@dataclass
class Kind:
    """The finished runs of one attention kind (all seeds)."""

    runs: list[Run] = field(default_factory=list)

    def metric(self, key: str) -> list[float]:
        return [run.data.metrics[key] for run in self.runs if key in run.data.metrics]

    def param(self, key: str) -> int:
        return int(self.runs[0].data.params[key])


def dev_curve(client: MlflowClient, run: Run) -> dict[int, float]:
    """Dev accuracy per epoch (the metric's step), as the run logged it."""
    return {p.step: p.value for p in client.get_metric_history(run.info.run_id, "dev/accuracy")}


def at_best_epoch(run: Run, curve: dict[int, float]) -> float | None:
    """A dev curve's value at the run's chosen checkpoint (the epoch with the best dev macro-F1); the
    run's ``best_epoch`` and its curve's steps count epochs the same way, from 1 or (older runs) 0."""
    best = run.data.metrics.get("best_epoch")
    return None if best is None else curve.get(int(best))


def best_epoch(run: Run) -> int | None:
    """The epoch of the run's chosen checkpoint, counted from 1 (runs without the epoch tag logged it from 0)."""
    best = run.data.metrics.get("best_epoch")
    if best is None:
        return None
    return int(best) + (0 if run.data.tags.get(EPOCH_TAG) == "1" else 1)


def kind_label(run: Run) -> str:
    """A report row's name: the attention kind and what tells its cells apart (kernel and qubits, width, solver)."""
    kind = kind_of(run.data.params)
    return f"{run.data.params['model.attention']} attention" if kind is None else kind.label(run.data.params)


def row_order(run: Run) -> tuple[int, int, str, int]:
    """The baseline ladder from the bottom (:attr:`qattn.kinds.AttentionKind.rung`: bag of words, then attention
    without scores, then every kind of attention), a kind's baseline rows (narrow classical heads) before its
    others, then each row's seeds in order."""
    kind = kind_of(run.data.params)
    rung = math.inf if kind is None else kind.rung  # a kind no longer registered: last
    baseline = kind is not None and kind.baseline(run.data.params)
    return rung, 0 if baseline else 1, kind_label(run), int(run.data.params.get("train.seed", 0))


def find_grid(client: MlflowClient, target: str) -> Run:
    """``target``: a grid parent run id, or an experiment name (its most recent grid)."""
    try:
        run = client.get_run(target)
        if GRID_TAG not in run.data.tags:
            raise ReportError(f"MLflow run {target} is not a grid parent run (it has no {GRID_TAG} tag)")
        return run
    except MlflowException:
        pass
    experiment = client.get_experiment_by_name(target)
    if experiment is None:
        raise ReportError(
            f"{target!r} is neither a run id nor an experiment in the MLflow store at "
            f"{mask_uri(mlflow.get_tracking_uri())}; "
            "pass the parent run id printed by `qattn compare`, or set --tracking-uri"
        )
    runs = client.search_runs([experiment.experiment_id], f"tags.{GRID_TAG} != ''", order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        raise ReportError(f"experiment {target!r} holds no grid; run `qattn compare` first")
    return runs[0]


@dataclass
class Grid:
    """A grid's parent run, its latest finished run per cell, and the target that named it."""

    target: str
    parent: Run
    runs: list[Run]

    @property
    def id(self) -> str:
        return self.parent.info.run_id


def load_grids(client: MlflowClient, targets: Sequence[str]) -> list[Grid]:
    grids: list[Grid] = []
    for target in targets:
        parent = find_grid(client, target)
        same = next((grid for grid in grids if grid.id == parent.info.run_id), None)
        if same is not None:
            raise ReportError(
                f"{same.target!r} and {target!r} are the same grid (parent run {same.id}); an experiment name "
                "means its latest grid: name each grid by the parent run id `qattn compare` printed"
            )
        runs = list(finished_children(parent.info.run_id, parent.info.experiment_id).values())
        if not runs:
            raise ReportError(f"grid run {parent.info.run_id} has no finished cells yet")
        grids.append(Grid(target, parent, runs))
    return grids


CELL_KEYS = frozenset({
    "model.attention", "model.kernel", "model.n_qubits", "model.qk_dim", "model.annealing.solver", "train.seed",
})
"""What tells a report's rows and seeds apart (with the solver, which names an annealing row)."""
RECORD_KEYS = frozenset({
    "name", "tokenizer.cache_dir", "train.output_dir", "train.checkpoint_every", "train.log_every", "train.threads",
    *dotted(PLACEMENT),
})
"""Where and how a run computed and was recorded, not what it learnt: the config's name (``data`` names the
data), folders, checkpoint and logging intervals, threads and placement."""
RECORD_SECTIONS = ("tracking.", "compare.", "version.", "parameters.", HASH_PARAM, OVERLAP_PARAM, "backbone.cache.",
                   "backbone.folder")
"""The MLflow store, the grid's own kinds and seeds, package versions, parameter counts (a result of the kind),
the data's content hashes and overlap counts (compared by :func:`check_same_data`, which knows that runs
logged before them have none), and where an encoder's files and cached features were (its weights' and
config's hashes are compared)."""
LATER_PARAMS = frozenset({"backbone.config_sha256"})
"""Params first recorded after runs existed that lack them: such a run's value is unknown, not compared."""
NOT_LOGGED = "(not logged)"


def reads(params: dict[str, str], key: str) -> bool:
    """Whether a run of its attention kind reads ``key``. A run logs every section of its config, the other
    kinds' ones too, at values it never reads: a key a kind owns (:meth:`qattn.kinds.AttentionKind.owns`: its
    section, its circuit settings) is read by that kind only, a choice's options (:data:`CHOICE_SECTIONS`)
    only when it is chosen, and a kind that is no network (bag of words) reads the data and its own keys only."""
    kind = kind_of(params)  # None: a kind no longer registered, which counts as reading everything
    if kind is not None and not kind.network and not kind.owns(key):
        return key.startswith(("data.", *kind.inputs))
    if not owner_reads(kind, key):
        return False
    section = next((section for section in CHOICE_SECTIONS if key.startswith(section + ".")), None)
    return section is None or params.get(CHOICE_SECTIONS[section]) == section.rpartition(".")[2]


def logged(params: dict[str, str], key: str) -> str:
    """A param as the run logged it; a setting added after the run (:data:`LATER_DEFAULTS`) as the default
    that behaves as the run did."""
    if key in params:
        return params[key]
    later = dotted(LATER_DEFAULTS)
    return str(later[key]) if key in later else NOT_LOGGED


def check_comparable(grids: list[Grid]) -> None:
    """Refuse grids whose rows would not compare like with like: runs differing in a param other than their
    cell's (:data:`CELL_KEYS`), the record's (:data:`RECORD_KEYS`, :data:`RECORD_SECTIONS`) and other kinds'
    settings (:func:`reads`), so the same data, tokenizer, model size, budget and optimiser; or two grids
    holding the same row and seed (a report counts each seed once). Where every run recorded its data's
    content hashes, the data's name and paths (:data:`qattn.config.PATH_KEYS`) are not compared: the same files
    copied elsewhere are the same data (:func:`check_same_data` compares the content)."""
    runs = [(grid, run) for grid in grids for run in grid.runs]
    hashed = all(any(key.startswith(HASH_PARAM) for key in run.data.params) for _, run in runs)
    paths = {f"data.{key}" for key in ("name", *PATH_KEYS)} if hashed else set()  # content: check_same_data
    keys = sorted({
        key for _, run in runs for key in run.data.params
        if key not in CELL_KEYS | RECORD_KEYS | paths and not key.startswith(RECORD_SECTIONS)
    })
    differing = []
    for key in keys:
        found = differences([(grid, logged(run.data.params, key) if reads(run.data.params, key)
                               and not (key in LATER_PARAMS and key not in run.data.params) else None)
                             for grid, run in runs])
        if found:
            differing.append(f"  - {key}: {found}")
    if differing:
        raise ReportError(
            f"grids {', '.join(grid.id for grid in grids)} cannot share a report; their runs differ in\n"
            + "\n".join(differing)
            + "\nA report's rows differ only in the attention kind and the seed: run the missing kinds with the first "
            "grid's config (`qattn compare CONFIG --set 'compare.kinds=[...]'`), or report the grids one by one"
        )
    cells: dict[tuple[str, str], str] = {}
    for grid, run in runs:
        cell = (kind_label(run), run.data.params.get("train.seed", "?"))
        if cells.setdefault(cell, grid.id) != grid.id:
            raise ReportError(
                f"grids {cells[cell]} and {grid.id} both hold {cell[0]}, seed {cell[1]}: a report counts each seed "
                "once; report the grids one by one"
            )


def differences(values_of_runs: list[tuple[Grid, str | None]]) -> str | None:
    """``"<value> in grid <ids>; ..."`` when the runs' values of a param (None: not compared) differ, else None."""
    values: dict[str, list[str]] = {}  # value -> the grids whose runs logged it
    for grid, found in values_of_runs:
        if found is not None:
            holders = values.setdefault(found, [])
            holders += [] if grid.id in holders else [grid.id]
    if len(values) < 2:
        return None
    return "; ".join(f"{found} in grid {', '.join(ids)}" for found, ids in values.items())


def check_same_data(grids: list[Grid]) -> list[str]:
    """Refuse runs that read data of other content: their ``data.sha256.*`` params (:func:`qattn.data.data_hashes`)
    differ, whatever the paths. Returns the report's warning for runs logged before qattn recorded those hashes,
    whose data can be told apart by their path only (none when every run has them)."""
    runs = [(grid, run) for grid in grids for run in grid.runs]
    keys = sorted({key for _, run in runs for key in run.data.params if key.startswith(HASH_PARAM)})
    differing = []
    for key in keys:
        found = differences([(grid, run.data.params.get(key)) for grid, run in runs])
        if found:
            differing.append(f"  - {key.removeprefix(HASH_PARAM)} ({key}): {found}")
    ids = ", ".join(grid.id for grid in grids)
    if differing:
        raise ReportError(
            f"the runs of grid{'s' if len(grids) > 1 else ''} {ids} were trained on different data:\n"
            + "\n".join(differing)
            + "\nA report compares models on the same data (the same file contents, whatever their paths): report "
            "the grids one by one, or run the missing kinds on the data the first grid read"
        )
    unknown = sorted({grid.id for grid, run in runs if not any(key.startswith(HASH_PARAM) for key in run.data.params)})
    if not unknown:
        return []
    return [(f"**Data identity unknown** for runs of grid {', '.join(unknown)}: logged before qattn recorded the "
             f"content hashes of their data ({HASH_PARAM}*), so this report could not check that every row read the "
             "same data.")]


def mean_and_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def mean_std(values: list[float], scale: float = 100.0, digits: int = 2) -> str:
    if not values:
        return "n/a"
    mean, std = mean_and_std(values)
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"


def title(runs: list[Run]) -> str:
    kinds = [kind_of(run.data.params) for run in runs]
    if all(kind is not None and not kind.network for kind in kinds):
        return "bag-of-words baselines"
    baselines = any(kind is not None and kind.baseline(run.data.params) for kind, run in zip(kinds, runs))
    return "quantum vs classical attention" + (", with the baseline ladder" if baselines else "")


def footing(runs: list[Run]) -> str:
    """What the networks read: trained embeddings, or the pretrained encoder (name, revision, weights hash)."""
    encoders = sorted({(p["model.backbone.name"], p["backbone.revision"], p["backbone.weights_sha256"])
                       for p in (run.data.params for run in runs) if "backbone.weights_sha256" in p})
    if not encoders:
        return "every model trained from scratch"
    named = "; ".join(f"`{name}` ({revision}, weights sha256 `{digest}`)" for name, revision, digest in encoders)
    return (f"the networks and the linear probe read the frozen encoder {named}, its token features cached once; "
            "the bag-of-words rungs read the text")


def generated_by(grids: list[Grid]) -> str:
    """The report's provenance: the command that regenerates it, the store, and the commands that ran the grids."""
    store = mask_uri(mlflow.get_tracking_uri())
    ran = [f"`{grid.parent.data.tags.get(COMMAND_TAG, 'unknown')}`" for grid in grids]
    if len(grids) == 1:
        return (f"Generated by `qattn report {grids[0].id}` (the grid's parent run) from MLflow ({store}). "
                f"The grid was run with {ran[0]}.")
    ran = [f"{command} (grid {grid.id})" for command, grid in zip(ran, grids)]
    return (f"Generated by `qattn report {' '.join(grid.id for grid in grids)}` (the grids' parent runs) from MLflow "
            f"({store}); their runs differ only in the attention kind, settings only it reads, and the seed. "
            f"The grids were run with {', '.join(ran[:-1])} and {ran[-1]}.")


def write_report(targets: str | Sequence[str], results: Path = Path("results"), name: str | None = None) -> Path:
    """One report of the grids ``targets`` names (parent run ids, or experiments: their latest grid), named
    ``name`` or else by the first grid's config."""
    client = MlflowClient(check_store())
    grids = load_grids(client, [targets] if isinstance(targets, str) else targets)
    unknown_data = check_same_data(grids)  # a grid extended after its data changed holds runs of other data
    if len(grids) > 1:  # one grid's cells share its config by construction
        check_comparable(grids)
    children = [run for grid in grids for run in grid.runs]
    kinds: dict[str, Kind] = {}
    for run in sorted(children, key=row_order):
        kinds.setdefault(kind_label(run), Kind()).runs.append(run)

    parent = grids[0].parent
    name = name or parent.data.tags.get(NAME_TAG, parent.info.run_name)
    folder = results / name
    folder.mkdir(parents=True, exist_ok=True)
    curves = {run.info.run_id: dev_curve(client, run) for run in children}  # one fetch per run
    dev = {run.info.run_id: at_best_epoch(run, curves[run.info.run_id]) for run in children}
    epoch_seconds = {
        label: [p.value for run in kind.runs for p in client.get_metric_history(run.info.run_id, "epoch/seconds")]
        for label, kind in kinds.items()
    }
    figures = {
        "learning_curves.png": learning_curves(kinds, curves),
        "accuracy_vs_parameters.png": accuracy_vs_parameters(kinds),
        "attention_maps.png": attention_maps(client, kinds),  # None when no run logged its attention maps
    }
    figures = {file: figure for file, figure in figures.items() if figure is not None}
    for file, figure in figures.items():
        figure.savefig(folder / file, dpi=120)
        plt.close(figure)

    summary = "; ".join(f"{label} {mean_std(kind.metric('test/accuracy'))}%" for label, kind in kinds.items())
    lines = [
        f"# {name}: {title(children)}",
        "",
        f"{SUMMARY}Test accuracy, mean ± std over seeds: {summary}.",
        "",
        generated_by(grids),
        *unknown_data,
        (f"Mean ± std over seeds; {footing(children)}; checkpoints chosen on dev macro-F1. "
         "Dev accuracy is at that checkpoint: it is what hyper-parameters are chosen on, never the test columns."),

        *constant_guess(client, children),
        "",
        "| attention | seeds | test accuracy [%] | test macro-F1 [%] | dev accuracy [%] | parameters quantum / classical / total | epoch [s] |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, kind in kinds.items():
        quantum, classical = kind.param("parameters.quantum"), kind.param("parameters.classical")
        seconds = statistics.mean(epoch_seconds[label]) if epoch_seconds[label] else float("nan")
        dev_values = [dev[run.info.run_id] for run in kind.runs if dev[run.info.run_id] is not None]
        lines.append(
            f"| {label} | {len(kind.runs)} | {mean_std(kind.metric('test/accuracy'))} | {mean_std(kind.metric('test/macro_f1'))} "
            f"| {mean_std(dev_values)} | {quantum:,} / {classical:,} / {quantum + classical:,} | {seconds:.1f} |"
        )
    lines += [
        "", "## Runs", "",
        "| attention | seed | test accuracy | test macro-F1 | dev accuracy | best epoch | MLflow run |", "|---|---|---|---|---|---|---|",
    ]
    for label, kind in kinds.items():
        for run in kind.runs:
            m, run_dev = run.data.metrics, dev[run.info.run_id]
            lines.append(
                f"| {label} | {run.data.params['train.seed']} | {m.get('test/accuracy', float('nan')):.4f} "
                f"| {m.get('test/macro_f1', float('nan')):.4f} | {'n/a' if run_dev is None else f'{run_dev:.4f}'} | {best_epoch(run) or 'n/a'} | `{run.info.run_id}` |"
            )
    lines += ["", *paired_comparisons(client, kinds)]
    lines += ["", "## Plots", ""]
    lines += [f"![{file}]({name}/{file})" for file in figures]
    report = results / f"{name}.md"
    report.write_text("\n".join(lines) + "\n")
    write_index(results)

    for grid in grids:
        client.log_artifact(grid.id, str(report), "report")
        for file in figures:
            client.log_artifact(grid.id, str(folder / file), "report")
    return report


@dataclass(frozen=True)
class Answers:
    """A run's test answers (:data:`qattn.tracking.PREDICTIONS`): label and prediction per document, and each
    document's id (None in the list: its record had none) and text hash (:func:`qattn.data.text_hash`); None
    for runs logged before qattn recorded them."""

    labels: list[int]
    predictions: list[int]
    ids: list[str | None] | None = None
    sha256: list[str] | None = None


def test_answers(client: MlflowClient, run: Run) -> Answers | None:
    """The run's test answers; None for a run that logged none."""
    with tempfile.TemporaryDirectory() as scratch:
        try:
            path = client.download_artifacts(run.info.run_id, PREDICTIONS, scratch)
        except (MlflowException, OSError):
            return None
        answers = json.loads(Path(path).read_text())
    return Answers(answers["labels"], answers["predictions"], answers.get("ids"), answers.get("sha256"))


def points(value: float) -> str:
    return f"{100 * value:+.2f}"


def constant_guess(client: MlflowClient, runs: list[Run]) -> list[str]:
    """What guessing one class scores: the share of the test split's most frequent class (from the first run's
    logged test answers; nothing when no run logged them). No constant answer scores more."""
    for run in runs:
        answers = test_answers(client, run)
        if answers is not None and answers.labels:
            label, count = Counter(answers.labels).most_common(1)[0]
            share = 100 * count / len(answers.labels)
            return [(f"Guessing the most frequent test class (class {label}: {count:,} of {len(answers.labels):,} "
                     f"documents) scores {share:.2f}%; no constant guess scores more.")]
    return []


def paired_correct(a: Answers | None, b: Answers | None) -> tuple[np.ndarray, np.ndarray]:
    """Whether A and B got each test document right, in A's order, the documents matched by id and text hash,
    whatever their order (:func:`by_document`; a document without an id by its text alone). A
    :class:`ReportError` says why when they cannot be paired: a run logged no predictions, or no ids (before
    qattn recorded them: pairing by the order and the labels alone would pair other texts), or the two runs
    were tested on different documents (counted: only in A, only in B, the same id with another text, the
    same text with another id, the same text with another label)."""
    for name, answers in (("A", a), ("B", b)):
        if answers is None:
            raise ReportError(f"{name} logged no predictions")
        if answers.ids is None or answers.sha256 is None:
            raise ReportError(f"{name} was logged before qattn recorded document ids; rerun it")
    documents_a, documents_b = by_document(a), by_document(b)
    common = documents_a.keys() & documents_b.keys()
    left_a = [key[:2] for key in documents_a.keys() - common]  # (id, text hash) of the unmatched documents
    left_b = [key[:2] for key in documents_b.keys() - common]
    same_id, left_a, left_b = pair_off(left_a, left_b, lambda document: document[0])  # real ids only: None is none
    same_text, left_a, left_b = pair_off(left_a, left_b, lambda document: document[1])
    counts = {
        "only in A": len(left_a),
        "only in B": len(left_b),
        "with the same id and another text": same_id,
        "with the same text and another id": same_text,
        "with the same text and another label": sum(
            a.labels[documents_a[key]] != b.labels[documents_b[key]] for key in common
        ),
    }
    if any(counts.values()):
        raise ReportError("different test documents: " + ", ".join(f"{n} {what}" for what, n in counts.items() if n))
    order = [documents_b[key] for key in documents_a]
    return correct(a.labels, a.predictions), correct(b.labels, b.predictions)[order]


def by_document(answers: Answers) -> dict[tuple[str | None, str, int], int]:
    """``(id, text hash, k) -> position`` of the k-th document (from 0) with that id and text, in the run's order.
    A document without an id (None: its record had none) is known by its text alone, so the same id-less
    documents pair in any order or file format; ids and texts may repeat."""
    seen: Counter[tuple[str | None, str]] = Counter()
    documents = {}
    for position, document in enumerate(zip(answers.ids, answers.sha256)):
        documents[(*document, seen[document])] = position
        seen[document] += 1
    return documents


def pair_off(left_a: list[tuple[str | None, str]], left_b: list[tuple[str | None, str]], key
             ) -> tuple[int, list[tuple[str | None, str]], list[tuple[str | None, str]]]:
    """How many unmatched documents of A pair with one of B by ``key`` (an id, or a text hash; None pairs
    nothing), and the documents of A and of B left after those pairs."""
    groups: dict[str, list[list[tuple[str | None, str]]]] = {}
    for side, documents in enumerate((left_a, left_b)):
        for document in documents:
            if key(document) is not None:
                groups.setdefault(key(document), [[], []])[side].append(document)
    paired = [pair for in_a, in_b in groups.values() for pair in zip(in_a, in_b)]
    done_a, done_b = Counter(a for a, _ in paired), Counter(b for _, b in paired)
    return len(paired), list((Counter(left_a) - done_a).elements()), list((Counter(left_b) - done_b).elements())


def document_tests(a: Answers | None, b: Answers | None) -> list[str]:
    """McNemar's only-A / only-B counts and p, and the paired bootstrap interval, of two runs' test answers
    matched by document (:func:`paired_correct`, whose :class:`ReportError` says why they cannot be)."""
    right_a, right_b = paired_correct(a, b)
    test, boot = mcnemar(right_a, right_b), bootstrap_difference(right_a, right_b)
    return [f"{test.a_only} / {test.b_only}", f"{test.p_value:.3g}", f"[{points(boot.low)}, {points(boot.high)}]"]


def over_documents(a: Answers | None, b: Answers | None) -> list[str]:
    """A report's cells of :func:`document_tests`: "n/a (why)" when the runs cannot be paired."""
    try:
        return document_tests(a, b)
    except ReportError as err:
        return [f"n/a ({err})", "", ""]


def paired_comparisons(client: MlflowClient, kinds: dict[str, Kind]) -> list[str]:
    """Every pair of rows: the test-accuracy difference over the seeds both ran (paired t interval), and for
    their first common seed a McNemar test and a paired bootstrap interval over the test documents."""
    lines = [
        "## Paired comparisons", "",
        "Test accuracy of A minus B in points. Over seeds: the mean difference of runs paired by seed, with the 95% "
        "confidence interval of the paired t-test (n - 1 degrees of freedom; a zero-width interval when every seed "
        "gives the same difference). Over test documents (matched by id and text), for the first seed both ran: "
        "McNemar's exact test (documents only A / only B gets right, two-sided p) and the paired bootstrap's 95% "
        "interval (10,000 resamples of the documents). Computed by `qattn.stats` (scipy).", "",
        "| A | B | seeds | mean difference | 95% CI over seeds | seed | only A / only B right | McNemar p | bootstrap 95% CI |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    answers: dict[str, Answers | None] = {}  # downloaded once, for the runs a pair tests

    def answers_of(run: Run) -> Answers | None:
        if run.info.run_id not in answers:
            answers[run.info.run_id] = test_answers(client, run)
        return answers[run.info.run_id]

    for (label_a, kind_a), (label_b, kind_b) in itertools.combinations(kinds.items(), 2):
        a = {run.data.params.get("train.seed"): run for run in kind_a.runs}
        b = {run.data.params.get("train.seed"): run for run in kind_b.runs}
        pairs = [(a[seed], b[seed]) for seed in a if seed in b]
        if not pairs:
            lines.append(f"| {label_a} | {label_b} | 0 | n/a | n/a | n/a | n/a | | |")
            continue
        accuracy = [[run.data.metrics.get("test/accuracy", float("nan")) for run in pair] for pair in pairs]
        difference = seed_difference(*zip(*accuracy))
        interval = f"[{points(difference.low)}, {points(difference.high)}]" if difference else "n/a (one seed)"
        mean = statistics.mean(x - y for x, y in accuracy)
        first_a, first_b = pairs[0]
        documents = over_documents(answers_of(first_a), answers_of(first_b))
        cells = [label_a, label_b, len(pairs), points(mean), interval, first_a.data.params.get("train.seed"), *documents]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return lines


def write_index(results: Path) -> None:
    """``results/README.md``: every grid report there, with its summary line (taken from the report)."""
    entries = []
    for report in sorted(results.glob("*.md")):
        summary = next((line for line in report.read_text().splitlines() if line.startswith(SUMMARY)), None)
        if summary is not None:
            entries.append(f"- [{report.stem}]({report.name}): {summary.removeprefix(SUMMARY)}")
    (results / "README.md").write_text(
        "# results/\n\n"
        "Generated, never typed: `qattn report` writes one report per comparison grid from MLflow (and rewrites this\n"
        "index); `benchmarks/speed.py` writes [benchmarks.md](benchmarks.md); `qattn ibm plan --write` wrote\n"
        "[hardware-plan.md](hardware-plan.md). Each report names the command that produced it and every MLflow run\n"
        "it came from.\n\n" + "\n".join(entries) + "\n"
    )


def learning_curves(kinds: dict[str, Kind], dev_curves: dict[str, dict[int, float]]):
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, kind in kinds.items():
        curves = [[curve[step] for step in sorted(curve)] for curve in (dev_curves[r.info.run_id] for r in kind.runs)]
        length = min(map(len, curves))
        if length == 0:
            continue
        mean = [statistics.mean(c[e] for c in curves) for e in range(length)]
        ax.plot(range(1, length + 1), mean, marker="o", label=f"{label} (mean of {len(curves)})")
    ax.set(xlabel="epoch", ylabel="dev accuracy", title="learning curves")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def accuracy_vs_parameters(kinds: dict[str, Kind]):
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, kind in kinds.items():
        mean, std = mean_and_std(kind.metric("test/accuracy"))
        total = kind.param("parameters.quantum") + kind.param("parameters.classical")
        ax.errorbar([total], [mean], yerr=[std], fmt="o", capsize=4, label=label)
    ax.set(xlabel="trainable parameters", ylabel="test accuracy", title="accuracy vs parameters (mean ± std over seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def attention_maps(client: MlflowClient, kinds: dict[str, Kind]):
    """The same dev document's attention, as logged by the first seed of each kind, side by side."""
    images = {}
    with tempfile.TemporaryDirectory() as scratch:
        for label, kind in kinds.items():
            try:
                path = client.download_artifacts(kind.runs[0].info.run_id, "attention/dev_doc_0.png", scratch)
            except (MlflowException, OSError):
                continue
            images[label] = mpimg.imread(path)
    if not images:
        return None
    fig, axes = plt.subplots(1, len(images), figsize=(7 * len(images), 6), squeeze=False)
    for ax, (label, image) in zip(axes[0], images.items()):
        ax.imshow(image)
        ax.set_title(label)
        ax.axis("off")
    fig.tight_layout()
    return fig
