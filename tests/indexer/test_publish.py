"""indexer.publish: versions, the CURRENT pointer, pruning, failed builds, the lock."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.errors import IndexCorruptError, IndexLockedError, IndexNotFoundError
from indexer.manifest import MANIFEST_NAME
from indexer.publish import (
    CURRENT_NAME,
    PARTIAL_SUFFIX,
    VERSIONS_DIR,
    current_version,
    list_versions,
    new_version_dir,
    prune_versions,
    publish,
    remove_failed,
    resolve_version_dir,
    version_number,
    write_lock,
)


def _publish_one(index_dir: Path, payload: str) -> Path:
    partial = new_version_dir(index_dir)
    assert partial.name.endswith(PARTIAL_SUFFIX)
    (partial / MANIFEST_NAME).write_text(payload)
    return publish(index_dir, partial)


def test_publish_switches_current_and_keeps_two(tmp_path: Path) -> None:
    finals = [_publish_one(tmp_path, str(i)) for i in range(4)]
    assert [version_number(p.name) for p in finals] == [1, 2, 3, 4]
    assert current_version(tmp_path) == finals[-1].name
    assert resolve_version_dir(tmp_path) == finals[-1]
    assert prune_versions(tmp_path) == [finals[0].name, finals[1].name]
    assert list_versions(tmp_path) == [finals[2].name, finals[3].name]
    assert sorted(p.name for p in tmp_path.iterdir() if "tmp" in p.name) == []  # no staged pointer
    assert (finals[-1] / MANIFEST_NAME).read_text() == "3"


def test_failed_builds_are_cleared_but_never_the_published_ones(tmp_path: Path) -> None:
    first = _publish_one(tmp_path, "1")
    second = _publish_one(tmp_path, "2")
    (tmp_path / CURRENT_NAME).write_text(first.name + "\n")  # as if killed before the switch
    stale = new_version_dir(tmp_path)
    assert sorted(remove_failed(tmp_path)) == sorted([second.name, stale.name])
    assert list_versions(tmp_path) == [first.name]
    assert resolve_version_dir(tmp_path) == first
    assert version_number(new_version_dir(tmp_path).name.removesuffix(PARTIAL_SUFFIX)) == 2


def test_prune_never_removes_current_even_with_keep_zero(tmp_path: Path) -> None:
    finals = [_publish_one(tmp_path, str(i)) for i in range(2)]
    prune_versions(tmp_path, keep=0)
    assert list_versions(tmp_path) == [finals[1].name]


def test_no_index_and_dangling_pointer(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="index build"):
        resolve_version_dir(tmp_path)
    with pytest.raises(IndexNotFoundError):
        resolve_version_dir(tmp_path / "absent")
    (tmp_path / CURRENT_NAME).write_text("000009-gone\n")
    with pytest.raises(IndexCorruptError, match="000009-gone"):
        resolve_version_dir(tmp_path)


def test_a_version_directory_opens_directly(tmp_path: Path) -> None:
    final = _publish_one(tmp_path, "x")
    assert resolve_version_dir(final) == final
    assert (tmp_path / VERSIONS_DIR).is_dir()


def test_second_writer_is_refused(tmp_path: Path) -> None:
    with (
        write_lock(tmp_path),
        pytest.raises(IndexLockedError, match="another build"),
        write_lock(tmp_path),
    ):
        pass
    with write_lock(tmp_path):  # released again
        pass
