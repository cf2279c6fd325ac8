"""Progress of long work (training epochs, encoding a catalogue): a tqdm bar on a
terminal, plain lines in a log.

On a terminal tqdm redraws one line with carriage returns. In docker logs, CI or a
file every redraw would stay (thousands of frames per run), so there the bar writes
a whole line at most every `interval` seconds, and its last state when it closes:

    epoch 1/2:  22% 101/465 [15:15<55:25, 9.14s/batch, loss=46.5779]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from tqdm import tqdm

LOG_INTERVAL_S = 30.0


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    total: int | None = None,
    desc: str | None = None,
    unit: str = "it",
    initial: int = 0,
    disable: bool = False,
    file: TextIO | None = None,
    interval: float = LOG_INTERVAL_S,
    clock: Callable[[], float] = time.monotonic,
) -> tqdm:
    """A tqdm bar over `iterable` (or updated by hand up to `total`) on `file` (stderr).

    When `file` is not a terminal, progress is a plain line every `interval` seconds
    (by `clock`), without carriage returns or a drawn bar.
    """
    stream = file if file is not None else sys.stderr
    common = {"total": total, "desc": desc, "unit": unit, "initial": initial}
    if disable or _is_terminal(stream):
        return tqdm(iterable, disable=disable, file=stream, **common)
    return _LogBar(
        iterable,
        stream=stream,
        interval=interval,
        clock=clock,
        mininterval=interval,
        ascii=True,
        bar_format=_log_format(desc, total if total is not None else _length(iterable)),
        **common,
    )


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _length(iterable: Iterable[Any] | None) -> int | None:
    try:
        return len(iterable)  # type: ignore[arg-type]
    except TypeError:
        return None


def _log_format(desc: str | None, total: int | None) -> str:
    prefix = "{desc}: " if desc else ""
    if total is None:
        return prefix + "{n_fmt} [{elapsed}, {rate_fmt}{postfix}]"
    return (
        prefix
        + "{percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
    )


class _Discard:
    """Where tqdm's own carriage returns and newlines go in a log."""

    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass


class _LogBar(tqdm):
    """tqdm whose redraws are whole lines on `stream`: at most one every `interval`
    seconds, and the final state when it closes (unless that line is already out)."""

    def __init__(
        self,
        *args: Any,
        stream: TextIO,
        interval: float,
        clock: Callable[[], float],
        **kwargs: Any,
    ) -> None:
        self._stream, self._interval, self._clock = stream, interval, clock
        self._last_time: float | None = None
        self._last_n: float | None = None
        super().__init__(*args, file=_Discard(), **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if msg == "":  # tqdm blanking the line
            return True
        now = self._clock()
        closing = self.disable  # tqdm.close disables the bar, then draws it a last time
        due = self._last_time is None or now - self._last_time >= self._interval
        if (closing and self.n != self._last_n) or (not closing and due):
            self._stream.write(f"{self.__str__() if msg is None else msg}\n")
            self._stream.flush()
            self._last_time, self._last_n = now, self.n
        return True
