"""The statutory clocks of one home: its ledger, `HOME/received/` and records folder, handed to
`laxchange.deadlines` (docs/deadlines.md, "Where the facts come from").

Used by `laxchange deadlines`, `status` and the nightly run, so all three show the same clocks.

What each received folder gives the clocks is kept between runs in `HOME/cache/clocks.json`
(`_Cache`): a school's received/ grows by a folder per PEP for years, and reading and validating
every record ever received, each night, costs in proportion to all of them rather than to what is
new. The cache is never trusted blindly: an entry is used only while both files it was read from
(the folder's manifest.json and record.json) are the very files it was read from (inode, size,
modification and change times, by one `stat` each), so a folder filed, refiled, edited, damaged or
removed since is read again (or dropped); a cache that cannot be read is ignored and rebuilt. Only
what the clocks use is kept (`deadlines.RecordFacts`: dates, URNs, and the UPN, local id and date
of birth that match an exclusion notice to its child), private to the home as received/ is; deleting
it only makes the next run read every folder again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from laxchange import deadlines
from laxchange._util import jsonio, timefmt
from laxchange._util.fs import RACY_NS, file_signature, write_atomic
from laxchange.errors import LaxError
from laxchange.exchange.inbound import MANIFEST, RECORD_JSON, Fresh, list_received, received_manifest, received_root
from laxchange.home import Home
from laxchange.ledger.db import Ledger
from laxchange.models.messages import ExclusionNotice

__all__ = ["CACHE", "RECORD_MESSAGES", "home_deadlines", "home_sources"]

#: Received message types whose record.json can start or stop a clock.
RECORD_MESSAGES = frozenset({"education-record", "pep-transfer", "placement-notification", "exclusion-notice"})
#: The clocks' cache of what each received folder gives them, under the home.
CACHE = Path("cache") / "clocks.json"
_CACHE_FORMAT = "laxchange-clocks-cache/1"
#: A cache larger than this is ignored (and rewritten): ~1 KB a record, for 100,000 records and more.
_MAX_CACHE = 512 * 1024 * 1024


def home_sources(home: Home, ledger: Ledger, *, me: str | None, settings: deadlines.Settings,
                 cache: bool = True, fresh: Mapping[str, Fresh] | None = None) -> deadlines.Sources:
    """Every fact the clocks can use in `home`: received messages, the records folder, the ledger.
    `cache=False` reads every received folder afresh and leaves the cache alone (the reference the
    cached path is tested against). `fresh`: the folders an import in this process just filed
    (`ImportReport.fresh`), taken from memory while their files are still the ones it wrote."""
    sources = deadlines.Sources(me=me)
    if cache:
        _received_cached(home, ledger, sources, fresh or {})
    else:
        for r in list_received(home, skip=_receipts_only(ledger)):
            for fact in _read_folder(r.path, r.manifest):
                sources.add(fact)
    if settings.records is not None:
        sources.add_records_folder(settings.records)
    sources.add_ledger(ledger)
    return sources


def _read_folder(path: Path, manifest: dict[str, Any], doc: dict[str, Any] | None = None) -> list[deadlines.Fact]:
    """What one received folder gives the clocks (nothing if its message cannot start or stop one).
    `doc`: its record.json's document as the import wrote it, given up to the clocks as one parsed
    here would be (moved up to the latest schema version in place: a deep copy of a record costs
    more than reading it again)."""
    if manifest.get("message_type") not in RECORD_MESSAGES:
        return []
    origin = f"received/{path.name}"
    try:
        doc = jsonio.load_file(path / RECORD_JSON) if doc is None else doc
        at = timefmt.parse(manifest.get("received_at"))
    except (LaxError, ValueError) as exc:
        return [f"{origin}: cannot be read ({getattr(exc, 'message', exc)}); skipped"]
    return [deadlines.read_document(doc, origin=origin, at=at, transfer_id=str(manifest.get("transfer_id")),
                                    owned=True)]


def _receipts_only(ledger: Ledger) -> Callable[[str], bool]:
    """Is the received folder of this name (`<transfer id>`) one of a receipt, by the ledger? Such a
    folder is skipped unread: a council receives a receipt or two per transfer it sends, every night,
    for years, and no receipt starts or stops a clock. A folder the ledger does not say all about
    (another sender's `<id>-<sender>`, a transfer id also used by a record) is read as before.
    The ledger is asked once, on first use (a night whose folders are all cached never asks)."""
    kinds: dict[str, set[str | None]] | None = None

    def receipt(name: str) -> bool:
        nonlocal kinds
        if kinds is None:
            kinds = {}
            for t in ledger.transfers(direction="in"):
                kinds.setdefault(t.transfer_id, set()).add(t.message_type)
        return kinds.get(name) == {"receipt"}
    return receipt


# -- the cache -----------------------------------------------------------------------------------------

Sig = list[int]


@dataclass
class _Entry:
    """One folder's facts as cached: `sort` its received_at (list_received's order), `facts` in JSON."""

    sigs: list[Sig | None]
    sort: str
    facts: list[Any]

    def to_json(self) -> dict[str, Any]:
        return {"sigs": self.sigs, "sort": self.sort, "facts": self.facts}


def _fact_to_json(fact: deadlines.Fact) -> Any:
    if isinstance(fact, deadlines.Version):
        return {"version": fact.record.to_json(), "origin": fact.origin,
                "at": timefmt.fmt(fact.at) if fact.at is not None else None}
    if isinstance(fact, deadlines.Notice):
        return {"notice": fact.notice.model_dump(mode="json", by_alias=True), "origin": fact.origin,
                "transfer_id": fact.transfer_id}
    return None  # warnings are never cached (the folder is read again, and warns again, each run)


def _fact_from_json(d: Any) -> deadlines.Fact:
    """ValueError (KeyError, TypeError, AttributeError) if `d` is not what `_fact_to_json` wrote."""
    if "version" in d:
        at = timefmt.parse(d["at"]) if d["at"] is not None else None
        return deadlines.Version(deadlines.RecordFacts.from_json(d["version"]), str(d["origin"]), at)
    try:
        notice = ExclusionNotice.model_validate(d["notice"])
    except ValueError as exc:  # pydantic's ValidationError is one
        raise ValueError("not a cached notice") from exc
    return deadlines.Notice(notice, str(d["origin"]), str(d["transfer_id"]))


class _Cache:
    """The cache file: folder name → `_Entry`. Unreadable as a whole: empty (everything is read again)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        self.changed = False
        try:
            raw = jsonio.loads_strict(self.path.read_bytes(), source=str(self.path), max_bytes=_MAX_CACHE)
        except (OSError, ValueError, LaxError):
            return
        if isinstance(raw, dict) and raw.get("format") == _CACHE_FORMAT and isinstance(raw.get("folders"), dict):
            self.entries = raw["folders"]

    def get(self, name: str, sigs: list[Sig | None]) -> tuple[str, list[deadlines.Fact]] | None:
        """The cached facts of folder `name` if it still holds the files they were read from."""
        e = self.entries.get(name)
        if not isinstance(e, dict) or e.get("sigs") != sigs:
            return None
        try:
            return str(e["sort"]), [_fact_from_json(f) for f in e["facts"]]
        except (ValueError, KeyError, TypeError, AttributeError, IndexError):
            return None

    def put(self, name: str, entry: _Entry) -> None:
        self.entries[name] = entry.to_json()
        self.changed = True

    def drop(self, names: set[str]) -> None:
        gone = set(self.entries) - names
        for name in gone:
            del self.entries[name]
        self.changed |= bool(gone)

    def save(self) -> None:
        """Write the cache if it changed; a cache that cannot be written is only a slower next run."""
        if not self.changed:
            return
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(mode=0o700, exist_ok=True)
            write_atomic(self.path, jsonio.dumps_compact({"format": _CACHE_FORMAT, "folders": self.entries}))


def _received_cached(home: Home, ledger: Ledger, sources: deadlines.Sources, fresh: Mapping[str, Fresh]) -> None:
    """`list_received` + `_read_folder` for every folder, from the cache where the files are unchanged,
    or from `fresh` where they are still the files this process just wrote. Same facts in the same
    order (received_at, then name) as the full read."""
    root = received_root(home)
    if not root.is_dir():
        return
    cache = _Cache(home.root / CACHE)
    skip = _receipts_only(ledger)
    racy = time.time_ns() - RACY_NS
    found: list[tuple[str, str, list[deadlines.Fact]]] = []
    names: set[str] = set()
    for name in sorted(os.listdir(root)):  # by name (the order of sorted Paths in one folder), Paths made after
        if name.startswith("."):
            continue
        d = root / name
        if not d.is_dir():
            continue
        names.add(d.name)
        sigs = [file_signature(d / MANIFEST), file_signature(d / RECORD_JSON)]
        if sigs[0] is None:
            continue  # no manifest: not a transfer's folder (list_received passes it over too)
        hit = cache.get(d.name, sigs)
        if hit is not None:
            found.append((hit[0], d.name, hit[1]))
            continue
        if skip(d.name):
            facts: list[deadlines.Fact] = []
            sort = ""
        else:
            just = fresh.get(d.name)
            if just is not None and just[0] != sigs:
                just = None  # changed since the import wrote it: read it
            manifest = just[1] if just is not None else received_manifest(d)
            if manifest is None:
                continue
            sort = str(manifest.get("received_at", ""))
            facts = _read_folder(d, manifest, just[2] if just is not None else None)
        found.append((sort, d.name, facts))
        if all(isinstance(f, deadlines.Version | deadlines.Notice) for f in facts) and \
                all(s is None or s[2] < racy for s in sigs):
            cache.put(d.name, _Entry(sigs, sort, [_fact_to_json(f) for f in facts]))
    cache.drop(names)
    for _sort, _name, facts in sorted(found, key=lambda x: (x[0], x[1])):
        for fact in facts:
            sources.add(fact)
    cache.save()


def home_deadlines(home: Home, ledger: Ledger, *, me: str | None, now: dt.datetime,
                   settings: deadlines.Settings | None = None,
                   fresh: Mapping[str, Fresh] | None = None) -> deadlines.Result:
    """The clocks of `home` at `now`, with the settings of its config.json unless given. `fresh`:
    what an import in this process just filed (`ImportReport.fresh`), not read back."""
    settings = settings or deadlines.Settings.from_home(home)
    return deadlines.compute(home_sources(home, ledger, me=me, settings=settings, fresh=fresh), settings, now=now)
