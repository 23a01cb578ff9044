"""`qattn quickstart` end to end (reduced size), and the CLI's handling of user errors."""

from click.testing import CliRunner

from qattn.cli import main
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
