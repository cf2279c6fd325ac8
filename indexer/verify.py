"""Check a published index: every checksum, and that all files agree on the products."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from indexer.cache import cache_problems
from indexer.errors import IndexerError, ModelMismatchError
from indexer.faiss_index import load_index, stored_ids
from indexer.manifest import (
    INDEX_FILES,
    STORE_NAME,
    Manifest,
    check_model,
    checksum_problems,
)
from indexer.publish import read_version
from indexer.store import ProductStore
from indexer.versions import CACHE_DIR


@dataclass(frozen=True)
class VerifyReport:
    """What `verify_index` found; `ok` when there is no problem."""

    path: Path
    version_dir: Path | None
    manifest: Manifest | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _ids_of(version_dir: Path, manifest: Manifest) -> tuple[dict[str, np.ndarray], list[str]]:
    """{file: sorted ids it holds} for the FAISS indices and the store, and the problems met."""
    found: dict[str, np.ndarray] = {}
    problems: list[str] = []
    for name in (INDEX_FILES[target] for target in manifest.targets):
        try:
            index = load_index(version_dir / name)
        except IndexerError as exc:
            problems.append(str(exc))
            continue
        if index.d != manifest.embed_dim:
            problems.append(
                f"{version_dir / name} holds {index.d}-d vectors, the manifest says "
                f"{manifest.embed_dim}"
            )
        found[name] = np.sort(stored_ids(index))
    try:
        with ProductStore.open(version_dir / STORE_NAME) as store:
            found[STORE_NAME] = store.id_table()[0]
    except IndexerError as exc:
        problems.append(str(exc))
    return found, problems


def _agreement_problems(version_dir: Path, manifest: Manifest) -> list[str]:
    found, problems = _ids_of(version_dir, manifest)
    for name, ids in found.items():
        if len(ids) != manifest.count:
            problems.append(
                f"{version_dir / name} holds {len(ids)} products, the manifest says {manifest.count}"
            )
    sets = list(found.items())
    for name, ids in sets[1:]:
        first_name, first_ids = sets[0]
        if len(ids) == len(first_ids) and not np.array_equal(ids, first_ids):
            problems.append(f"{name} and {first_name} hold different product ids")
    return problems


def verify_index(path: str | Path, *, expected_model_id: str | None = None) -> VerifyReport:
    """Verify the version CURRENT points to (or the version directory `path`), and the
    index directory's embedding cache, whose damaged entries a build would publish."""
    path = Path(path)
    try:
        version_dir, manifest = read_version(path, verify=False)  # problems listed below
    except IndexerError as exc:
        return VerifyReport(path, None, None, [str(exc)])
    problems = checksum_problems(version_dir, manifest)
    try:
        check_model(manifest.model_id, expected_model_id, f"at {path}")
    except ModelMismatchError as exc:
        problems.append(str(exc))
    problems.extend(_agreement_problems(version_dir, manifest))
    problems.extend(cache_problems(path / CACHE_DIR))
    return VerifyReport(path, version_dir, manifest, problems)
