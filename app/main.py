"""`create_app()`: the FastAPI application, with a lifespan that loads model and index.

uvicorn --factory app.main:create_app      # settings from FASHION_* variables
fashion-retrieval serve --index var/index  # the CLI, same app
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.errors import ReloadError, install_error_handlers
from app.holder import IndexHolder
from app.limits import BodySizeLimitMiddleware, body_limits
from app.loading import IndexOpener, Serving, open_checked, prepare
from app.metrics import Metrics, MetricsMiddleware
from app.protocols import Encoder, SearchIndex
from app.query_cache import QueryCache
from app.reloader import Reloader
from app.routes import admin, facets, health, products, search, ui
from app.search import SearchService
from app.settings import Settings

logger = logging.getLogger(__name__)


def _package_version() -> str:
    """The installed distribution's version (pyproject.toml's), for the OpenAPI document."""
    try:
        return importlib.metadata.version("fashion-retrieval")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "0+unknown"


VERSION = _package_version()


def _reopen(serving: Serving) -> SearchIndex:
    if serving.index_path is None:
        raise ReloadError("no index path is configured to reload from (set FASHION_INDEX__PATH)")
    return open_checked(serving.index_path, serving.model, serving.open_index)


@asynccontextmanager
async def _lifespan(
    app: FastAPI,
    *,
    model: Encoder | None,
    index: SearchIndex | None,
    opener: IndexOpener | None,
    prepared: Serving | None,
) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    metrics: Metrics = app.state.metrics
    serving = prepared
    if serving is None:
        serving = await asyncio.to_thread(
            prepare, settings, model=model, index=index, opener=opener
        )
    # An index handed in by the caller (or prepared by it) stays the caller's to close.
    holder = IndexHolder(serving.index, owned=index is None and prepared is None)
    service = SearchService(
        serving.model,
        holder,
        metrics,
        batching=settings.batching,
        limits=settings.limits,
        query_cache=QueryCache(settings.query_cache.size),
        ranking=settings.ranking,
    )
    service.start()
    app.state.reloader = Reloader(
        holder,
        partial(_reopen, serving),
        metrics,
        model_id=serving.model.model_id,
        on_swap=service.model_changed,
    )
    metrics.set_serving(model_id=serving.model.model_id, index_size=len(serving.index))
    app.state.service = service
    logger.info("ready: %d products, model %s", len(serving.index), serving.model.model_id)
    try:
        yield
    finally:
        app.state.service = None
        await service.stop()
        holder.close()


def create_app(
    settings: Settings | None = None,
    *,
    model: Encoder | None = None,
    index: SearchIndex | None = None,
    open_index: IndexOpener | None = None,
    serving: Serving | None = None,
) -> FastAPI:
    """The service. Settings default to the FASHION_* environment. `model`, `index` and
    `open_index` (path -> index, used by reload) replace what the settings would load;
    tests pass them. `serving` is what `app.loading.prepare` already loaded (the CLI
    loads before it starts the server, to report a bad model or index as one line): the
    lifespan then serves it as it is, without preparing again."""
    settings = settings if settings is not None else Settings()
    metrics = Metrics()
    app = FastAPI(
        title="Fashion retrieval",
        version=VERSION,
        summary="Search a fashion catalogue by text or by photo.",
        lifespan=partial(_lifespan, model=model, index=index, opener=open_index, prepared=serving),
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.service = None
    install_error_handlers(app)
    # Added innermost first: metrics sees every answer, including refused bodies.
    app.add_middleware(
        BodySizeLimitMiddleware,
        limit_for=body_limits(
            max_upload_bytes=settings.limits.max_upload_bytes,
            max_json_bytes=settings.limits.max_json_bytes,
        ),
        body_timeout_s=settings.server.body_timeout_s,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    for module in (search, products, facets, admin, health, ui):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=ui.STATIC_DIR), name="static")
    return app
