"""The Milvus backend: the same index API over a shared, distributed vector engine.

from indexer.milvus import MilvusLocation, build_milvus_index, open_milvus_index
where = MilvusLocation("var/milvus.db", collection="fashion_products")  # or http://host:19530
build_milvus_index("data/sample/catalog.csv", model, where)
index = open_milvus_index(where, expected_model_id=model.model_id)
hits = index.search(model.encode_texts(["blue jeans"]), k=10, target="product")

Needs the `milvus` extra (pymilvus), and the `milvus-lite` extra for a local .db file.
"""

from indexer.milvus.build import MilvusBuildReport, build_milvus_index
from indexer.milvus.connection import DEFAULT_COLLECTION, TOKEN_ENV, MilvusLocation
from indexer.milvus.info import describe_milvus_index
from indexer.milvus.schema import choose_milvus_index, parse_index_params
from indexer.milvus.search import MilvusIndex, open_milvus_index
from indexer.milvus.update import update_milvus_index
from indexer.milvus.verify import MilvusVerifyReport, verify_milvus_index

__all__ = [
    "DEFAULT_COLLECTION",
    "TOKEN_ENV",
    "MilvusBuildReport",
    "MilvusIndex",
    "MilvusLocation",
    "MilvusVerifyReport",
    "build_milvus_index",
    "choose_milvus_index",
    "describe_milvus_index",
    "open_milvus_index",
    "parse_index_params",
    "update_milvus_index",
    "verify_milvus_index",
]
