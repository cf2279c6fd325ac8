"""IndexHolder: a request keeps its index across a swap; retired indices close once idle."""

from __future__ import annotations

from types import SimpleNamespace

from app.holder import IndexHolder


class Closable(SimpleNamespace):
    closes = 0

    def close(self) -> None:
        self.closes += 1


def test_lease_survives_a_swap() -> None:
    old, new = Closable(name="old"), Closable(name="new")
    holder = IndexHolder(old)  # type: ignore[arg-type]
    with holder.lease() as leased:
        holder.swap(new)  # type: ignore[arg-type]
        assert holder.current is new
        assert leased is old and old.closes == 0  # still in use
    assert old.closes == 1
    with holder.lease() as leased:
        assert leased is new


def test_idle_index_closes_at_once_and_only_once() -> None:
    first, second, third = Closable(), Closable(), Closable()
    holder = IndexHolder(first)  # type: ignore[arg-type]
    holder.swap(second)  # type: ignore[arg-type]
    assert first.closes == 1
    holder.swap(third)  # type: ignore[arg-type]
    holder.close()
    holder.close()
    assert (first.closes, second.closes, third.closes) == (1, 1, 1)


def test_lent_index_is_not_closed() -> None:
    lent, newer = Closable(), Closable()
    holder = IndexHolder(lent, owned=False)  # type: ignore[arg-type]
    holder.swap(newer)  # type: ignore[arg-type]
    holder.close()
    assert (lent.closes, newer.closes) == (0, 1)
