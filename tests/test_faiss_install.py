"""faiss-cpu and faiss-gpu install the same `faiss` module over each other: every install
path takes exactly one of them, and the module imported is the one installed."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import faiss
import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
WHEELS = ("faiss-cpu", "faiss-gpu")


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_faiss_comes_only_from_the_cpu_or_the_gpu_extra() -> None:
    project = PYPROJECT["project"]
    assert not _names(project["dependencies"]) & {"faiss", *WHEELS}
    extras = {name: _names(reqs) for name, reqs in project["optional-dependencies"].items()}
    assert extras["cpu"] == {"faiss-cpu"}
    assert extras["gpu"] == {"faiss-gpu"}
    for name, packages in extras.items():
        assert len(packages & set(WHEELS)) <= 1, name


def _dockerfile_stage(name: str) -> str:
    """The text of one stage of docker/Dockerfile (up to the next FROM)."""
    text = (REPO / "docker" / "Dockerfile").read_text()
    _, _, rest = text.partition(f" AS {name}\n")
    return rest.split("\nFROM ", 1)[0]


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("docker/Dockerfile:build-cpu", "cpu"),
        ("docker/Dockerfile:build-gpu", "gpu"),
        ("Makefile", "cpu"),
    ],
)
def test_every_install_takes_one_faiss_extra(path: str, extra: str) -> None:
    file, _, stage = path.partition(":")
    text = _dockerfile_stage(stage) if stage else (REPO / file).read_text()
    installs = [line for line in text.splitlines() if "pip install" in line and "/src" in line]
    installs += [line for line in text.splitlines() if re.search(r"pip install .*-e ", line)]
    assert installs, path
    for line in installs:
        chosen = set(re.findall(r"\b(cpu|gpu)\b", line.split("[", 1)[-1]))
        assert chosen == {extra}, line


def test_the_installed_faiss_is_the_one_expected() -> None:
    installed = [wheel for wheel in WHEELS if _installed(wheel)]
    assert len(installed) == 1, f"exactly one FAISS wheel must be installed, found {installed}"
    (wheel,) = installed
    files = {str(f.locate().resolve()) for f in metadata.files(wheel) or ()}
    assert str(Path(faiss.__file__).resolve()) in files, (faiss.__file__, wheel)
    has_gpu = hasattr(faiss, "StandardGpuResources")
    assert has_gpu == (wheel == "faiss-gpu")


def _installed(distribution: str) -> bool:
    try:
        metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


def test_a_missing_faiss_is_one_line_naming_the_extras(tmp_path: Path) -> None:
    """Installed without an extra: the CLI says what to install, without a traceback."""
    (tmp_path / "faiss.py").write_text(
        "raise ModuleNotFoundError('No module named faiss', name='faiss')\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "fashion_retrieval", "index", "info", "x"],
        cwd=REPO,
        env={"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert 'pip install "fashion-retrieval[cpu]"' in result.stderr
    assert "Traceback" not in result.stderr
