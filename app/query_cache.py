"""An in-memory LRU cache of text-query embeddings: a popular query is encoded once.

Keys are (model id, normalised query). The normalisation (lower case, runs of
whitespace as one space, trimmed) changes nothing either text tower sees: both
tokenisers lower-case and split on whitespace. The service encodes the normalised query
itself, so a hit returns exactly the vector a miss would have computed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np


def normalise_query(query: str) -> str:
    """'  Navy  Blue\tShirt ' -> 'navy blue shirt'."""
    return " ".join(query.split()).lower()


class QueryCache:
    """Up to `size` embeddings (D,) float32, least recently used evicted first; size 0
    stores nothing. Thread-safe."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, model_id: str, query: str) -> np.ndarray | None:
        """The cached embedding of a normalised query, or None."""
        key = (model_id, query)
        with self._lock:
            vector = self._entries.get(key)
            if vector is not None:
                self._entries.move_to_end(key)
            return vector

    def put(self, model_id: str, query: str, vector: np.ndarray) -> None:
        if self.size <= 0:
            return
        frozen = np.array(vector, dtype=np.float32, copy=True)
        frozen.flags.writeable = False  # shared by every request that hits it
        with self._lock:
            self._entries[(model_id, query)] = frozen
            self._entries.move_to_end((model_id, query))
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def keep_model(self, model_id: str) -> int:
        """Drop the entries of every other model (after a reload changed the model);
        returns how many were dropped."""
        with self._lock:
            stale = [key for key in self._entries if key[0] != model_id]
            for key in stale:
                del self._entries[key]
            return len(stale)
