"""How many catalogue rows a build may skip before it fails.

Malformed rows and products whose photo is missing, unreadable or over the pixel budget
are reported and skipped; a few are expected in any real catalogue. Many mean something
is broken (an unmounted image volume, a wrong path prefix): past the limit the build
fails and publishes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from indexer.errors import IndexerError, TooManySkippedError

DEFAULT_MAX_SKIPPED = "1%"


@dataclass(frozen=True)
class SkipLimit:
    """At most `count` rows, or at most `percent` % of the catalogue's rows."""

    count: int | None = None
    percent: float | None = None

    def allowed(self, rows: int) -> int:
        if self.count is not None:
            return self.count
        return int(rows * (self.percent or 0.0) / 100.0)

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else str(self.count)


def parse_max_skipped(text: str | int | SkipLimit) -> SkipLimit:
    """Parse "25" (at most 25 rows) or "1%" or "0.5%" (a share of the catalogue's rows)."""
    if isinstance(text, SkipLimit):
        return text
    raw = str(text).strip()
    try:
        if raw.endswith("%"):
            percent = float(raw[:-1])
            if not 0.0 <= percent <= 100.0:
                raise ValueError(raw)
            return SkipLimit(percent=percent)
        count = int(raw)
        if count < 0:
            raise ValueError(raw)
        return SkipLimit(count=count)
    except ValueError:
        raise IndexerError(
            f"--max-skipped takes a number of rows or a percentage (25, 1%), not {raw!r}"
        ) from None


def check_skipped(reasons: Sequence[str], rows: int, limit: SkipLimit) -> None:
    """Raise TooManySkippedError when more of `rows` were skipped than `limit` allows;
    `reasons` is one line per skipped row ("id: why")."""
    allowed = limit.allowed(rows)
    if len(reasons) <= allowed:
        return
    shown = "; ".join(reasons[:3])
    raise TooManySkippedError(
        f"{len(reasons)} of {rows} catalogue rows were skipped, more than --max-skipped "
        f"{limit} allows ({allowed}); nothing was published. First: {shown}. Fix the rows "
        "(is the image folder mounted?) or raise --max-skipped"
    )
