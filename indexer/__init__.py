"""FAISS indices of the catalogue: build, update, publish atomically, open and search.

from indexer import build_index, open_index
build_index("data/sample/catalog.csv", model, "var/index")
index = open_index("var/index", expected_model_id=model.model_id)
hits = index.search(model.encode_texts(["blue jeans"]), k=10, target="product")
more = index.similar(hits[0][0].id, k=10, target="image")
"""

from indexer.build import build_index
from indexer.errors import (
    CatalogImageError,
    DeviceError,
    EncoderError,
    IndexCorruptError,
    IndexerError,
    IndexLockedError,
    IndexNotFoundError,
    IndexTypeError,
    IndexUnavailableError,
    InvalidFilterError,
    InvalidQueryError,
    ModelMismatchError,
    TargetUnavailableError,
    UnknownAttributeError,
    UnknownProductError,
)
from indexer.manifest import TARGETS, Manifest, Target
from indexer.search import CORRECTED_TARGETS, Hit, ProductIndex, open_index
from indexer.update import update_index
from indexer.verify import VerifyReport, verify_index
from indexer.versions import BuildReport

__all__ = [
    "CORRECTED_TARGETS",
    "TARGETS",
    "BuildReport",
    "CatalogImageError",
    "DeviceError",
    "EncoderError",
    "Hit",
    "IndexCorruptError",
    "IndexLockedError",
    "IndexNotFoundError",
    "IndexTypeError",
    "IndexUnavailableError",
    "IndexerError",
    "InvalidFilterError",
    "InvalidQueryError",
    "Manifest",
    "ModelMismatchError",
    "ProductIndex",
    "Target",
    "TargetUnavailableError",
    "UnknownAttributeError",
    "UnknownProductError",
    "VerifyReport",
    "build_index",
    "open_index",
    "update_index",
    "verify_index",
]
