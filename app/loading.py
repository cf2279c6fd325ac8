"""Load what the service serves: the model, and the index built with it.

With no index configured, the bundled sample catalogue's index is served, built on
first start into `sample_dir/<model id>` (one per model, so switching models never
serves an index of another model).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from app.errors import IndexModelMismatchError
from app.protocols import Encoder, SearchIndex
from app.settings import IndexSettings, ModelSettings, Settings
from indexer import build_index, open_index
from indexer.errors import IndexNotFoundError
from models import load_model

logger = logging.getLogger(__name__)

IndexOpener = Callable[[Path], SearchIndex]


@dataclass
class Serving:
    """What one app serves: the model, the index, and how to reopen the index."""

    model: Encoder
    index: SearchIndex
    index_path: Path | None
    open_index: IndexOpener


def load_encoder(settings: ModelSettings) -> Encoder:
    """The model artifact of the settings (None: the bundled default model)."""
    if settings.threads:
        # Process-wide; on a CPU shared with other busy processes fewer threads spin less.
        torch.set_num_threads(settings.threads)
    return load_model(settings.path, device=settings.device)


def default_opener(settings: IndexSettings) -> IndexOpener:
    return partial(open_index, device=settings.device)


def open_checked(path: Path, model: Encoder, opener: IndexOpener) -> SearchIndex:
    """Open the published index at `path`; refuse one built with another model."""
    index = opener(path)
    if index.manifest.model_id != model.model_id:
        built_with = index.manifest.model_id
        index.close()
        raise IndexModelMismatchError(
            f"the index {path} was built with model {built_with}, but the service loaded "
            f"model {model.model_id}; rebuild the index with this model "
            "(fashion-retrieval index build) or serve the model it was built with"
        )
    return index


def index_path_for(settings: IndexSettings, model: Encoder) -> Path:
    """The configured index, or the sample catalogue's index for this model."""
    if settings.path is not None:
        return settings.path
    return settings.sample_dir / model.model_id


def build_from_catalog(path: Path, *, catalog: Path, model: Encoder) -> None:
    """Build the index of `catalog` into `path` (first start without an index)."""
    logger.info("building the index of %s into %s (first start; takes a while)", catalog, path)
    build_index(catalog, model, path)
    logger.info("index built: %s", path)


def open_or_build(
    settings: IndexSettings, model: Encoder, opener: IndexOpener
) -> tuple[Path, SearchIndex]:
    """Open the index the service serves, building it first when allowed and absent.

    The sample index, or a configured one with `build_if_missing`, is built from
    `settings.catalog` when absent; a configured index without that flag must exist.
    """
    path = index_path_for(settings, model)
    try:
        return path, open_checked(path, model, opener)
    except IndexNotFoundError:
        if settings.path is not None and not settings.build_if_missing:
            raise
    build_from_catalog(path, catalog=settings.catalog, model=model)
    return path, open_checked(path, model, opener)


def prepare(
    settings: Settings,
    *,
    model: Encoder | None = None,
    index: SearchIndex | None = None,
    opener: IndexOpener | None = None,
) -> Serving:
    """Load (or take) the model and the index. Blocking: run it in a worker thread."""
    opener = opener or default_opener(settings.index)
    model = model if model is not None else load_encoder(settings.model)
    path = settings.index.path
    if index is None:
        path, index = open_or_build(settings.index, model, opener)
    elif index.manifest.model_id != model.model_id:
        raise IndexModelMismatchError(
            f"the index was built with model {index.manifest.model_id}, "
            f"but the service uses model {model.model_id}"
        )
    return Serving(model=model, index=index, index_path=path, open_index=opener)
