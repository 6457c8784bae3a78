"""Domain rules: what a schema cannot say (check letters, code lists, date order, guidance)."""

from __future__ import annotations

from typing import Any, Iterator

from ..clock import Clock
from .report import Finding


def check(doc: Any, name: str, version: str, *, clock: Clock) -> Iterator[Finding]:
    return iter(())
