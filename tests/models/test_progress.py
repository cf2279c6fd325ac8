"""models.progress: a tqdm bar on a terminal; whole lines, a few per minute, in a log.

Time comes from an injected clock: nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import io

from tqdm import tqdm

from models.progress import progress_bar


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _train(bar: tqdm, clock: Clock, steps: int, seconds_per_step: float) -> None:
    for step in range(steps):
        clock.now += seconds_per_step
        bar.update(1)
        bar.set_postfix(loss=f"{1 / (step + 1):.4f}")  # forces a redraw every step
    bar.close()


def test_in_a_log_progress_is_a_line_per_interval_and_the_final_state() -> None:
    log, clock = io.StringIO(), Clock()
    bar = progress_bar(
        total=100, desc="epoch 1/2", unit="batch", file=log, interval=30.0, clock=clock
    )
    _train(bar, clock, steps=100, seconds_per_step=1.0)  # 100 s
    text = log.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert [line.split()[2] for line in lines] == ["0%", "30%", "60%", "90%", "100%"]
    assert all(line.startswith("epoch 1/2: ") for line in lines)
    assert lines[-1].startswith("epoch 1/2: 100% 100/100 [") and "loss=0.0100" in lines[-1]


def test_the_final_state_is_written_once() -> None:
    log, clock = io.StringIO(), Clock()
    bar = progress_bar(total=2, desc="d", file=log, interval=5.0, clock=clock)
    _train(bar, clock, steps=2, seconds_per_step=10.0)  # every redraw is due
    assert [line.split()[2] for line in log.getvalue().splitlines()] == ["0/2", "1/2", "2/2"]


def test_an_iterable_of_unknown_length_and_a_with_block() -> None:
    log = io.StringIO()
    assert list(progress_bar(iter(range(3)), file=log, clock=Clock())) == [0, 1, 2]
    assert [line.split()[0] for line in log.getvalue().splitlines()] == ["0", "3"]
    log = io.StringIO()
    with progress_bar(total=4, desc="encoding", unit=" products", file=log) as bar:
        bar.update(4)
    assert log.getvalue().splitlines()[-1].startswith("encoding: 100% 4/4 [")


def test_a_terminal_gets_tqdm_s_redrawn_bar() -> None:
    terminal, clock = Terminal(), Clock()
    bar = progress_bar(total=3, desc="epoch 1/2", file=terminal, clock=clock)
    _train(bar, clock, steps=3, seconds_per_step=1.0)
    assert "\r" in terminal.getvalue() and "|" in terminal.getvalue()  # redrawn, with a bar


def test_a_disabled_bar_writes_nothing() -> None:
    for stream in (io.StringIO(), Terminal()):
        with progress_bar(total=3, file=stream, disable=True) as bar:
            bar.update(3)
        assert stream.getvalue() == ""
