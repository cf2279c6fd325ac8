"""Versioned collections behind one alias: Milvus's atomic publishing.

The index named NAME is the alias NAME. Each build writes a new collection
`NAME__v000007`, checks it, records its manifest (the mark of a finished build) and then
moves the alias onto it in one call: readers that resolve the alias get the old version
or the new one, never a half-written one. A build killed at any point leaves the alias
where it was; its unfinished collection has no manifest and the next build drops it.
The version the alias names and the one before it are kept (rollback: point the alias
back with Milvus's alter_alias); older ones are dropped.
"""

from __future__ import annotations

import re
from typing import Any

from indexer.errors import IndexNotFoundError
from indexer.manifest import Manifest
from indexer.milvus.connection import MilvusLocation, milvus_errors
from indexer.milvus.schema import manifest_of

KEEP_VERSIONS = 2
_SEPARATOR = "__v"


def version_name(alias: str, number: int) -> str:
    return f"{alias}{_SEPARATOR}{number:06d}"


def list_versions(client: Any, location: MilvusLocation) -> list[str]:
    """The version collections of the alias, oldest first."""
    pattern = re.compile(re.escape(location.collection + _SEPARATOR) + r"(\d{6,})")
    with milvus_errors(location, "listing collections"):
        names = client.list_collections()
    found = [(int(m.group(1)), name) for name in names if (m := pattern.fullmatch(name))]
    return [name for _, name in sorted(found)]


def next_version(client: Any, location: MilvusLocation) -> str:
    versions = list_versions(client, location)
    last = int(versions[-1].rsplit(_SEPARATOR, 1)[1]) if versions else 0
    return version_name(location.collection, last + 1)


def aliased_collection(client: Any, location: MilvusLocation) -> str | None:
    """The collection the alias names, or None before the first build."""
    with milvus_errors(location, "reading the alias"):
        aliases = client.list_aliases().get("aliases", [])
        if location.collection not in aliases:
            return None
        return str(client.describe_alias(location.collection)["collection_name"])


def read_manifest(client: Any, location: MilvusLocation, collection: str) -> Manifest | None:
    """The manifest recorded with `collection` (None: a build did not finish it)."""
    with milvus_errors(location, f"describing {collection}"):
        properties = client.describe_collection(collection).get("properties", {}) or {}
    return manifest_of(properties, collection)


def published(client: Any, location: MilvusLocation) -> tuple[str, Manifest]:
    """(collection, manifest) of the published version; IndexNotFoundError when none."""
    collection = aliased_collection(client, location)
    if collection is None:
        raise IndexNotFoundError(
            f"no published index: no {location.describe()}; build one with "
            f"`fashion-retrieval index build --backend milvus --milvus-uri {location.uri} "
            f"--collection {location.collection} --catalog CATALOG.csv`"
        )
    manifest = read_manifest(client, location, collection)
    if manifest is None:
        raise IndexNotFoundError(
            f"the alias {location.collection!r} names {collection}, which holds no finished "
            "index; rebuild it"
        )
    return collection, manifest


def switch_alias(client: Any, location: MilvusLocation, collection: str) -> None:
    """Point the alias at `collection`, in one call."""
    with milvus_errors(location, f"moving the alias onto {collection}"):
        if location.collection in client.list_aliases().get("aliases", []):
            client.alter_alias(collection_name=collection, alias=location.collection)
        else:
            client.create_alias(collection_name=collection, alias=location.collection)


def prune_versions(client: Any, location: MilvusLocation, keep: int = KEEP_VERSIONS) -> list[str]:
    """Drop every version collection but the published one and the finished ones just
    before it (`keep` in all), and unfinished leftovers of killed builds; returns the
    names dropped. One build at a time per alias: a build running meanwhile would lose
    its unfinished collection."""
    current = aliased_collection(client, location)
    versions = list_versions(client, location)
    kept: list[str] = []
    if current in versions:
        older = versions[: versions.index(current)]
        finished = [name for name in older if read_manifest(client, location, name) is not None]
        kept = [current, *finished[::-1][: keep - 1]]
    dropped = [name for name in versions if name not in kept]
    for name in dropped:
        with milvus_errors(location, f"dropping the old version {name}"):
            client.drop_collection(name)
    return dropped
