"""Injectable clocks, so tests control time without monkeypatching."""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime: ...
    def today(self) -> dt.date: ...


class SystemClock:
    """The real UTC clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def today(self) -> dt.date:
        return self.now().date()


class FixedClock:
    """A clock that says what it is told; `advance` moves it."""

    def __init__(self, at: dt.datetime) -> None:
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        self._at = at

    def now(self) -> dt.datetime:
        return self._at

    def today(self) -> dt.date:
        return self._at.date()

    def advance(self, **kwargs: float) -> None:
        self._at = self._at + dt.timedelta(**kwargs)
