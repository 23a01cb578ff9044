"""Griffe extension for the API reference (mkdocs.yml loads it through mkdocstrings' ``extensions``).

Three things, none of which changes the code or its docstrings:

- ``qattn.circuits`` lives in the top-level ``circuits/`` folder (setuptools maps it, see
  ``package-dir`` in pyproject.toml), where Griffe, reading ``qattn/``, would not find it: after
  ``qattn`` is loaded, ``circuits/*.py`` are visited with ``qattn`` as their parent.
- The docstrings cross-reference with reStructuredText roles (``:class:`Gate```); the pages are
  Markdown, so a role becomes inline code (``Gate``; ``~a.b.C`` shows ``C``).
- A package's re-exports of its own submodules are documented on those submodules' blocks, so the
  package's block shows only what the package itself defines.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import griffe

CIRCUITS = Path(__file__).resolve().parents[1] / "circuits"
ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|data|mod|exc|obj|const):`(~?)([^`]+)`")


class QattnDocs(griffe.Extension):
    """After ``qattn`` is loaded: attach ``circuits/``, then tidy every docstring and package below it."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if pkg.name != "qattn":
            return
        if "circuits" not in pkg.members and CIRCUITS.is_dir():
            circuits = _visit("circuits", CIRCUITS / "__init__.py", pkg, loader)
            pkg.set_member("circuits", circuits)
            for path in sorted(CIRCUITS.glob("*.py")):
                if path.stem != "__init__":
                    circuits.set_member(path.stem, _visit(path.stem, path, circuits, loader))
        _tidy(pkg)


def _visit(name: str, path: Path, parent: griffe.Module, loader: griffe.GriffeLoader) -> griffe.Module:
    return griffe.visit(
        name,
        filepath=path,
        code=path.read_text(encoding="utf-8"),
        extensions=loader.extensions,
        parent=parent,
        docstring_parser=loader.docstring_parser,
        docstring_options=loader.docstring_options,
        lines_collection=loader.lines_collection,
        modules_collection=loader.modules_collection,
    )


def _code(role: re.Match) -> str:
    tilde, target = role.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


def _tidy(obj: griffe.Object) -> None:
    if obj.docstring is not None:
        obj.docstring.value = ROLE.sub(_code, obj.docstring.value)
    package = obj.is_module and obj.is_init_module
    for member in list(obj.members.values()):
        if member.is_alias:
            target = member.target_path
            if package and target.startswith(obj.path + ".") and "._" not in target:
                member.public = False
        elif member.is_module or member.is_class or member.is_function or member.is_attribute:
            _tidy(member)
