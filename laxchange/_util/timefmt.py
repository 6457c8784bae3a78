"""UTC timestamps as the package format writes them: `2026-11-24T18:50:00Z`, seconds precision."""

from __future__ import annotations

import datetime as dt
import functools
import re
from zoneinfo import ZoneInfo

#: Dates in the guidance, and in records, are English dates: "today" and the start of a day are taken here.
ENGLAND = ZoneInfo("Europe/London")

#: ASCII digits only: `\d` alone takes any Unicode decimal digit, and int() reads "２０２６" as 2026
_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def fmt(t: dt.datetime) -> str:
    """`2026-11-24T18:50:00Z`: the one spelling of a timestamp in packages, cards, ledger and audit."""
    u = t if t.tzinfo is dt.UTC else t.astimezone(dt.UTC)
    if u.year < 1000:  # strftime's %Y is not zero-padded there (glibc): keep its spelling
        return u.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    # Formatted directly: strftime took ~5 us, and a package writes two of these.
    return f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}Z"


#: `compact`'s spelling, for strftime and strptime
_COMPACT = "%Y%m%dT%H%M%SZ"


def compact(t: dt.datetime) -> str:
    """`20261124T185000Z`: the same instant for file names (no colons)."""
    return t.astimezone(dt.UTC).strftime(_COMPACT)


def parse_compact(text: str) -> dt.datetime:
    """The instant `compact` spelled as `text`; ValueError for anything else."""
    return dt.datetime.strptime(text, _COMPACT).replace(tzinfo=dt.UTC)


def parse(text: object) -> dt.datetime:
    if isinstance(text, str):
        return _parse(text)
    raise ValueError(f"not a UTC timestamp: {text!r}")


@functools.lru_cache(maxsize=1024)
def _parse(text: str) -> dt.datetime:
    """Parse the one accepted spelling; raises ValueError for anything else."""
    if not _RE.fullmatch(text):
        raise ValueError(f"not a UTC timestamp of the form YYYY-MM-DDTHH:MM:SSZ: {text!r}")
    return dt.datetime(int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]), int(text[14:16]),
                       int(text[17:19]), tzinfo=dt.UTC)


def weekdays(start: dt.date, end: dt.date) -> int:
    """Mondays to Fridays from `start` to `end`, both counted (0 if `end` is before `start`): the
    most school days a period can hold, whatever its holidays."""
    days = (end - start).days + 1
    if days <= 0:
        return 0
    weeks, rest = divmod(days, 7)
    return weeks * 5 + sum(1 for i in range(rest) if (start.weekday() + i) % 7 < 5)
