"""Errors raised by the indexer. Messages name the bad file, product or value and the fix."""


class IndexerError(Exception):
    """Base class of every error raised by `indexer`."""


class IndexNotFoundError(IndexerError):
    """No published index at the given path (no CURRENT pointer, no manifest)."""


class IndexCorruptError(IndexerError):
    """A file of a published index is missing, damaged, or disagrees with the manifest."""


class ModelMismatchError(IndexerError):
    """The index was built with another model than the one in use."""


class UnknownAttributeError(IndexerError):
    """A search filter names an attribute that no product has."""


class InvalidFilterError(IndexerError):
    """A search filter value is neither a string nor a list of strings."""


class InvalidQueryError(IndexerError):
    """Query vectors have the wrong shape, or k is not a positive integer."""


class CatalogImageError(IndexerError):
    """A catalogue image could not be read or decoded during a build."""


class UnknownProductError(IndexerError):
    """A product id the index does not hold (to delete, or to find similar products to)."""


class TargetUnavailableError(IndexerError):
    """The index has no vectors for the requested search target (e.g. "product" in an
    index built before product vectors existed)."""


class IndexTypeError(IndexerError):
    """A FAISS factory string is invalid or cannot be built from the given vectors."""


class DeviceError(IndexerError):
    """The requested device is unknown or not available (e.g. cuda without faiss-gpu)."""


class IndexLockedError(IndexerError):
    """Another build or update is writing the same index directory."""


class EncoderError(IndexerError):
    """The encoder returned embeddings of the wrong shape or dtype."""


class TooManySkippedError(IndexerError):
    """More catalogue rows were skipped than the build's --max-skipped allows."""


class CacheError(IndexerError):
    """The embedding cache cannot be read or written (a full disk, no permission)."""


class StorageError(IndexerError):
    """Writing an index directory failed: a full disk, no permission, a read-only volume."""


class IndexUnavailableError(IndexerError):
    """The index's server (Milvus) cannot be reached; it may come back by itself."""
