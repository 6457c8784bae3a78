"""Quarantine: where a package that fails verification goes. Kept, never deleted, never imported.

A package from the inbox is moved (so an unattended run does not try it again); any other file
is copied and left where it was. Each quarantined file gets a sidecar JSON with the reason code,
the failing JSON paths and rule ids, its SHA-256 and when it happened, and a name with no personal
data in it. Error messages are not stored: they may quote a child's details.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from laxchange._util import jsonio, timefmt
from laxchange._util.fs import sha256_file
from laxchange.clock import Clock, SystemClock
from laxchange.errors import LaxError
from laxchange.home import Home, json_object, load_home_file


@dataclass(frozen=True)
class Quarantined:
    path: Path
    record: dict[str, Any]


def quarantine(home: Home, source: Path, error: LaxError, *, clock: Clock | None = None) -> Quarantined:
    """Put `source` in the home's quarantine with the reason; move it if it came from the inbox."""
    home.ensure()
    now = (clock or SystemClock()).now()
    stem = f"{timefmt.compact(now)}-{secrets.token_hex(4)}"
    target = home.quarantine / f"{stem}.lax"
    from_inbox = source.resolve().parent == home.inbox.resolve()
    if from_inbox:
        os.replace(source, target)
    else:
        shutil.copyfile(source, target)
    os.chmod(target, 0o600)
    record = {
        "quarantined_at": timefmt.fmt(now),
        "reason": error.code,
        "kind": type(error).__name__,
        # Codes and JSON paths only: messages can quote the record's values (a UPN, a date of birth).
        "findings": [{"path": e.get("path"), "rule": e.get("rule")}
                     for e in error.details.get("errors", []) if isinstance(e, dict)][:50],
        "exit_code": error.exit_code,
        "sha256": sha256_file(target),
        "size": target.stat().st_size,
        "moved_from_inbox": from_inbox,
    }
    jsonio.write_atomic(target.with_suffix(".json"), jsonio.dumps_pretty(record).encode("utf-8"))
    return Quarantined(target, record)


def entries(home: Home) -> list[Quarantined]:
    """Everything in quarantine, oldest first."""
    if not home.quarantine.is_dir():
        return []
    out = []
    for meta in sorted(home.quarantine.glob("*.json")):
        out.append(Quarantined(meta.with_suffix(".lax"), load_home_file(meta, json_object, what="quarantine record")))
    return out
