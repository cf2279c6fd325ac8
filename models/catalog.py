"""The catalogue format shared by training, the indexer and the service.

A catalogue is a CSV file with a header row, or JSON Lines, one product per row:
`id` (unique string), `image` (path relative to the catalogue file's folder, or
absolute), `text` (title or description); every other column is a string attribute.
Bad rows are reported and skipped; a catalogue with no usable row is an error.
No torch here: every package reads catalogues.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from models.errors import CatalogError

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("id", "image", "text")


@dataclass(frozen=True)
class Product:
    id: str
    image: Path
    text: str
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SkippedRow:
    line: int
    id: str
    reason: str


@dataclass
class Catalog:
    """Usable products in file order, plus what was skipped and why."""

    path: Path
    products: list[Product]
    skipped: list[SkippedRow]

    def __len__(self) -> int:
        return len(self.products)

    def __iter__(self) -> Iterator[Product]:
        return iter(self.products)

    @property
    def attribute_names(self) -> list[str]:
        names: dict[str, None] = {}
        for product in self.products:
            names.update(dict.fromkeys(product.attributes))
        return list(names)

    def summary(self, first: int = 5) -> str:
        """One line saying how many rows were skipped and the first few ids and reasons."""
        if not self.skipped:
            return f"{len(self.products)} products read from {self.path}"
        shown = "; ".join(f"{s.id or f'line {s.line}'}: {s.reason}" for s in self.skipped[:first])
        more = f" (and {len(self.skipped) - first} more)" if len(self.skipped) > first else ""
        return (
            f"{len(self.products)} products read from {self.path}; "
            f"skipped {len(self.skipped)} rows: {shown}{more}"
        )


def _iter_rows(path: Path) -> Iterator[tuple[int, dict[str, object] | None, str]]:
    """Yield (line number, row or None, error) for a CSV or JSON Lines file."""
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        # utf-8-sig: files saved by spreadsheet programs and some editors start with a BOM.
        with path.open(encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield number, None, f"invalid JSON ({exc.msg})"
                    continue
                if not isinstance(row, dict):
                    yield number, None, "a JSON Lines row must be an object"
                    continue
                yield number, row, ""
        return
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise CatalogError(
                f"catalogue {path} lacks the column(s) {', '.join(missing)}; "
                f"the header must name at least {', '.join(REQUIRED_COLUMNS)}"
            )
        for row in reader:
            if None in row:  # more fields than the header names
                yield reader.line_num, None, "more fields than the header has"
                continue
            yield reader.line_num, row, ""


def _as_text(value: object) -> str:
    return "" if value is None else str(value).strip()


def read_catalog(path: str | Path, *, check_images: bool = True) -> Catalog:
    """Read a catalogue, skipping (and recording) rows that cannot be used.

    A row is skipped when its id is empty or repeats an earlier id, its text is empty,
    or (with `check_images`) its image file does not exist. Decoding is left to the
    encoder, which reports unreadable images itself.
    """
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"catalogue file not found: {path}")
    base = path.resolve().parent
    products: list[Product] = []
    skipped: list[SkippedRow] = []
    seen: set[str] = set()
    for line, row, error in _iter_rows(path):
        if row is None:
            skipped.append(SkippedRow(line, "", error))
            continue
        product_id = _as_text(row.get("id"))
        text = " ".join(_as_text(row.get("text")).split())
        image = _as_text(row.get("image"))
        reason = ""
        if not product_id:
            reason = "empty id"
        elif product_id in seen:
            reason = "duplicate id"
        elif not text:
            reason = "empty text"
        elif not image:
            reason = "no image path"
        image_path = Path(image) if Path(image).is_absolute() else base / image
        if not reason and check_images and not image_path.is_file():
            reason = f"image not found: {image}"
        if reason:
            skipped.append(SkippedRow(line, product_id, reason))
            continue
        seen.add(product_id)
        attributes = {
            str(key): _as_text(value)
            for key, value in row.items()
            if key not in REQUIRED_COLUMNS and key is not None
        }
        products.append(Product(product_id, image_path, text, attributes))
    catalog = Catalog(path, products, skipped)
    if skipped:
        logger.warning(catalog.summary())
    if not products:
        raise CatalogError(
            f"catalogue {path} has no usable row ({len(skipped)} skipped); "
            "each row needs a unique id, a non-empty text and an existing image"
        )
    return catalog
