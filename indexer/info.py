"""Describe an index directory in words (`fashion-retrieval index info`)."""

from __future__ import annotations

from pathlib import Path

from indexer.manifest import Manifest, read_manifest
from indexer.publish import current_version, list_versions, resolve_version_dir


def _index_kind(manifest: Manifest) -> str:
    if manifest.index_type == "Flat":
        return "Flat (exact search)"
    params = ", ".join(f"{name}={value}" for name, value in manifest.search_params.items())
    return f"{manifest.index_type} (approximate search{'; ' + params if params else ''})"


def _size(version_dir: Path, manifest: Manifest) -> str:
    total = sum(
        (version_dir / name).stat().st_size
        for name in manifest.files
        if (version_dir / name).is_file()
    )
    return f"{len(manifest.files) + 1} files, {total / 1e6:.1f} MB"


def _targets(manifest: Manifest) -> str:
    if manifest.product_weights is None:
        return "image, text (no product vectors: rebuild with `index build` to add them)"
    w_image, w_text = manifest.product_weights
    return f"image, text, product (product = {w_image:g} x image + {w_text:g} x text)"


def describe_index(path: str | Path) -> str:
    """A few lines saying what the published index at path holds."""
    path = Path(path)
    version_dir = resolve_version_dir(path)
    manifest = read_manifest(version_dir)
    images = (
        "copied into the index" if manifest.images_copied else "referenced by their catalogue paths"
    )
    lines = [
        f"index {version_dir}",
        (
            f"  version     {manifest.version or version_dir.name}, "
            f"created {manifest.created_at}, format {manifest.format_version}"
        ),
        f"  products    {manifest.count}",
        f"  model       {manifest.model_id}",
        f"  embeddings  {manifest.embed_dim}-d, L2-normalised, searched by inner product",
        f"  index type  {_index_kind(manifest)}, one per target",
        f"  targets     {_targets(manifest)}",
        f"  images      {images}",
        f"  size        {_size(version_dir, manifest)}",
    ]
    if version_dir != path:
        current = current_version(path)
        names = [f"{n} (current)" if n == current else n for n in list_versions(path)]
        lines.append(f"  versions    {', '.join(names)}")
    return "\n".join(lines)
