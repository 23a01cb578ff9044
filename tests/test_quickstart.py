"""`qattn quickstart` end to end (reduced size), and the CLI's handling of user errors."""

import numpy as np
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from qattn.artifacts import attention_figure
from qattn.cli import main, reading
from qattn.config import load_config
from qattn.run_result import RunResult
from qattn.trainer import Metrics
from tests.conftest import QUICKSTART


def test_quickstart_trains_both_kinds_and_prints_them_side_by_side(tiny, tmp_path):
    result = CliRunner().invoke(main, ["quickstart", *[arg for o in tiny for arg in ("--set", o)]])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("run "))
    assert all(column in lines[header] for column in ("test acc", "macro-F1", "quantum p.", "classical p.", "s/epoch"))
    quantum, classical = lines[header + 1].split(), lines[header + 2].split()
    assert quantum[0] == "synthetic-quantum-fidelity-q2-h2-s0" and classical[0] == "synthetic-classical-dot-h2-s0"
    assert int(quantum[3]) > 0 and int(classical[3]) == 0
    assert f"mlflow ui --backend-store-uri sqlite:///{tmp_path / 'mlflow.db'}" in result.output
    classes = load_config(QUICKSTART, tiny).data.synthetic.symbols  # one class per symbol (colour)
    assert f"Chance level: {1 / classes:.4f} test accuracy ({classes} classes, guessing)." in lines
    for run in (quantum, classical):  # the verdict agrees with the dev macro-F1 curve in MLflow
        curve = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_metric_history(run[-1], "dev/macro_f1")
        scores = [m.value for m in sorted(curve, key=lambda m: m.step)]
        best = scores.index(max(scores)) + 1
        verdict = next(line for line in lines if line.startswith(f"{run[0]}: "))
        if best == len(scores):
            assert verdict == f"{run[0]}: still improving at its last epoch ({best}): more epochs (--set train.epochs=N) may score higher."
        else:
            assert verdict == f"{run[0]}: best at epoch {best} of {len(scores)} (the model tested is that epoch's)."
    assert "Learning curves: the artifact learning_curves.png of each MLflow run (attention maps under attention/)." in lines
    again = CliRunner().invoke(main, ["quickstart", *[arg for o in tiny for arg in ("--set", o)]])
    assert again.exit_code == 0, again.output  # reruns start over


def test_train_refuses_to_overwrite_and_resumes_only_what_exists(tiny):
    args = ["train", str(QUICKSTART), *[arg for o in tiny for arg in ("--set", o)]]
    resume = CliRunner().invoke(main, [*args, "--resume"])
    assert resume.exit_code == 1 and "nothing to resume for this config: no checkpoint at" in resume.output
    assert CliRunner().invoke(main, args).exit_code == 0
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1 and "pass --resume to continue it or --restart to start over" in again.output
    other = CliRunner().invoke(main, [*args, "--set", "train.lr=0.01", "--resume"])
    assert other.exit_code == 1 and "checkpoints of this run name with other settings" in other.output
    both = CliRunner().invoke(main, [*args, "--resume", "--restart"])
    assert both.exit_code == 1 and "--resume and --restart exclude each other" in both.output


def test_cli_errors_are_messages_not_tracebacks(tiny, tmp_path):
    sets = [arg for o in tiny for arg in ("--set", o)]
    bad_key = CliRunner().invoke(main, ["train", str(QUICKSTART), *sets, "--set", "model.atention=quantum"])
    assert bad_key.exit_code == 1 and "unknown key 'model.atention'; valid keys here: attention" in bad_key.output
    missing = CliRunner().invoke(main, ["train", str(QUICKSTART), *sets, "--set", "data.source=shared", "--set", f"data.data_dir={tmp_path}"])
    assert missing.exit_code == 1 and "no data set 'synthetic' in" in missing.output
    nothing = CliRunner().invoke(main, ["evaluate", str(tmp_path / "nope.pt")])
    assert nothing.exit_code == 1 and "is neither a checkpoint file nor an MLflow run" in nothing.output
    not_ours = CliRunner().invoke(main, ["evaluate", str(QUICKSTART)])
    assert not_ours.exit_code == 1 and "quickstart.toml is not a qattn checkpoint" in not_ours.output
    demo = CliRunner().invoke(main, ["demo", "--heads", "3"])
    assert demo.exit_code == 2 and "embed_dim (16) must be divisible by num_heads (3)" in demo.output
    for result in (bad_key, missing, nothing, not_ours, demo):
        assert "Traceback" not in result.output


def test_attention_maps_have_colour_bars_and_name_the_heads():
    local, global_ = np.full((5, 5), 0.2), np.full((3, 3), 1 / 3)
    figure = attention_figure(local, global_, ["a", "b", "c", "d"], "dev document 0")
    titles = [ax.get_title() for ax in figure.axes]
    assert titles[:2] == ["chunk 1 tokens: local block 1, mean of the heads", "chunk summaries: global block 1, mean of the heads"]
    assert [ax.get_ylabel() for ax in figure.axes[2:]] == ["attention weight", "attention weight"]  # one colour bar per map
    single = attention_figure(local, None, ["a", "b", "c", "d"], "dev document 0", heads="head 1")
    assert [ax.get_title() for ax in single.axes] == ["chunk 1 tokens: local block 1, head 1", ""]


def test_the_reading_says_whether_a_run_was_still_improving():
    def result(name, best_epoch, epochs_run):
        test = Metrics(loss=1.0, accuracy=0.5, macro_f1=0.5, confusion=[[1, 0, 0], [0, 1, 0], [0, 0, 1]])
        return RunResult(f"id-{name}", name, "sqlite:///m.db", test, best_epoch, epochs_run, 1.0, 1.0, 1.0, {})

    lines = reading([result("rising", 12, 12), result("peaked", 9, 12)])  # epochs count from 1
    assert lines[0] == "Chance level: 0.3333 test accuracy (3 classes, guessing)."
    assert lines[1] == "rising: still improving at its last epoch (12): more epochs (--set train.epochs=N) may score higher."
    assert lines[2] == "peaked: best at epoch 9 of 12 (the model tested is that epoch's)."
