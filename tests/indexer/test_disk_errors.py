"""A full disk or a read-only volume during `index build` is one line naming the
directory and the cause, a non-zero exit, nothing published and a usable cache.

The real cases mount a tiny tmpfs (full) or a read-only one inside a user namespace
(`unshare -Urm`, no privileges needed); where the kernel allows no user namespaces they
are skipped, and the in-process cases below still run."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Self

import pytest
from indexer_fakes import FakeEncoder

from indexer import build_index, verify_index
from indexer.cache import CACHE_NAME, EmbeddingCache
from indexer.cli import main as index_main
from indexer.errors import CacheError, StorageError
from indexer.publish import CURRENT_NAME

REPO = Path(__file__).resolve().parents[2]


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-Urm", "true"], capture_output=True, check=False)
    return probe.returncode == 0


needs_namespaces = pytest.mark.skipif(
    not _namespaces_work(), reason="no user namespaces here (unshare -Urm) to mount a tmpfs"
)


def _build_on_tmpfs(mount: Path, options: str, *build_args: str) -> subprocess.CompletedProcess:
    """`index build` with a tmpfs (mount options `options`) mounted at `mount`."""
    script = (
        'mount -t tmpfs -o "$1" tmpfs "$2" && mkdir -p "$2/index" '
        '&& { [ "$3" != ro ] || mount -o remount,ro "$2"; } && shift 3 && exec "$@"'
    )
    read_only = "ro" if "ro" in options.split(",") else "rw"
    size = ",".join(o for o in options.split(",") if o != "ro")
    command = [sys.executable, "-m", "fashion_retrieval", "index", "build", *build_args]
    return subprocess.run(
        ["unshare", "-Urm", "sh", "-c", script, "sh", size, str(mount), read_only, *command],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


@needs_namespaces
def test_a_full_disk_is_one_line(tmp_path: Path, small_catalog: Path, tiny_model_dir: Path) -> None:
    mount = tmp_path / "full"
    mount.mkdir()
    result = _build_on_tmpfs(
        mount, "size=24k", "--catalog", str(small_catalog), "--out", f"{mount}/index",
        "--model", str(tiny_model_dir), "--device", "cpu", "--quiet",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    (line,) = _error_lines(result)
    assert str(mount / "index") in line
    # SQLite says "database or disk is full" or, when the full disk hits its WAL index,
    # "disk I/O error"; the OS says "No space left on device"
    assert any(cause in line for cause in ("full", "No space left", "disk I/O error")), line
    assert "Traceback" not in result.stderr


@needs_namespaces
def test_a_read_only_volume_is_one_line_and_the_cache_stays_usable(
    tmp_path: Path, small_catalog: Path, tiny_model_dir: Path
) -> None:
    mount, cache = tmp_path / "ro", tmp_path / "cache"
    mount.mkdir()
    result = _build_on_tmpfs(
        mount, "size=1m,ro", "--catalog", str(small_catalog), "--out", f"{mount}/index",
        "--model", str(tiny_model_dir), "--device", "cpu", "--quiet", "--cache-dir", str(cache),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    (line,) = _error_lines(result)
    assert str(mount / "index") in line and "Read-only file system" in line, line
    assert "Traceback" not in result.stderr
    if (cache / CACHE_NAME).exists():
        with sqlite3.connect(cache / CACHE_NAME) as connection:
            assert connection.execute("PRAGMA quick_check").fetchone() == ("ok",)


class _FullDiskConnection:
    """A sqlite connection whose writes fail as on a full disk."""

    def __init__(self, real: sqlite3.Connection) -> None:
        self._real = real

    def executemany(self, *args: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._real.rollback()


def test_a_cache_write_failure_names_the_cache_and_publishes_nothing(
    tmp_path: Path,
    built_index: Path,
    small_catalog: Path,
    fake_encoder: FakeEncoder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = (built_index / CURRENT_NAME).read_text()
    shutil.rmtree(built_index / "cache")  # so that the build must write the cache
    real_init = EmbeddingCache.__init__

    def full_disk_init(self: EmbeddingCache, *args: object) -> None:
        real_init(self, *args)  # type: ignore[arg-type]
        self._connection = _FullDiskConnection(self._connection)  # type: ignore[assignment]

    monkeypatch.setattr(EmbeddingCache, "__init__", full_disk_init)
    with pytest.raises(CacheError, match=r"cache .*embeddings\.sqlite: database or disk is full"):
        build_index(small_catalog, fake_encoder, built_index, progress=False)
    assert (built_index / CURRENT_NAME).read_text() == before
    monkeypatch.undo()
    assert verify_index(built_index).ok  # the cache opens and checks out
    build_index(small_catalog, fake_encoder, built_index, progress=False)


def test_a_write_error_while_publishing_is_a_storage_error(
    built_index: Path,
    small_catalog: Path,
    fake_encoder: FakeEncoder,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = (built_index / CURRENT_NAME).read_text()

    def refuse(*args: object) -> None:
        raise PermissionError(13, "Permission denied", str(built_index / "versions"))

    monkeypatch.setattr("indexer.publish.fsync_tree", refuse)
    with pytest.raises(StorageError, match=r"cannot write the index directory .*Permission denied"):
        build_index(small_catalog, fake_encoder, built_index, progress=False)
    assert (built_index / CURRENT_NAME).read_text() == before
    assert verify_index(built_index).ok
    assert index_main(["info", str(built_index)]) == 0
    capsys.readouterr()
