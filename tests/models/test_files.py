"""models.files: whole-or-nothing writes and file checksums, shared by every package."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from models.files import atomic_path, sha256_file, write_atomic


def test_write_atomic_takes_text_bytes_or_a_writer(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    write_atomic(target, "{}\n")
    assert target.read_text() == "{}\n"
    write_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    write_atomic(target, lambda staged: staged.write_text("from a writer"))
    assert target.read_text() == "from a writer"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # nothing staged is left


def test_a_failed_write_leaves_the_old_file_and_no_debris(tmp_path: Path) -> None:
    target = tmp_path / "checkpoint.pt"
    target.write_text("previous")

    def crash(staged: Path) -> None:
        staged.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, crash)
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as staged:
        staged.write_text("interrupted")
        raise KeyboardInterrupt
    assert target.read_text() == "previous"


def test_sha256_file_is_hashlibs(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000  # spans several read blocks
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
