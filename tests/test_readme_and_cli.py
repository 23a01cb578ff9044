"""The README's example runs as written, and so does the demo command; the command line answers quickly."""

import re
from importlib.metadata import version
from pathlib import Path

from click.testing import CliRunner

from qattn.cli import QUANTUM_KERNELS, main
from qattn.kernels import quantum_kernels
from tests.conftest import run_cli_light

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks, "README has no python example"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})


def test_readme_opens_with_the_two_commands_ci_uses():
    first_block = re.search(r"```bash\n(.*?)```", README.read_text(), flags=re.DOTALL).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make quickstart", "make test"]
    assert "make test" in (README.parent / ".ci" / "run").read_text()


def test_demo_prints_circuit_and_both_layers_weights():
    result = CliRunner().invoke(main, ["demo", "--tokens", "4", "--qubits", "2", "--kernel", "gaussian"])
    assert result.exit_code == 0, result.output
    assert "Ry(x[0])" in result.output
    assert "== quantum (gaussian, 2 qubits/head)" in result.output and "== classical (dot)" in result.output
    rows = [line for line in result.output.splitlines() if re.fullmatch(r"  (\d\.\d{3} ){3}\d\.\d{3}", line)]
    assert len(rows) == 8  # 4 query rows for each layer
    for row in rows:
        assert abs(sum(map(float, row.split())) - 1) < 0.01


def test_demo_rejects_an_unknown_kernel_with_the_choices():
    result = CliRunner().invoke(main, ["demo", "--kernel", "dot"])
    assert result.exit_code != 0
    assert "'dot' is not one of 'fidelity', 'gaussian'" in result.output


def test_the_command_line_imports_no_heavy_library_before_a_command_needs_it(tmp_path):
    """`qattn --help`, `--version`, the ibm group and a config's errors answer without torch, PennyLane,
    Qiskit or MLflow."""
    for args in (["--help"], ["ibm", "--help"], ["demo", "--help"], ["ibm", "submit", "--help"]):
        out, heavy = run_cli_light(args)
        assert out.returncode == 0 and "Usage: qattn" in out.stdout, out.stderr
        assert heavy == [], f"qattn {' '.join(args)} imported {heavy}"
    out, heavy = run_cli_light(["--version"])
    assert out.stdout == f"qattn {version('qattn')}\n" and heavy == []
    typo = tmp_path / "typo.toml"
    typo.write_text('[model]\nencoder = "hardware_efficient"\nn_qbits = 3\n')
    out, heavy = run_cli_light(["train", str(typo)])
    assert out.returncode != 0 and "n_qbits" in out.stderr and "is an ansatz, not an encoder" in out.stderr, out.stderr
    assert heavy == [], f"a config error imported {heavy}"


def test_demo_offers_every_quantum_kernel():
    assert QUANTUM_KERNELS == quantum_kernels()


def test_help_lists_each_command_with_a_whole_sentence():
    for group in ([], ["ibm"]):
        out = CliRunner().invoke(main, [*group, "--help"], terminal_width=80)
        commands = out.output.split("Commands:\n", 1)[1].splitlines()
        assert len(commands) >= 6
        for line in commands:
            assert line.rstrip().endswith(".") and not line.rstrip().endswith("..."), f"cut short: {line!r}"
