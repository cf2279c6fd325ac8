"""The manifest of a published index version: what it holds and the checksum of every file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from indexer.errors import IndexCorruptError, IndexNotFoundError, ModelMismatchError
from models.files import sha256_file

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
IMAGES_INDEX = "images.faiss"
TEXTS_INDEX = "texts.faiss"
PRODUCTS_INDEX = "products.faiss"  # fused photo + title vectors (models.fusion)
STORE_NAME = "products.sqlite"
IMAGES_DIR = "images"

# What a search runs over: product photos, titles, or product vectors (photo and title).
Target = Literal["image", "text", "product"]
TARGETS: tuple[Target, ...] = ("image", "text", "product")
INDEX_FILES: dict[Target, str] = {
    "image": IMAGES_INDEX,
    "text": TEXTS_INDEX,
    "product": PRODUCTS_INDEX,
}


@dataclass(frozen=True)
class Manifest:
    """What a version holds. `files` maps each file (relative, '/'-separated) to its sha256."""

    format_version: int
    model_id: str
    embed_dim: int
    count: int
    index_type: str
    search_params: dict[str, int]
    created_at: str
    files: dict[str, str] = field(repr=False)
    version: str = ""
    images_copied: bool = False
    metric: str = "inner_product"
    extra: dict[str, Any] = field(default_factory=dict)
    # (w_image, w_text) of the product vectors; None: built before product vectors existed
    product_weights: list[float] | None = None

    @property
    def targets(self) -> tuple[Target, ...]:
        """The targets this version holds vectors for: "product" only when it was built
        with product vectors."""
        return TARGETS if self.product_weights is not None else ("image", "text")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        known = {name for name in cls.__dataclass_fields__}
        missing = {"format_version", "model_id", "embed_dim", "count", "files"} - set(data)
        if missing:
            raise ValueError(f"manifest lacks {', '.join(sorted(missing))}")
        return cls(**{key: value for key, value in data.items() if key in known})


def utc_now() -> str:
    """The current time as an ISO 8601 UTC string, to the second."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def check_model(built_with: str, expected_model_id: str | None, where: object) -> None:
    """The one index/model compatibility rule: an index answers only the model it was
    built with. ModelMismatchError when `expected_model_id` (None: no check) differs from
    the manifest's `built_with`; `where` names the index (a path, a Milvus location)."""
    if expected_model_id is not None and built_with != expected_model_id:
        raise ModelMismatchError(
            f"the index {where} was built with model {built_with}, expected model "
            f"{expected_model_id}; rebuild the index with this model (fashion-retrieval "
            "index build) or use the model it was built with"
        )


def list_files(version_dir: Path) -> list[str]:
    """Every file under version_dir but the manifest, relative and '/'-separated, sorted."""
    return sorted(
        path.relative_to(version_dir).as_posix()
        for path in version_dir.rglob("*")
        if path.is_file() and path.name != MANIFEST_NAME
    )


def checksum_files(version_dir: Path) -> dict[str, str]:
    """{relative name: sha256} of every file under version_dir but the manifest."""
    return {name: sha256_file(version_dir / name) for name in list_files(version_dir)}


def write_manifest(version_dir: Path, manifest: Manifest) -> Path:
    path = version_dir / MANIFEST_NAME
    path.write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n", "utf-8")
    return path


def read_manifest(version_dir: Path) -> Manifest:
    """Read and check a version's manifest; IndexCorruptError when damaged or too new."""
    path = version_dir / MANIFEST_NAME
    if not path.is_file():
        raise IndexNotFoundError(f"no manifest in {version_dir}: not an index version")
    try:
        manifest = Manifest.from_dict(json.loads(path.read_text("utf-8")))
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"manifest {path} is damaged: {exc}") from exc
    if manifest.format_version > FORMAT_VERSION:
        raise IndexCorruptError(
            f"{path} has index format {manifest.format_version}; this indexer reads up to "
            f"{FORMAT_VERSION}: upgrade the project or rebuild the index"
        )
    return manifest


def checksum_problems(version_dir: Path, manifest: Manifest) -> list[str]:
    """One line per missing, unexpected or changed file; empty when all files match."""
    problems = []
    present = set(list_files(version_dir))
    for name, expected in sorted(manifest.files.items()):
        path = version_dir / name
        if name not in present:
            problems.append(f"missing file {path}")
        elif sha256_file(path) != expected:
            problems.append(f"checksum mismatch: {path} changed since the index was built")
    for name in sorted(present - set(manifest.files)):
        problems.append(f"unexpected file {version_dir / name} (not in the manifest)")
    return problems
