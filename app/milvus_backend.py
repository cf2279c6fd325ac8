"""Serving a Milvus index: where it is, how to open it, and building it on first start.

With FASHION_INDEX__BACKEND=milvus a replica needs only the URI and the collection name
(and the photos' base folder): everything a query reads is in Milvus. Reload
(POST /v1/admin/reload) opens the version the collection alias names now.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from app.protocols import Encoder, SearchIndex
from app.settings import IndexSettings
from indexer.errors import IndexNotFoundError
from indexer.milvus import MilvusLocation, build_milvus_index, open_milvus_index

logger = logging.getLogger(__name__)


def milvus_location(settings: IndexSettings, token: str | None) -> MilvusLocation:
    return MilvusLocation(settings.milvus_uri, settings.collection, token=token)


def milvus_opener(
    settings: IndexSettings, token: str | None, *, expected_model_id: str | None = None
) -> Callable[[object], SearchIndex]:
    """An opener for app.loading: its argument (the index path of the FAISS backend)
    is ignored; the location comes from the settings. With `expected_model_id` the
    indexer refuses an index of another model."""
    location = milvus_location(settings, token)

    def open_published(_where: object = None) -> SearchIndex:
        return open_milvus_index(
            location, expected_model_id=expected_model_id, images_dir=settings.images_dir
        )

    return open_published


def open_or_build_milvus(
    settings: IndexSettings,
    model: Encoder,
    opener: Callable[[Path | str], SearchIndex],
    token: str | None,
) -> SearchIndex:
    """Open the published Milvus index; with build_if_missing, build it from
    settings.catalog first when the alias names none."""
    try:
        return opener(settings.milvus_uri)
    except IndexNotFoundError:
        if not settings.build_if_missing:
            raise
    location = milvus_location(settings, token)
    logger.info("building the index of %s into %s (first start)", settings.catalog, location)
    build_milvus_index(Path(settings.catalog), model, location, progress=False)
    return opener(settings.milvus_uri)
