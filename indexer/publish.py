"""Atomic publication of index versions.

Layout of an index directory:

    INDEX_DIR/CURRENT                 the name of the published version, one line
    INDEX_DIR/versions/000007-<utc>/  a complete version (manifest.json and its files)
    INDEX_DIR/versions/*.partial/     a version being written (or left by a killed build)
    INDEX_DIR/cache/                  the embedding cache (see cache.py)

A build writes `versions/<name>.partial`, fsyncs every file, renames it to
`versions/<name>`, then replaces CURRENT with os.replace after fsyncing the new pointer
and the directory. A reader resolves CURRENT once, so it sees the old version or the
new one, never half of one; a build killed at any point leaves CURRENT as it was.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from indexer.errors import IndexCorruptError, IndexLockedError, IndexNotFoundError
from indexer.manifest import MANIFEST_NAME, Manifest, checksum_problems, read_manifest
from models.files import fsync_dir, fsync_tree, write_atomic

CURRENT_NAME = "CURRENT"
VERSIONS_DIR = "versions"
PARTIAL_SUFFIX = ".partial"
LOCK_NAME = ".lock"
KEEP_VERSIONS = 2


def version_number(name: str) -> int | None:
    """The counter at the front of a version name ('000007-2026...' -> 7), or None."""
    head = name.split("-", 1)[0]
    return int(head) if head.isdigit() and not name.endswith(PARTIAL_SUFFIX) else None


def list_versions(index_dir: Path) -> list[str]:
    """Names of the complete version directories, oldest first."""
    root = index_dir / VERSIONS_DIR
    if not root.is_dir():
        return []
    names = [p.name for p in root.iterdir() if p.is_dir() and version_number(p.name) is not None]
    return sorted(names, key=lambda name: version_number(name) or 0)


def current_version(index_dir: Path) -> str | None:
    """The version CURRENT names, or None when nothing has been published."""
    pointer = index_dir / CURRENT_NAME
    if not pointer.is_file():
        return None
    name = pointer.read_text("utf-8").strip()
    if version_number(name) is None or not (index_dir / VERSIONS_DIR / name).is_dir():
        raise IndexCorruptError(
            f"{pointer} names {name!r}, which is not a version in {index_dir / VERSIONS_DIR}"
        )
    return name


def resolve_version_dir(path: Path) -> Path:
    """The version directory to read: `path` itself when it holds a manifest, else CURRENT's."""
    if (path / MANIFEST_NAME).is_file():
        return path
    if not path.is_dir():
        raise IndexNotFoundError(
            f"no index at {path}: build one with `fashion-retrieval index build`"
        )
    name = current_version(path)
    if name is None:
        raise IndexNotFoundError(
            f"no published index in {path} (no {CURRENT_NAME} file): "
            "build one with `fashion-retrieval index build`"
        )
    return path / VERSIONS_DIR / name


def read_version(path: Path, *, verify: bool = True) -> tuple[Path, Manifest]:
    """The one way to find and read a version: the version directory (`path` itself, or
    the one CURRENT names) and its manifest. With `verify`, every file is checked against
    the manifest's sha256 first (IndexCorruptError naming the first problem)."""
    version_dir = resolve_version_dir(path)
    manifest = read_manifest(version_dir)
    if verify:
        check_files(version_dir, manifest)
    return version_dir, manifest


def check_files(version_dir: Path, manifest: Manifest) -> None:
    """IndexCorruptError unless every file of the version matches the manifest's sha256."""
    problems = checksum_problems(version_dir, manifest)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise IndexCorruptError(f"{problems[0]}{more}; rebuild the index")


@contextmanager
def write_lock(index_dir: Path) -> Iterator[None]:
    """Hold the index directory's write lock; released by the OS even if the process dies."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / LOCK_NAME).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise IndexLockedError(
                f"another build or update is writing {index_dir}; wait for it to finish"
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_failed(index_dir: Path) -> list[str]:
    """Delete partial versions and versions newer than CURRENT (left by killed builds).

    Call with the write lock held. Returns the names removed.
    """
    root = index_dir / VERSIONS_DIR
    if not root.is_dir():
        return []
    current = current_version(index_dir)
    limit = version_number(current) if current else 0
    removed = []
    for path in sorted(root.iterdir()):
        number = version_number(path.name)
        if path.name.endswith(PARTIAL_SUFFIX) or (number is not None and number > (limit or 0)):
            shutil.rmtree(path)
            removed.append(path.name)
    return removed


def new_version_dir(index_dir: Path) -> Path:
    """Create and return `versions/<next name>.partial` for a version being written."""
    existing = [version_number(name) or 0 for name in list_versions(index_dir)]
    number = max(existing, default=0) + 1
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = index_dir / VERSIONS_DIR / f"{number:06d}-{stamp}{PARTIAL_SUFFIX}"
    path.mkdir(parents=True)
    return path


def final_name(partial_dir: Path) -> str:
    return partial_dir.name.removesuffix(PARTIAL_SUFFIX)


def publish(index_dir: Path, partial_dir: Path) -> Path:
    """Make a fully written partial version the current one; returns its final path."""
    fsync_tree(partial_dir)
    final = partial_dir.with_name(final_name(partial_dir))
    os.rename(partial_dir, final)
    fsync_dir(final.parent)
    write_atomic(index_dir / CURRENT_NAME, final.name + "\n")
    return final


def prune_versions(index_dir: Path, keep: int = KEEP_VERSIONS) -> list[str]:
    """Delete all but the newest `keep` versions up to CURRENT; returns the names removed."""
    current = current_version(index_dir)
    if current is None:
        return []
    limit = version_number(current) or 0
    published = [n for n in list_versions(index_dir) if (version_number(n) or 0) <= limit]
    doomed = published[: -max(keep, 1)]  # CURRENT itself is never pruned
    for name in doomed:
        shutil.rmtree(index_dir / VERSIONS_DIR / name, ignore_errors=True)
    return doomed
