"""UTC timestamps as the package format writes them: `2026-11-24T18:50:00Z`, seconds precision."""

from __future__ import annotations

import datetime as dt
import re

_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def fmt(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: object) -> dt.datetime:
    """Parse the one accepted spelling; raises ValueError for anything else."""
    if not isinstance(text, str) or not _RE.fullmatch(text):
        raise ValueError(f"not a UTC timestamp of the form YYYY-MM-DDTHH:MM:SSZ: {text!r}")
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
