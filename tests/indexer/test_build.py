"""indexer.build: build round trips, the resume cache, failed and killed builds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from indexer_fakes import SLEEP_ENV, TRACE_ENV, FakeEncoder, reference_for, unit_queries
from PIL import Image

from indexer import build_index, open_index, verify_index
from indexer.cache import CACHE_NAME, EmbeddingCache
from indexer.errors import IndexerError, IndexTypeError, TooManySkippedError
from indexer.publish import CURRENT_NAME, VERSIONS_DIR, list_versions
from models import read_catalog

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _ids(rows) -> list[list[str]]:
    return [[hit.id for hit in row] for row in rows]


def test_build_round_trip(
    built_index: Path, small_catalog: Path, fake_encoder: FakeEncoder
) -> None:
    reference = reference_for(small_catalog, fake_encoder)
    queries = unit_queries(5)
    with open_index(built_index, expected_model_id=fake_encoder.model_id) as index:
        manifest = index.manifest
        assert (manifest.model_id, manifest.embed_dim, manifest.count) == ("fake-model-1", 16, 60)
        assert manifest.index_type == "Flat" and manifest.search_params == {}
        assert {"images.faiss", "texts.faiss", "products.sqlite"} <= set(manifest.files)
        assert len(index) == 60
        for kind, search in (("images", index.search_images), ("texts", index.search_texts)):
            hits = search(queries, 8)
            expected = reference.search(kind, queries, 8)
            assert _ids(hits) == [[i for i, _ in row] for row in expected]
            assert hits[0][0].score == pytest.approx(expected[0][0][1], rel=1e-5)
        products = index.get_products(reference.ids[:3] + ["no-such-id"])
        catalog = read_catalog(small_catalog).products
        assert products[:3] == catalog[:3] and products[3] is None
        assert set(index.attribute_values()) == set(catalog[0].attributes)


def test_rebuild_of_an_unchanged_catalogue_encodes_nothing(
    tmp_path: Path, small_catalog: Path, fake_encoder: FakeEncoder
) -> None:
    first = build_index(small_catalog, fake_encoder, tmp_path / "idx", progress=False)
    calls = fake_encoder.calls
    second = build_index(small_catalog, fake_encoder, tmp_path / "idx", progress=False)
    third = build_index(small_catalog, fake_encoder, tmp_path / "idx", batch_size=5, progress=False)
    assert first.encoded_images > 0 and first.encoded_texts > 0
    assert fake_encoder.calls == calls
    assert second.encoded_images == second.encoded_texts == third.encoded_images == 0
    assert list_versions(tmp_path / "idx") == [second.version_dir.name, third.version_dir.name]
    assert (tmp_path / "idx" / CURRENT_NAME).read_text().strip() == third.version_dir.name


def test_copied_images_make_the_index_self_contained(
    tmp_path: Path, small_catalog: Path, fake_encoder: FakeEncoder
) -> None:
    originals = {p.id: p.image.read_bytes() for p in read_catalog(small_catalog).products}
    report = build_index(
        small_catalog, fake_encoder, tmp_path / "idx", copy_images=True, progress=False
    )
    for image in small_catalog.parent.glob("images/*"):
        image.unlink()
    assert report.manifest.images_copied
    with open_index(tmp_path / "idx") as index:
        for product in index.get_products(list(originals)):
            assert product.image.is_relative_to(report.version_dir)
            assert product.image.read_bytes() == originals[product.id]
    assert verify_index(tmp_path / "idx").ok


def test_bad_photos_past_the_skip_limit_publish_nothing(
    tmp_path: Path, built_index: Path, make_catalog, fake_encoder: FakeEncoder
) -> None:
    """1 bad photo of 70 is 1.4%, over the default limit of 1%: named, nothing published."""
    catalog = make_catalog(70, "with-bad-image")
    broken = read_catalog(catalog).products[65]
    broken.image.write_bytes(b"GIF89a truncated")
    before = list_versions(built_index)
    with pytest.raises(TooManySkippedError, match=f"1 of 70 .*1%.*{broken.id}"):
        build_index(catalog, fake_encoder, built_index, progress=False)
    assert list_versions(built_index) == before
    assert sorted(p.name for p in (built_index / VERSIONS_DIR).iterdir()) == before
    with open_index(built_index) as index:
        assert len(index) == 60


def test_explicit_index_types(
    tmp_path: Path, small_catalog: Path, fake_encoder: FakeEncoder
) -> None:
    reference = reference_for(small_catalog, fake_encoder)
    queries = unit_queries(3)
    for factory in ("IVF4,Flat", "HNSW8,Flat"):
        out = tmp_path / factory.replace(",", "_")
        build_index(small_catalog, fake_encoder, out, index_type=factory, progress=False)
        with open_index(out) as index:
            assert index.manifest.index_type == factory
            assert index.manifest.search_params  # nprobe or efSearch recorded
            hits = index.search_texts(queries, 60)  # every product, whatever was probed
            assert [sorted(row) for row in _ids(hits)] == [sorted(reference.ids)] * 3


def test_bad_index_type_fails_before_encoding(
    tmp_path: Path, small_catalog: Path, fake_encoder: FakeEncoder
) -> None:
    with pytest.raises(IndexTypeError):
        build_index(
            small_catalog, fake_encoder, tmp_path / "idx", index_type="IVF4096,Flat", progress=False
        )
    assert fake_encoder.calls == 0 and not (tmp_path / "idx" / CURRENT_NAME).exists()


def _wait_for_lines(path: Path, count: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"the build never reached {count} encode calls")


def test_killed_build_leaves_the_old_index_serving_and_resumes(
    tmp_path: Path, built_index: Path, small_catalog: Path, make_catalog, fake_encoder: FakeEncoder
) -> None:
    bigger = make_catalog(120, "bigger")
    trace = tmp_path / "trace.txt"
    env = {**os.environ, SLEEP_ENV: "0.25", TRACE_ENV: str(trace), "PYTHONPATH": str(REPO)}
    before = (built_index / CURRENT_NAME).read_text()
    process = subprocess.Popen(
        [sys.executable, str(HERE / "slow_build.py"), str(bigger), str(built_index), "8"], env=env
    )
    try:
        _wait_for_lines(trace, 4)  # two batches of new products encoded and cached
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert (built_index / CURRENT_NAME).read_text() == before
    reference = reference_for(small_catalog, fake_encoder)
    queries = unit_queries(3)
    with open_index(built_index) as index:
        assert len(index) == 60
        assert _ids(index.search_texts(queries, 5)) == [
            [i for i, _ in row] for row in reference.search("texts", queries, 5)
        ]
    with EmbeddingCache(
        built_index / "cache", fake_encoder.model_id, fake_encoder.embed_dim
    ) as cache:
        cached_images = cache.count("image")
    assert (built_index / "cache" / CACHE_NAME).exists() and cached_images > 60
    unique_images = len({p.image.read_bytes() for p in read_catalog(bigger).products})
    encoded_before = fake_encoder.images_encoded
    report = build_index(bigger, fake_encoder, built_index, progress=False)
    assert report.encoded_images == unique_images - cached_images  # only what was missing
    assert fake_encoder.images_encoded - encoded_before == report.encoded_images
    with open_index(built_index) as index:
        assert len(index) == 120
    assert not [p for p in (built_index / VERSIONS_DIR).iterdir() if p.name.endswith(".partial")]


def test_bad_photos_within_the_limit_are_skipped_and_reported(
    tmp_path: Path, make_catalog, fake_encoder: FakeEncoder
) -> None:
    """One corrupt photo and one over the pixel budget among 60: the build goes on."""
    catalog = make_catalog(60, "some-bad-images")
    products = read_catalog(catalog).products
    products[3].image.write_bytes(b"\xff\xd8 not really a jpeg")
    Image.new("RGB", (300, 300)).save(products[7].image, format="PNG")  # 90,000 pixels
    report = build_index(
        catalog,
        fake_encoder,
        tmp_path / "idx",
        progress=False,
        max_skipped=2,
        max_image_pixels=50_000,
    )
    assert report.manifest.count == 58 and report.skipped_rows == 2
    assert report.skipped[0].startswith(f"{products[3].id}: cannot decode")
    assert "megapixels" in report.skipped[1] and products[7].id in report.skipped[1]
    with open_index(tmp_path / "idx") as index:
        assert index.get_products([products[3].id, products[4].id])[0] is None
    assert verify_index(tmp_path / "idx").ok


@pytest.mark.parametrize("limit", ["x", "-1", "101%"])
def test_a_bad_skip_limit_is_refused_before_encoding(
    tmp_path: Path, small_catalog: Path, fake_encoder: FakeEncoder, limit: str
) -> None:
    with pytest.raises(IndexerError, match="--max-skipped takes"):
        build_index(small_catalog, fake_encoder, tmp_path / "idx", max_skipped=limit)
    assert fake_encoder.images_encoded == 0


def test_both_backends_report_the_same_counts_by_keyword_only(tmp_path: Path) -> None:
    """The counts are one dataclass (indexer.versions.PublishedCounts) that both build
    reports extend; they are keyword-only, so a positional count is refused rather than
    landing in the wrong field."""
    from indexer.milvus.build import MilvusBuildReport
    from indexer.versions import BuildReport, PublishedCounts

    manifest = object()  # only stored
    report = BuildReport(tmp_path, manifest, encoded_images=3, added=2)  # type: ignore[arg-type]
    assert isinstance(report, PublishedCounts)
    assert (report.encoded_images, report.encoded_texts, report.added) == (3, 0, 2)
    with pytest.raises(TypeError):
        BuildReport(tmp_path, manifest, 3)  # type: ignore[arg-type, misc]
    assert issubclass(MilvusBuildReport, PublishedCounts)
