"""benchmarks/gpu_check.py with the CPU standing in for the GPU: the checks, the table and the exit code."""

import importlib.util
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
gpu_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_check)


def table(output: str) -> dict[str, str]:
    return {line.split()[0]: line.split()[1] for line in output.splitlines() if line.split()[:1] and line.split()[0] in gpu_check.CHECKS}


def test_checks_pass_on_the_cpu_stand_in_and_a_failure_is_a_row(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["gpu_check.py", "--device", "cpu", "--checks", "layer-gaussian,aer-exact,aer-sampled"])
    assert gpu_check.main() == 0
    assert table(capsys.readouterr().out) == {"layer-gaussian": "PASS", "aer-exact": "PASS", "aer-sampled": "PASS"}

    monkeypatch.setattr(gpu_check, "TOLERANCE", {"atol": -1.0, "rtol": 0.0})  # nothing is close enough: every comparison fails
    monkeypatch.setattr("sys.argv", ["gpu_check.py", "--device", "cpu", "--checks", "aer-exact,aer-sampled"])
    assert gpu_check.main() == 1
    out = capsys.readouterr().out
    assert table(out) == {"aer-exact": "FAIL", "aer-sampled": "PASS"} and "1 passed, 1 failed, 0 skipped" in out


def test_without_cuda_it_says_so_and_passes(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("sys.argv", ["gpu_check.py"])
    assert gpu_check.main() == 0
    assert capsys.readouterr().out.startswith("No CUDA device here")


def test_the_encoder_check_runs_on_the_cpu_stand_in(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["gpu_check.py", "--device", "cpu", "--checks", "encoder"])
    assert gpu_check.main() == 0
    out = capsys.readouterr().out
    assert table(out) == {"encoder": "PASS"} and "32 windows of 256 tokens, max |cpu - cpu|" in out
