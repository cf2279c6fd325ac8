"""models.catalog: CSV and JSON Lines catalogues, bad rows reported and skipped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from models import CatalogError, Product, read_catalog

HEADER = "id,image,text,gender\n"


@pytest.fixture
def folder(tmp_path: Path, sample_dir: Path, sample_rows: list[dict[str, str]]) -> Path:
    """tmp_path with images/ holding the first two sample photos (see `images`)."""
    (tmp_path / "images").mkdir()
    for row in sample_rows[:2]:
        shutil.copy(sample_dir / row["image"], tmp_path / row["image"])
    return tmp_path


@pytest.fixture
def images(sample_rows: list[dict[str, str]]) -> list[str]:
    """Relative paths of the two photos in `folder`."""
    return [row["image"] for row in sample_rows[:2]]


def test_reads_the_bundled_sample(sample_catalog: Path) -> None:
    catalog = read_catalog(sample_catalog)
    assert len(catalog) == 1000
    assert catalog.skipped == []
    first = catalog.products[0]
    assert isinstance(first, Product)
    assert first.image.is_absolute() and first.image.is_file()
    assert set(first.attributes) >= {"gender", "masterCategory", "articleType", "baseColour"}
    assert all(isinstance(v, str) for v in first.attributes.values())
    assert "masterCategory" in catalog.attribute_names
    assert catalog.summary() == f"1000 products read from {sample_catalog}"


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_csv_and_json_lines_read_the_same_products(tiny_catalog, sample_rows, fmt: str) -> None:
    catalog = read_catalog(tiny_catalog(8, fmt=fmt))
    rows = sample_rows[:8]
    assert [p.id for p in catalog] == [r["id"] for r in rows]
    assert [p.text for p in catalog] == [" ".join(r["text"].split()) for r in rows]
    assert catalog.products[0].attributes["baseColour"] == rows[0]["baseColour"]
    assert all(p.image.is_file() for p in catalog)


def test_absolute_image_paths_and_whitespace_in_text(folder: Path, images: list[str]) -> None:
    image = (folder / images[0]).resolve()
    (folder / "c.csv").write_text(HEADER + f'7,{image},"  Red   Shirt \t",Men\n', encoding="utf-8")
    product = read_catalog(folder / "c.csv").products[0]
    assert product.image == image
    assert product.text == "Red Shirt"
    assert product.attributes == {"gender": "Men"}


def test_bad_csv_rows_are_reported_and_skipped(folder: Path, images: list[str]) -> None:
    good_a, good_b = images
    lines = [
        f"a1,{good_a},Blue Shirt,Men",
        "a2,images/nope.jpg,Green Shirt,Men",  # missing image file
        f"a3,{good_a},   ,Men",  # empty text
        f"a1,{good_b},Red Shirt,Men",  # duplicate id
        f",{good_b},Black Shirt,Men",  # empty id
        f"a4,{good_b},Grey Shirt,Men,extra",  # more fields than the header
        "a5,,White Shirt,Men",  # no image path
        f"a6,{good_b},Grey Shirt,Women",
    ]
    (folder / "c.csv").write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    catalog = read_catalog(folder / "c.csv")
    assert [p.id for p in catalog] == ["a1", "a6"]
    reasons = {(s.line, s.id): s.reason for s in catalog.skipped}
    assert reasons == {
        (3, "a2"): "image not found: images/nope.jpg",
        (4, "a3"): "empty text",
        (5, "a1"): "duplicate id",
        (6, ""): "empty id",
        (7, ""): "more fields than the header has",
        (8, "a5"): "no image path",
    }
    summary = catalog.summary()
    assert "2 products" in summary and "skipped 6 rows" in summary
    # the first few ids (or line numbers where the id is unknown) and the overflow count
    for shown in ("a2: image not found", "a3: empty text", "a1: duplicate id", "line 6: empty id"):
        assert shown in summary
    assert "(and 1 more)" in summary
    assert "\n" not in summary


def test_bad_json_lines_are_reported_and_skipped(folder: Path, images: list[str]) -> None:
    image = images[0]
    lines = [
        json.dumps(
            {"id": "j1", "image": image, "text": "Blue Jeans", "gender": "Women", "year": 2012}
        ),
        '{"id": "j2", "image": ',  # invalid JSON
        json.dumps(["j3", image, "a list, not an object"]),
        "",  # blank lines are ignored
        json.dumps({"id": "j4", "image": image}),  # no text
        json.dumps({"id": 5, "image": image, "text": "Numeric Id Tee"}),
    ]
    (folder / "c.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    catalog = read_catalog(folder / "c.jsonl")
    assert [p.id for p in catalog] == ["j1", "5"]
    assert catalog.products[0].attributes == {"gender": "Women", "year": "2012"}
    assert [(s.line, s.id) for s in catalog.skipped] == [(2, ""), (3, ""), (5, "j4")]
    assert catalog.skipped[0].reason.startswith("invalid JSON")
    assert "skipped 3 rows" in catalog.summary()


def test_images_are_not_checked_when_asked_not_to(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text(HEADER + "x,images/absent.jpg,Shirt,Men\n", encoding="utf-8")
    catalog = read_catalog(tmp_path / "c.csv", check_images=False)
    assert [p.id for p in catalog] == ["x"]


def test_no_usable_row_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text(
        HEADER + "x,images/absent.jpg,Shirt,Men\n,,,\n", encoding="utf-8"
    )
    with pytest.raises(CatalogError, match=r"no usable row \(2 skipped\)"):
        read_catalog(tmp_path / "c.csv")


def test_empty_json_lines_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "c.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="no usable row"):
        read_catalog(tmp_path / "c.jsonl")


def test_missing_required_column_is_named(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("id,picture,text\n1,a.jpg,Shirt\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"lacks the column\(s\) image"):
        read_catalog(tmp_path / "c.csv")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="catalogue file not found"):
        read_catalog(tmp_path / "absent.csv")


def test_csv_with_a_byte_order_mark_reads(folder: Path, images: list[str]) -> None:
    """Spreadsheet programs save 'CSV UTF-8' with a BOM before the first header."""
    (folder / "c.csv").write_text(f"\ufeff{HEADER}x,{images[0]},Shirt,Men\n", encoding="utf-8")
    assert [p.id for p in read_catalog(folder / "c.csv")] == ["x"]
