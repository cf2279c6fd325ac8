"""indexer.verify: checksums and agreement between the files of a version."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from indexer import verify_index
from indexer.faiss_index import IndexSpec, create_index, save_index
from indexer.manifest import IMAGES_INDEX, MANIFEST_NAME, TEXTS_INDEX, sha256_file
from indexer.publish import resolve_version_dir


def _edit_manifest(version: Path, **changes: object) -> None:
    path = version / MANIFEST_NAME
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_a_fresh_index_verifies(built_index: Path) -> None:
    report = verify_index(built_index, expected_model_id="fake-model-1")
    assert report.ok and report.problems == [] and report.manifest.count == 60


def test_flipped_byte_and_model_mismatch_are_reported(built_index: Path) -> None:
    path = resolve_version_dir(built_index) / IMAGES_INDEX
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x10
    path.write_bytes(bytes(data))
    report = verify_index(built_index, expected_model_id="other")
    assert not report.ok
    text = "\n".join(report.problems)
    assert (
        "checksum mismatch" in text
        and IMAGES_INDEX in text
        and "built with model fake-model-1, expected model other" in text
    )


def test_counts_must_agree_with_the_manifest(built_index: Path) -> None:
    _edit_manifest(resolve_version_dir(built_index), count=61)
    problems = "\n".join(verify_index(built_index).problems)
    assert "holds 60 products, the manifest says 61" in problems


def test_ids_must_agree_across_files(built_index: Path) -> None:
    version = resolve_version_dir(built_index)
    vectors = np.eye(16, dtype=np.float32)[np.arange(60) % 16]
    save_index(
        create_index(IndexSpec("Flat"), vectors, np.arange(60) + 1000), version / TEXTS_INDEX
    )
    manifest = json.loads((version / MANIFEST_NAME).read_text())
    manifest["files"][TEXTS_INDEX] = sha256_file(version / TEXTS_INDEX)
    _edit_manifest(version, files=manifest["files"])
    assert verify_index(built_index).problems == [
        f"{TEXTS_INDEX} and {IMAGES_INDEX} hold different product ids"
    ]


def test_nothing_to_verify(tmp_path: Path) -> None:
    report = verify_index(tmp_path)
    assert not report.ok and "no published index" in report.problems[0]
