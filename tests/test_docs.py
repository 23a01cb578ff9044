"""The documentation site builds in strict mode: every page in the nav, every link between pages, every
``:::`` API block collected from the code's docstrings, no warning; and every page's Python runs."""

import importlib.util
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qattn.circuits import CATALOGUE
from qattn.executors import EXECUTORS
from qattn.kinds import KINDS
from qattn.registry import KERNELS
from qattn.solvers import SOLVERS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    not all(importlib.util.find_spec(name) for name in ("mkdocs", "material", "mkdocstrings_handlers.python")),
    reason='the docs build needs mkdocs, mkdocs-material and mkdocstrings[python]: pip install -e ".[docs]"',
)
def test_docs_build_strict(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.stderr}\n{build.stdout}"
    assert (tmp_path / "site" / "api" / "circuits" / "index.html").read_text().count("CircuitFamily") > 1


REGISTRIES = (CATALOGUE, KERNELS, EXECUTORS, SOLVERS, KINDS)
PAGES = sorted(path for path in (ROOT / "docs").rglob("*.md") if "```python" in path.read_text())


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_python_block_of_a_page_runs(page, tmp_path, monkeypatch):
    """A page's ```python blocks run in order, in one namespace, as a reader would paste them; what they
    register (a circuit family, a kernel) is gone after the page, so no later test sees it."""
    monkeypatch.chdir(tmp_path)
    for registry in REGISTRIES:
        monkeypatch.setattr(registry, "_entries", dict(registry._entries))
    namespace: dict = {}
    for block in re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL):
        exec(compile(block, str(page), "exec"), namespace)
