"""Where a Milvus index lives, and the one place that talks to the client library.

A location is a URI and a collection name. The URI is a local file ending in `.db`
(Milvus Lite, embedded in this process: development and tests) or a server address
(`http://host:19530`: Milvus standalone or a cluster). The collection name is an alias
that the published version collection carries (see indexer.milvus.versions).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexer.errors import IndexerError, IndexUnavailableError

DEFAULT_COLLECTION = "fashion_products"
DEFAULT_TIMEOUT_S = 10.0
TOKEN_ENV = "FASHION_MILVUS__TOKEN"  # read by the entry points (CLI, app settings) only
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,199}")
_REMOTE = ("http://", "https://", "tcp://", "grpc://", "unix:")
# Milvus error codes and messages that mean "the server cannot be reached".
_UNREACHABLE_CODES = {2}
_CLIENT_PACKAGES = ("pymilvus", "grpc", "milvus_lite")
_UNREACHABLE_WORDS = ("unavailable", "fail connecting", "connection refused", "deadline exceeded")


@dataclass(frozen=True)
class MilvusLocation:
    """A Milvus index: `uri` (a local `.db` file or `http://host:19530`), the collection
    alias that names it, and a token for servers with authentication."""

    uri: str
    collection: str = DEFAULT_COLLECTION
    token: str | None = field(default=None, repr=False)
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        if not self.uri:
            raise IndexerError(
                "no Milvus URI: give --milvus-uri (a local file such as var/milvus.db, or "
                "http://host:19530)"
            )
        if not _NAME.fullmatch(self.collection):
            raise IndexerError(
                f"invalid collection name {self.collection!r}: use letters, digits and "
                "underscores, starting with a letter or underscore (at most 200 characters)"
            )

    @property
    def is_local(self) -> bool:
        """A Milvus Lite file rather than a server."""
        return not self.uri.startswith(_REMOTE)

    def client_uri(self) -> str:
        """What pymilvus connects to: an absolute `.db` path, or the server address."""
        if not self.is_local:
            return self.uri
        path = Path(self.uri).expanduser().resolve()
        if path.suffix != ".db":
            raise IndexerError(
                f"a local Milvus URI must be a file ending in .db, got {self.uri!r} "
                "(or give a server address such as http://host:19530)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(path)

    def describe(self) -> str:
        return f"collection {self.collection!r} at {self.uri}"


def _unreachable(exc: BaseException) -> bool:
    code = getattr(exc, "code", None)
    text = str(exc).lower()
    return code in _UNREACHABLE_CODES or any(word in text for word in _UNREACHABLE_WORDS)


@contextmanager
def milvus_errors(location: MilvusLocation, doing: str) -> Iterator[None]:
    """Client errors as IndexUnavailableError (server unreachable) or IndexerError, one
    line naming the location and what was being done."""
    try:
        yield
    except IndexerError:
        raise
    except Exception as exc:
        if type(exc).__module__.split(".")[0] not in _CLIENT_PACKAGES:
            raise
        message = getattr(exc, "message", None) or str(exc)
        if _unreachable(exc):
            raise IndexUnavailableError(
                f"Milvus at {location.uri} is unreachable while {doing}: {message}"
            ) from exc
        raise IndexerError(f"Milvus refused {doing} ({location.describe()}): {message}") from exc


def pymilvus() -> Any:
    """The pymilvus module, imported on first use: it is an optional extra, and importing
    it takes over a second, which FAISS-only commands should not pay."""
    try:
        return importlib.import_module("pymilvus")
    except ImportError as exc:
        raise IndexerError(
            "the Milvus backend needs pymilvus: pip install 'fashion-retrieval[milvus]' "
            "(and 'fashion-retrieval[milvus-lite]' for a local .db file)"
        ) from exc


def connect(location: MilvusLocation) -> Any:
    """A pymilvus MilvusClient for `location` (IndexUnavailableError when the server
    cannot be reached)."""
    client_class = pymilvus().MilvusClient
    uri = location.client_uri()
    with milvus_errors(location, "connecting"):
        return client_class(uri=uri, token=location.token or "", timeout=location.timeout_s)
