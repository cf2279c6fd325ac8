"""The index being served, swappable while requests are in flight.

Each request takes a lease on the index that is current when it starts and keeps
using that index until it finishes, even if a reload swaps in a newer one meanwhile.
A retired index is closed when its last lease ends.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from app.protocols import SearchIndex


@dataclass
class _Slot:
    index: SearchIndex
    owned: bool
    leases: int = 0
    retired: bool = False
    closed: bool = False

    def take_close(self) -> bool:
        """True once, when the slot is retired and unused; call under the holder's lock."""
        if self.retired and self.leases == 0 and not self.closed:
            self.closed = True
            return True
        return False


class IndexHolder:
    def __init__(self, index: SearchIndex, *, owned: bool = True) -> None:
        """`owned`: close `index` when it is retired (False for an index lent by the caller)."""
        self._lock = threading.Lock()
        self._slot = _Slot(index, owned)

    @property
    def current(self) -> SearchIndex:
        """The index new requests get; use `lease()` to use it across awaits."""
        return self._slot.index

    @contextmanager
    def lease(self) -> Iterator[SearchIndex]:
        """Use the current index until the block ends, whatever reloads happen meanwhile."""
        with self._lock:
            slot = self._slot
            slot.leases += 1
        try:
            yield slot.index
        finally:
            with self._lock:
                slot.leases -= 1
                close_now = slot.take_close()
            if close_now:
                self._close(slot)

    def swap(self, index: SearchIndex) -> SearchIndex:
        """Serve `index` from now on (the holder owns it); returns the previous index,
        which is closed as soon as no request uses it."""
        with self._lock:
            old = self._slot
            self._slot = _Slot(index, owned=True)
            old.retired = True
            close_now = old.take_close()
        if close_now:
            self._close(old)
        return old.index

    def close(self) -> None:
        """Retire the current index (at shutdown)."""
        with self._lock:
            slot = self._slot
            slot.retired = True
            close_now = slot.take_close()
        if close_now:
            self._close(slot)

    @staticmethod
    def _close(slot: _Slot) -> None:
        if slot.owned:
            slot.index.close()
