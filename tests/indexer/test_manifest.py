"""indexer.manifest: round trip, checksums, damaged and too-new manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexer.errors import IndexCorruptError, IndexNotFoundError
from indexer.manifest import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    Manifest,
    checksum_files,
    checksum_problems,
    read_manifest,
    sha256_file,
    utc_now,
    write_manifest,
)


def _version(tmp_path: Path) -> tuple[Path, Manifest]:
    version = tmp_path / "v"
    (version / "images").mkdir(parents=True)
    (version / "a.bin").write_bytes(b"alpha")
    (version / "images" / "x.jpg").write_bytes(b"picture")
    manifest = Manifest(
        FORMAT_VERSION,
        "model-1",
        16,
        2,
        "Flat",
        {},
        utc_now(),
        checksum_files(version),
        version="000001-x",
    )
    write_manifest(version, manifest)
    return version, manifest


def test_round_trip_and_checksums(tmp_path: Path) -> None:
    version, manifest = _version(tmp_path)
    assert read_manifest(version) == manifest
    assert set(manifest.files) == {"a.bin", "images/x.jpg"}
    assert manifest.files["a.bin"] == sha256_file(version / "a.bin")
    assert checksum_problems(version, manifest) == []
    assert manifest.created_at.endswith("Z")


def test_missing_changed_and_unexpected_files_are_named(tmp_path: Path) -> None:
    version, manifest = _version(tmp_path)
    (version / "a.bin").write_bytes(b"alphA")
    (version / "images" / "x.jpg").unlink()
    (version / "stray.txt").write_text("?")
    problems = "\n".join(checksum_problems(version, manifest))
    assert "checksum mismatch" in problems and "a.bin" in problems
    assert "missing file" in problems and "x.jpg" in problems
    assert "unexpected file" in problems and "stray.txt" in problems


def test_damaged_missing_and_newer_manifests(tmp_path: Path) -> None:
    version, manifest = _version(tmp_path)
    data = manifest.to_dict()
    (version / MANIFEST_NAME).write_text(json.dumps({**data, "format_version": FORMAT_VERSION + 1}))
    with pytest.raises(IndexCorruptError, match="upgrade"):
        read_manifest(version)
    (version / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(IndexCorruptError, match="damaged"):
        read_manifest(version)
    (version / MANIFEST_NAME).write_text(json.dumps({"model_id": "m"}))
    with pytest.raises(IndexCorruptError, match="lacks"):
        read_manifest(version)
    with pytest.raises(IndexNotFoundError):
        read_manifest(tmp_path / "nowhere")


def test_unknown_keys_from_a_later_minor_version_are_ignored(tmp_path: Path) -> None:
    version, manifest = _version(tmp_path)
    (version / MANIFEST_NAME).write_text(json.dumps({**manifest.to_dict(), "shiny": 1}))
    assert read_manifest(version) == manifest
