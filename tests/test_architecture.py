"""The import graph holds the architecture page's rules (docs/architecture.md), checked by import-linter
against the contracts in pyproject.toml: no cycles at any depth, no backend importing the hardware layers,
each layer importing only those below it; and every module of qattn has its place in those layers."""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
LAYERS = next(contract for contract in CONTRACTS if contract["type"] == "layers")["layers"]


def layered_modules() -> set[str]:
    return {name.strip() for layer in LAYERS for name in layer.split("|")}


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> Path:
    """qattn as it installs (circuits/ is its qattn.circuits), for import-linter to read as one package."""
    if shutil.which("lint-imports", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("import-linter is not installed: pip install -e '.[dev]'")
    stage = tmp_path_factory.mktemp("stage")
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "qattn", stage / "qattn", ignore=ignore)
    shutil.copytree(ROOT / "circuits", stage / "qattn" / "circuits", ignore=ignore)
    return stage


def test_the_import_graph_keeps_every_contract(staged):
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint), str(ROOT / "pyproject.toml"), "--no-cache"], cwd=staged, capture_output=True, text=True,
        env={"PYTHONPATH": str(staged), "PATH": str(Path(sys.executable).parent)}, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in done.stdout, done.stdout


def test_every_module_has_a_layer_and_the_architecture_page_names_them(staged):
    top = {f"qattn.{path.stem}" for path in (staged / "qattn").iterdir()
           if path.suffix == ".py" and path.stem != "__init__" or (path / "__init__.py").is_file()}
    assert top == layered_modules(), "place every module of qattn in a layer of pyproject.toml's contract"
    page = (ROOT / "docs" / "architecture.md").read_text()
    missing = [name for name in sorted(layered_modules()) if f"`{name.removeprefix('qattn.')}`" not in page]
    assert not missing, f"docs/architecture.md does not name {missing}"
