"""Quarantine: where a package that fails verification goes. Kept, never deleted, never imported.

Only files that arrived in the inbox are quarantined, and they are moved (so an unattended run
does not try them again); a file someone names on the command line is refused and left where it
is, never copied (a plaintext record opened by mistake must not gain a second copy). Each
quarantined file gets a sidecar JSON with the reason code, the failing JSON paths and rule ids,
its SHA-256 and when it happened, and a name with no personal data in it. Error messages are
not stored: they may quote a child's details.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from laxchange._util import jsonio, timefmt
from laxchange._util.fs import move_new, sha256_file
from laxchange.clock import Clock, SystemClock
from laxchange.errors import LaxError, UsageError
from laxchange.home import Home, json_object, load_home_file


@dataclass(frozen=True)
class Quarantined:
    path: Path
    record: dict[str, Any]


def in_inbox(home: Home, source: Path) -> bool:
    """Did `source` arrive in the home's inbox (it is a file directly in it)? A name in the inbox
    that is no symbolic link is, with one lstat (an import asks this of every package); any other
    is resolved, both sides, as ever (a link in the inbox to a file elsewhere is not in it)."""
    if source.parent == home.inbox and source.name not in ("", ".", "..") and not source.is_symlink():
        return True
    return source.resolve().parent == home.inbox.resolve()


def in_quarantine(home: Home, source: Path) -> bool:
    """Is `source` a file in the home's quarantine (or a folder under it)?"""
    return home.quarantine.resolve() in source.resolve().parents


def quarantine(home: Home, source: Path, error: LaxError, *, clock: Clock | None = None,
               about: Mapping[str, str | None] | None = None) -> Quarantined:
    """Move `source`, a file in the home's inbox, into quarantine with the reason. `about`: ids of
    whom it is from, kept in the record where known (`transfer_id` and `sender`, authenticated;
    `delivered_into_folder_of`, the login it was collected from): ids only, never a name."""
    if not in_inbox(home, source):
        raise UsageError(f"{source} is not in the inbox {home.inbox}; only inbox files are quarantined",
                         hint="a file named by hand is refused and left where it is")
    home.ensure()
    now = (clock or SystemClock()).now()
    stem = f"{timefmt.compact(now)}-{secrets.token_hex(4)}"
    target = home.quarantine / f"{stem}.lax"
    os.replace(source, target)
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
        "moved_from_inbox": True,
        **{k: v for k, v in (about or {}).items() if v is not None},
    }
    jsonio.write_atomic(target.with_suffix(".json"), jsonio.dumps_pretty(record).encode("utf-8"))
    return Quarantined(target, record)


def recorded_for(home: Home, transfers: Collection[tuple[str, str]]) -> dict[tuple[str, str], list[Quarantined]]:
    """The packages in quarantine, moved there from the inbox, whose records name one of `transfers`
    (transfer id, sender: written only once both were authenticated), by transfer, oldest first.
    Only a package with its record is listed; a record that cannot be read is passed over (`entries`
    lists it, refused, for someone to look at)."""
    wanted = set(transfers)
    out: dict[tuple[str, str], list[Quarantined]] = {}
    if not wanted or not home.quarantine.is_dir():
        return out
    for meta in sorted(home.quarantine.glob("*.json")):
        try:
            record = load_home_file(meta, json_object, what="quarantine record")
        except LaxError:
            continue
        key = (record.get("transfer_id"), record.get("sender"))
        f = meta.with_suffix(".lax")
        if key in wanted and record.get("moved_from_inbox") and isinstance(record.get("reason"), str) and f.is_file():
            out.setdefault((str(key[0]), str(key[1])), []).append(Quarantined(f, record))
    return out


#: The reason listed for a quarantined file without its record: a run was stopped (a service stop,
#: a kill) between moving the file in and writing why.
REASON_UNRECORDED = "reason.unrecorded"


def entries(home: Home) -> list[Quarantined]:
    """Everything in quarantine, oldest first (names begin with the time). A package whose record
    was never written (`REASON_UNRECORDED`) is listed too: it must not go unseen."""
    if not home.quarantine.is_dir():
        return []
    out = []
    # every record (a damaged one is refused, as ever), and every package without one
    for stem in sorted({p.stem for p in (*home.quarantine.glob("*.json"), *home.quarantine.glob("*.lax"))}):
        f, meta = home.quarantine / f"{stem}.lax", home.quarantine / f"{stem}.json"
        if meta.exists() or not f.is_file():
            out.append(Quarantined(f, load_home_file(meta, json_object, what="quarantine record")))
            continue
        st = f.stat()
        out.append(Quarantined(f, {
            "quarantined_at": _named_time(stem), "reason": REASON_UNRECORDED,
            "kind": None, "findings": [], "exit_code": None, "sha256": sha256_file(f), "size": st.st_size,
            "moved_from_inbox": True,
            "note": "a run was stopped after moving this file into quarantine, before writing why; it may be "
                    "genuine: `laxchange inspect FILE` shows whom it is from, and moving it back into the inbox "
                    "has the next run check it again"}))
    return out


#: Where `release` keeps the record of a package it moved back into the inbox.
RELEASED = "released"
_NAME = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}(?:\.lax)?")


def release(home: Home, name: str, *, clock: Clock | None = None) -> Path:
    """Move the quarantined package `name` (as `quarantine list` names it) back into the inbox,
    for the next import to check again from the start and, if it now passes, import and receipt
    as any other: after the partner's new card was added, say. Its record moves to
    quarantine/released/ with when it was released, kept. Returns the package's inbox path. The
    caller holds the home's run lock (no import is reading the inbox meanwhile). Opening a
    quarantined package by hand (`laxchange open`) instead records it imported with no received
    folder and no receipt: this is the way back."""
    if not _NAME.fullmatch(name):
        raise UsageError(f"{name!r} is not a quarantined package's name", code="quarantine.unknown",
                         hint="give a name as `laxchange quarantine list` shows it (TIME-RANDOM.lax)")
    stem = name.removesuffix(".lax")
    src, meta = home.quarantine / f"{stem}.lax", home.quarantine / f"{stem}.json"
    if not src.is_file():
        raise UsageError(f"no quarantined package {stem}.lax", code="quarantine.unknown",
                         hint="`laxchange quarantine list` lists what is there")
    target = home.inbox / f"{stem}.lax"
    home.inbox.mkdir(mode=0o700, parents=True, exist_ok=True)
    now = (clock or SystemClock()).now()
    record = load_home_file(meta, json_object, what="quarantine record") if meta.exists() else None
    try:  # the package first: refused, nothing has changed
        move_new(src, target)  # never over a file already in the inbox
    except FileExistsError:
        raise UsageError(f"the inbox already holds {target.name}", code="quarantine.unknown",
                         hint="run `laxchange import` first, then release it again") from None
    if record is not None:
        kept = home.quarantine / RELEASED
        kept.mkdir(mode=0o700, exist_ok=True)
        jsonio.write_atomic(kept / meta.name, jsonio.dumps_pretty({**record, "released_at": timefmt.fmt(now)})
                            .encode("utf-8"))
        meta.unlink()
    return target


def _named_time(stem: str) -> str | None:
    """When a file was quarantined, from its name (`quarantine` names it `<compact UTC time>-<random>`;
    the file's mtime is when it was collected, since a move keeps it), or None for another name."""
    try:
        return timefmt.fmt(timefmt.parse_compact(stem.split("-", 1)[0]))
    except ValueError:
        return None
