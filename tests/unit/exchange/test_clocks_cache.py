"""The clocks' cache of received/ gives exactly what reading every folder gives, whatever happened to
the folders since it was written (edits, removals, damage, a cache older than the folders), and is
used only while the files it was read from are unchanged."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

from laxchange import deadlines, samples
from laxchange._util.fs import file_signature
from laxchange.clock import FixedClock
from laxchange.exchange.clocks import CACHE, home_sources
from laxchange.exchange.inbound import import_inbox
from laxchange.home import Home
from laxchange.ledger.db import Ledger
from tests.support.parties import drop_pair, record

NOW = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)
CLOCK = FixedClock(NOW)
OLD = NOW.timestamp() - 86_400 * 30  # files this old are cacheable (not written "just now")
SETTINGS = deadlines.Settings()


def _folder(home: Home, name: str, doc: dict[str, Any] | None, message_type: str, day: int) -> Path:
    d = home.root / "received" / name
    d.mkdir(parents=True, exist_ok=True)
    received = (NOW - dt.timedelta(days=day)).strftime("%Y-%m-%dT%H:%M:%SZ")
    (d / "manifest.json").write_text(json.dumps({"transfer_id": name[:32], "message_type": message_type,
                                                 "received_at": received, "sender": "LA:919"}))
    if doc is not None:
        (d / "record.json").write_text(json.dumps(doc))
    return d


def _age(home: Home) -> None:
    for p in (home.root / "received").rglob("*"):
        os.utime(p, (OLD, OLD))


def _history(home: Home, rng: random.Random, n: int) -> None:
    """`n` received folders: PEPs (some children twice, in two versions), exclusion notices of some of
    those children, receipts, one of another sender, and a folder with no manifest."""
    for k in range(n):
        seed = rng.randrange(12)  # the same seed: the same child, so versions and notices meet
        tid = f"{k:032x}"
        kind = rng.choice(["pep-transfer", "pep-transfer", "education-record", "exclusion-notice", "receipt"])
        doc = samples.generate(kind, seed, 1, as_of=dt.date(2026, 1 + k % 10, 1 + k % 27))[0]
        _folder(home, tid if k % 9 else f"{tid}-LA_920", doc, kind, day=k % 40)
    (home.root / "received" / "not-a-transfer").mkdir()


def _clocks(home: Home, ledger: Ledger, *, cache: bool) -> tuple[list[dict[str, Any]], list[str]]:
    sources = home_sources(home, ledger, me="URN:123456", settings=SETTINGS, cache=cache)
    result = deadlines.compute(sources, SETTINGS, now=NOW)
    return [d.to_item() for d in result.deadlines], result.warnings


def _same(home: Home, ledger: Ledger) -> list[dict[str, Any]]:
    """The cached path (cache written or updated by it) gives what the full read gives."""
    full = _clocks(home, ledger, cache=False)
    assert _clocks(home, ledger, cache=True) == full
    assert _clocks(home, ledger, cache=True) == full  # and again, from what the first call wrote
    return full[0]


def test_the_cached_clocks_are_those_of_a_full_read_through_edits_removals_and_damage(tmp_path: Path) -> None:
    rng = random.Random(16)
    home = Home(tmp_path / "home")
    ledger = Ledger(tmp_path / "ledger.sqlite3", clock=CLOCK)
    _history(home, rng, 60)
    _age(home)
    first = _same(home, ledger)
    assert len(first) > 20
    folders = sorted(p for p in (home.root / "received").iterdir() if (p / "record.json").is_file())
    for step in range(12):
        d = rng.choice(folders)
        what = step % 6
        if what == 0:  # a record replaced by another version (a new file)
            doc = samples.generate("pep-transfer", rng.randrange(12), 1, as_of=dt.date(2026, 11, 1))[0]
            (d / "record.json").unlink()
            (d / "record.json").write_text(json.dumps(doc))
        elif what == 1:  # edited in place, same length (the same inode)
            raw = (d / "record.json").read_bytes()
            with (d / "record.json").open("r+b") as fh:
                fh.write(raw.replace(b"2026-", b"2025-", 1))
        elif what == 2 and d.exists():  # removed
            shutil.rmtree(d)
        elif what == 3 and d.exists():  # damaged
            (d / "record.json").write_bytes(b"{damaged")
        elif what == 4 and d.exists():  # its manifest rewritten (received later)
            m = json.loads((d / "manifest.json").read_text())
            m["received_at"] = "2026-11-20T09:00:00Z"
            (d / "manifest.json").write_text(json.dumps(m))
        else:  # a new folder
            _folder(home, f"{1000 + step:032x}", samples.generate("pep-transfer", rng.randrange(12), 1)[0],
                    "pep-transfer", day=1)
        _age(home)
        _same(home, ledger)
    (home.root / CACHE).write_bytes(b"\x00not json")  # a damaged cache: ignored, rebuilt
    _same(home, ledger)
    assert json.loads((home.root / CACHE).read_text())["folders"]


def test_a_stale_cache_never_hides_a_deadline(tmp_path: Path) -> None:
    """A cache older than the folders (a crash after filing, before the cache was written; one copied
    back from a backup) still gives what the folders say: every new, changed or removed folder shows."""
    home = Home(tmp_path / "home")
    ledger = Ledger(tmp_path / "ledger.sqlite3", clock=CLOCK)
    _history(home, random.Random(3), 30)
    _age(home)
    before = _same(home, ledger)
    stale = (home.root / CACHE).read_bytes()
    late = samples.generate("pep-transfer", 99, 1, as_of=dt.date(2026, 9, 1))[0]
    late["record"]["placement"]["placement_start"] = "2026-09-01"  # placed months ago: its clocks are overdue
    _folder(home, f"{5000:032x}", late, "pep-transfer", day=80)
    shutil.rmtree(next(p for p in sorted((home.root / "received").iterdir()) if (p / "record.json").is_file()))
    _age(home)
    (home.root / CACHE).write_bytes(stale)
    after = _clocks(home, ledger, cache=True)
    assert after == _clocks(home, ledger, cache=False)
    ref = late["record"]["record_id"]
    assert any(d["record_ref"] == ref and d["state"] == "overdue" for d in after[0])
    assert after[0] != before


def test_an_entry_is_used_only_while_its_files_are_unchanged(tmp_path: Path) -> None:
    """The cache is really read (an entry doctored with the files' signatures kept is believed), and
    an entry whose files changed since is not (the folder is read again)."""
    home = Home(tmp_path / "home")
    ledger = Ledger(tmp_path / "ledger.sqlite3", clock=CLOCK)
    doc = samples.generate("pep-transfer", 4, 1)[0]
    d = _folder(home, "ab" * 16, doc, "pep-transfer", day=3)
    _age(home)
    truth = _same(home, ledger)
    path = home.root / CACHE
    cache = json.loads(path.read_text())
    cache["folders"]["ab" * 16]["facts"][0]["version"]["pep"] = ["2020-01-01", "2020-06-01"]
    path.write_text(json.dumps(cache))
    doctored = _clocks(home, ledger, cache=True)[0]
    assert doctored != truth and any("2020-06-01" in str(x["starts"]) for x in doctored)
    (d / "record.json").write_text(json.dumps(doc))  # the same bytes, written again: another write
    _age(home)
    assert _clocks(home, ledger, cache=True)[0] == truth


def test_a_file_written_just_now_is_not_cached(tmp_path: Path) -> None:
    """A second write within the file system's timestamp granularity could leave a file's times as
    they were; so a file written in the last seconds is read again next time, not cached."""
    home = Home(tmp_path / "home")
    ledger = Ledger(tmp_path / "ledger.sqlite3", clock=CLOCK)
    _folder(home, "cd" * 16, samples.generate("pep-transfer", 5, 1)[0], "pep-transfer", day=1)
    _folder(home, "ef" * 16, samples.generate("pep-transfer", 6, 1)[0], "pep-transfer", day=1)
    os.utime(home.root / "received" / ("ef" * 16) / "record.json", (OLD, OLD))
    os.utime(home.root / "received" / ("ef" * 16) / "manifest.json", (OLD, OLD))
    _same(home, ledger)
    assert set(json.loads((home.root / CACHE).read_text())["folders"]) == {"ef" * 16}


def _clock_items(b: Any, fresh: Any = None, cache: bool = True) -> tuple[list[dict[str, Any]], list[str]]:
    sources = home_sources(b.home, b.ledger, me=b.keystore.ring().party, settings=SETTINGS, cache=cache, fresh=fresh)
    result = deadlines.compute(sources, SETTINGS, now=NOW)
    return [d.to_item() for d in result.deadlines], result.warnings


def test_what_an_import_just_filed_gives_the_clocks_what_reading_it_back_gives(tmp_path: Path) -> None:
    a, b = drop_pair(tmp_path)
    for n in range(1, 4):
        a.pack(record(n), message_type="pep-transfer", recipient=b.keystore.ring().party,
               out=tmp_path / f"pep{n}.lax")
        assert a.send(b.keystore.ring().party, [tmp_path / f"pep{n}.lax"]).ok
    report = import_inbox(b)
    assert report.ok
    filed = sorted(i.folder for i in report.items if i.folder)
    assert sorted(report.fresh) == filed and len(filed) == 3
    root = b.home.root / "received"
    for name, (sigs, manifest, doc) in report.fresh.items():  # the files as the import left them
        assert sigs == [file_signature(root / name / "manifest.json"), file_signature(root / name / "record.json")]
        assert manifest["transfer_id"] == name and doc == json.loads((root / name / "record.json").read_bytes())
    original = _clock_items(b, cache=False)
    assert original[0], "the fictional PEPs have clocks"
    assert _clock_items(b, fresh=report.fresh) == original
    # a record changed since the import wrote it is read again, not taken from memory
    changed = root / filed[0] / "record.json"
    doc = json.loads(changed.read_bytes())
    doc["record"]["pep"]["date"] = "2026-01-05"
    changed.write_text(json.dumps(doc))
    shutil.rmtree(b.home.root / "cache", ignore_errors=True)
    reference = _clock_items(b, cache=False)
    assert reference != original, "the change moves a clock"
    assert _clock_items(b, fresh=report.fresh) == reference
