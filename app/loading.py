"""Load what the service serves: the model, and the index built with it.

With no index configured, the bundled sample catalogue's index is served, built on
first start into `sample_dir/<model id>` (one per model, so switching models never
serves an index of another model).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from app.milvus_backend import milvus_opener, open_or_build_milvus
from app.protocols import Encoder, SearchIndex
from app.settings import IndexSettings, ModelSettings, RankingSettings, Settings
from indexer import CORRECTED_TARGETS, ProductIndex, build_index, open_index
from indexer.errors import IndexNotFoundError, ModelMismatchError
from indexer.manifest import check_model
from indexer.scan import set_blas_threads
from models.encoders import load_encoder as load_runtime_encoder
from models.hubness import photo_bank_of, query_bank_of

logger = logging.getLogger(__name__)

# Bank queries encoded per call (the micro-batcher's sizes; see with_hubness).
BANK_BATCH_SIZE = 16

# Path of a FAISS index directory, or a Milvus URI (its opener knows the collection).
IndexOpener = Callable[[Path | str], SearchIndex]


@dataclass
class Serving:
    """What one app serves: the model, the index, and how to reopen the index."""

    model: Encoder
    index: SearchIndex
    index_path: Path | str | None
    open_index: IndexOpener


def load_encoder(settings: ModelSettings) -> Encoder:
    """The model artifact of the settings (None: the bundled default model), encoding
    with the configured runtime (ONNX Runtime on the CPU when installed)."""
    encoder = load_runtime_encoder(
        settings.path, settings.device, runtime=settings.runtime, threads=settings.threads
    )
    # The index scans (indexer.scan, numpy's BLAS): one thread per search, as FAISS.
    set_blas_threads(1)
    torch = sys.modules.get("torch")  # never imported here: the CPU encoders run without it
    if torch is None:
        return encoder
    if not _runs_on_torch(encoder):
        # PyTorch scans only with scan "float16", or was loaded to export the graphs.
        torch.set_num_threads(1)
    elif settings.threads:
        # Process-wide; on a CPU shared with other busy processes fewer threads spin less.
        torch.set_num_threads(settings.threads)
    return encoder


def _runs_on_torch(encoder: Encoder) -> bool:
    """A JointModel (runtime "torch", CUDA, or the fallback), told without importing
    models.joint, which imports PyTorch."""
    joint = sys.modules.get("models.joint")
    return joint is not None and isinstance(encoder, joint.JointModel)


def default_opener(
    settings: IndexSettings, milvus_token: str | None = None, *, model_id: str | None = None
) -> IndexOpener:
    """Opens the published index; with `model_id`, the indexer refuses (before loading
    it) an index built with another model."""
    if settings.backend == "milvus":
        return milvus_opener(settings, milvus_token, expected_model_id=model_id)
    return partial(
        open_index, device=settings.device, scan=settings.scan, expected_model_id=model_id
    )


def with_hubness(opener: IndexOpener, model: Encoder, ranking: RankingSettings) -> IndexOpener:
    """Opens like `opener`, then measures every product's hubness against the model's
    banks (ProductIndex.set_hubness): photos and product vectors against its query bank,
    so that long text queries are corrected, and titles against its photo bank, so that
    photo uploads are (models.hubness). The query bank is encoded once, at the first
    open. Without banks, with alpha 0, or on Milvus, searches rank by cosine alone."""
    bank_texts = query_bank_of(model)
    photo_bank = photo_bank_of(model)
    if ranking.hubness_alpha == 0 or not (bank_texts or photo_bank is not None):
        logger.info(
            "hubness correction off (%s)",
            "alpha 0" if ranking.hubness_alpha == 0 else f"model {model.model_id} has no banks",
        )
        return opener
    bank: list = []  # the encoded bank, once
    lock = threading.Lock()

    def open_corrected(path: Path | str) -> SearchIndex:
        index = opener(path)
        if not isinstance(index, ProductIndex):  # Milvus
            logger.info("hubness correction off: a %s ranks by cosine alone", type(index).__name__)
            return index
        with lock:
            if not bank:
                # In the service's own batch sizes: OpenVINO keeps memory for each input
                # shape it has run, and batches of 256 titles held 150 MB more for good.
                bank.append(
                    model.encode_texts(bank_texts, batch_size=BANK_BATCH_SIZE)
                    if bank_texts
                    else None
                )
        started = time.perf_counter()
        try:
            index.set_hubness(bank[0], photo_bank=photo_bank, alpha=ranking.hubness_alpha)
        except BaseException:
            index.close()
            raise
        logger.info(
            "hubness correction on: %d products against %d bank queries and %d bank photos "
            "in %.1f s (alpha %g; text queries of %d+ words over targets %s; uploads over %s)",
            len(index),
            len(bank_texts),
            0 if photo_bank is None else len(photo_bank),
            time.perf_counter() - started,
            ranking.hubness_alpha,
            ranking.hubness_min_words,
            ", ".join(t for t in CORRECTED_TARGETS["text"] if t in index.hubness_targets) or "none",
            ", ".join(t for t in CORRECTED_TARGETS["image"] if t in index.hubness_targets)
            or "none",
        )
        return index

    return open_corrected


def open_checked(path: Path | str, model: Encoder, opener: IndexOpener) -> SearchIndex:
    """Open the published index at `path`; refuse one built with another model."""
    return _checked_model(opener(path), model, path)


def _checked_model(index: SearchIndex, model: Encoder, path: Path | str | None) -> SearchIndex:
    """The indexer's rule (ModelMismatchError), also for indices that openers handed in
    by the caller open, or that the caller hands in itself; a refused index is closed."""
    try:
        check_model(index.manifest.model_id, model.model_id, path if path is not None else "")
    except ModelMismatchError:
        index.close()
        raise
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
    model = model if model is not None else load_encoder(settings.model)
    opener = with_hubness(
        opener or default_opener(settings.index, settings.milvus_token, model_id=model.model_id),
        model,
        settings.ranking,
    )
    path: Path | str | None = settings.index.path
    if settings.index.backend == "milvus":
        path = settings.index.milvus_uri  # what reload reopens, through the Milvus opener
    if index is not None:  # the caller's: checked, never closed here
        check_model(index.manifest.model_id, model.model_id, "handed to the service")
    elif settings.index.backend == "milvus":
        index = open_or_build_milvus(settings.index, model, opener, settings.milvus_token)
        index = _checked_model(index, model, path)
    else:
        path, index = open_or_build(settings.index, model, opener)
    return Serving(model=model, index=index, index_path=path, open_index=opener)
