"""notify_placements: many placements at once, each checked on its own, queued in one ledger commit."""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from laxchange import package, samples
from laxchange._util.fs import write_new_files
from laxchange.clock import FixedClock
from laxchange.errors import LaxError
from laxchange.exchange import Party, Placement, notify_placements, read_placements
from laxchange.exchange.run import UNQUEUED, UNQUEUED_AFTER, run_nightly
from laxchange.ledger.db import Ledger
from laxchange.logs import _EXTRA
from tests.support.parties import REPO, T0, passphrase, placement_world
from tests.support.parties import Party as SupportParty
from tests.support.signals import ctrl_c_after_call

PURPOSE = "statutory duty to share the PEP with the new school"


def _me(p: SupportParty, clock: FixedClock | None = None) -> Party:
    return Party.from_home(p.home, passphrase=passphrase, clock=clock or p.clock, keystore=p.store,
                           directory=p.directory)


def _child(rec: dict[str, Any], seed: int) -> dict[str, Any]:
    """Another child placed at the same school (a fresh record id; the rest as `rec`)."""
    out = copy.deepcopy(rec)
    out["record_id"] = samples.education_record(seed)["record_id"]
    return out


def _outbox(p: SupportParty) -> list[str]:
    return sorted(f.name for f in p.home.outbox.iterdir()) if p.home.outbox.exists() else []


def _queued(p: SupportParty) -> list[str]:
    if not p.home.ledger_db.exists():
        return []
    with Ledger(p.home.ledger_db) as ledger:
        return sorted(t.transfer_id for t in ledger.transfers(direction="out", state="queued"))


def test_a_batch_queues_every_good_placement_in_one_commit_and_refuses_each_bad_one_by_line(tmp_path: Path) -> None:
    vsh, hvs, school, rec = placement_world(tmp_path)
    a, b = _child(rec, 31), _child(rec, 32)
    misdirected = _child(rec, 33)
    invalid = _child(rec, 34)
    del invalid["child"]["date_of_birth"]
    batch = [
        Placement(a, [school.party], "new-placement", PURPOSE, line=1),
        Placement(misdirected, ["URN:900001"], "new-placement", PURPOSE, line=2),
        Placement(invalid, [school.party], "new-placement", PURPOSE, line=3),
        Placement(b, [hvs.party, school.party], "new-placement", PURPOSE, line=4),
        Placement(a, [school.party], "new-placement", PURPOSE, line=5),  # the same child to the same school again
        Placement(_child(rec, 35), [school.party], "new-placement",
                  f"PEP for {rec['child']['legal_name']['family']}", line=6),
    ]
    commits: list[int] = []
    ledger = Ledger(vsh.home.ledger_db, clock=vsh.clock, on_commit=lambda events: commits.append(len(events)))
    with Party.from_home(vsh.home, passphrase=passphrase, clock=vsh.clock, keystore=vsh.store,
                         directory=vsh.directory, ledger=ledger) as me:
        result = notify_placements(me, batch, send=False)
    assert [i.line for i in result.refused] == [2, 3, 5, 6]
    codes = {i.line: i.error.code for i in result.refused if i.error is not None}
    assert codes == {2: "notify.misdirected", 3: "record.invalid", 5: "notify.duplicate", 6: "notify.purpose"}
    for item in result.refused:
        assert item.error is not None and item.error.message.startswith(f"line {item.line}: ")
        assert not item.packages
    dup = next(i for i in result.refused if i.line == 5)
    assert dup.error is not None and "line 1" in dup.error.message
    queued = [p.transfer_id for p in result.packages]
    assert len(queued) == 3 and not result.ok
    assert _outbox(vsh) == sorted(f"{t}.lax" for t in queued), "a refused line leaves no package"
    assert _queued(vsh) == sorted(queued)
    assert commits == [3], "the whole batch's rows in one commit"
    with Ledger(vsh.home.ledger_db) as ledger:
        audit = json.dumps([e for e in ledger.audit_entries() if e["event"] == "out.queued"])
    for word in (rec["child"]["legal_name"]["family"], rec["child"]["date_of_birth"]):
        assert word not in audit
    assert a["record_id"] in audit and b["record_id"] in audit
    by = {p.recipient: p for p in result.items[3].packages}
    opened = school.open(by[school.party].path.read_bytes())
    assert opened.document["record"]["record_id"] == b["record_id"]


def test_a_failure_between_the_fsync_and_the_commit_leaves_nothing_queued_or_written(tmp_path: Path) -> None:
    vsh, _hvs, school, rec = placement_world(tmp_path)
    seen: list[Path] = []

    def fail(paths: Sequence[Path]) -> None:
        seen.extend(paths)
        assert all(p.exists() for p in paths)
        raise OSError(28, "No space left on device (injected)")

    batch = [Placement(_child(rec, 40 + n), [school.party], "new-placement", PURPOSE) for n in range(4)]
    with _me(vsh) as me, pytest.raises(OSError, match="injected"):
        notify_placements(me, batch, send=False, before_commit=fail)
    assert len(seen) == 4
    assert _outbox(vsh) == [] and _queued(vsh) == []


_CRASH = """
import json, os, sys
from pathlib import Path
from laxchange.clock import FixedClock
from laxchange.exchange import Party, notify_placements, read_placements
from laxchange.home import Home
from tests.support.parties import T0, passphrase

def crash(paths):
    print(json.dumps([str(p) for p in paths]), flush=True)
    os._exit(17)  # the process dies here: packages durable, rows not committed

with Party.from_home(Home(Path(sys.argv[1])), passphrase=passphrase, clock=FixedClock(T0)) as me:
    notify_placements(me, read_placements(sys.argv[2]), send=False, before_commit=crash)
"""


def _placements_file(tmp: Path, rec: dict[str, Any], to: str, seeds: Sequence[int]) -> Path:
    path = tmp / "placements.jsonl"
    path.write_text("".join(json.dumps({"record": _child(rec, s), "to": to, "reason": "new-placement",
                                        "purpose": PURPOSE}) + "\n" for s in seeds))
    return path


def test_a_batch_killed_before_its_commit_queues_none_and_the_next_run_sets_its_packages_aside(tmp_path: Path) -> None:
    vsh, _hvs, school, rec = placement_world(tmp_path)
    placements = _placements_file(tmp_path, rec, school.party, range(50, 56))
    proc = subprocess.run([sys.executable, "-c", _CRASH, str(vsh.home.root), str(placements)], check=False, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 17, proc.stderr
    strays = [Path(p) for p in json.loads(proc.stdout)]
    assert len(strays) == 6 and _outbox(vsh) == sorted(p.name for p in strays)
    for p in strays:  # durable and whole, but not queued: nothing sends them
        assert package.peek_manifest(p) is not None
    assert _queued(vsh) == []
    # a run within the hour (the batch might still be being written by another process) keeps them ...
    for p in strays:
        os.utime(p, ((T0 - dt.timedelta(minutes=30)).timestamp(),) * 2)
    with _me(vsh) as me:
        report = run_nightly(me, collect=False)
    assert report.sent == [] and _outbox(vsh) == sorted(p.name for p in strays)
    # ... a run after it sets them aside: kept byte for byte under outbox/unqueued/, never sent
    kept = {p.name: p.read_bytes() for p in strays}
    for p in strays:
        os.utime(p, ((T0 - UNQUEUED_AFTER - dt.timedelta(minutes=1)).timestamp(),) * 2)
    with _me(vsh) as me:
        report = run_nightly(me, collect=False)
    assert report.sent == [] and _outbox(vsh) == [UNQUEUED]
    aside = vsh.home.outbox / UNQUEUED
    assert {f.name: f.read_bytes() for f in aside.iterdir()} == kept
    # the same file submitted again is queued whole
    with _me(vsh) as me:
        result = notify_placements(me, read_placements(placements), send=False)
    assert result.ok and len(_queued(vsh)) == 6 == len(_outbox(vsh)) - 1


def test_a_batch_stopped_while_writing_its_packages_leaves_no_file_for_the_next_run(tmp_path: Path) -> None:
    """Ctrl-C as each call `write_new_files` makes returns, in turn: no package file is left in the
    outbox (none is queued), so the next run has nothing to set aside. One that came just after a
    package file was created used to leave it empty under its `<transfer id>.lax`, and the next
    run set it aside in outbox/unqueued/, kept as if it were a package never queued."""
    vsh, _hvs, school, rec = placement_world(tmp_path)
    step = 0
    with _me(vsh) as me:
        while True:
            step += 1
            batch = [Placement(_child(rec, 70 + step), [school.party], "new-placement", PURPOSE)]
            if not ctrl_c_after_call(write_new_files.__code__, step,
                                     functools.partial(notify_placements, me, batch, send=False)):
                break
            assert _outbox(vsh) == [] and _queued(vsh) == [], step
    assert step > 5 and len(_queued(vsh)) == 1 == len(_outbox(vsh)), "interrupted at each call, then not at all"
    kept = _outbox(vsh)
    for f in vsh.home.outbox.iterdir():
        os.utime(f, ((T0 - UNQUEUED_AFTER - dt.timedelta(minutes=1)).timestamp(),) * 2)
    with _me(vsh) as me:
        run_nightly(me, collect=False)
    assert _outbox(vsh) == kept, "nothing set aside in outbox/unqueued/"


def test_a_temporary_file_a_killed_notify_left_is_removed_after_the_wait(tmp_path: Path) -> None:
    """A kill mid-write leaves a hidden `write_new_files` temporary file, never published (or a second
    name of one that was): the run removes it once it is older than a write in progress could be,
    and leaves a newer one and any other hidden file alone."""
    vsh, _hvs, _school, _rec = placement_world(tmp_path)
    outbox = vsh.home.outbox
    outbox.mkdir(parents=True, exist_ok=True)
    old, new, other = (outbox / f".{'a' * 32}.lax.0123456789ab.tmp", outbox / f".{'b' * 32}.lax.0123456789ab.tmp",
                       outbox / ".someone-elses.tmp")
    for f in (old, new, other):
        f.write_bytes(b"torn")
    stale = (T0 - UNQUEUED_AFTER - dt.timedelta(minutes=1)).timestamp()
    for f in (old, other):
        os.utime(f, (stale, stale))
    with _me(vsh) as me:
        run_nightly(me, collect=False)
    assert (old.exists(), new.exists(), other.exists()) == (False, True, True)


def test_read_placements_names_each_bad_line_and_reads_the_rest(tmp_path: Path) -> None:
    _vsh, _hvs, school, rec = placement_world(tmp_path)
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "r.json").write_text(json.dumps(_child(rec, 60)))
    lines = [
        json.dumps({"record_file": "records/r.json", "to": [school.party], "reason": "new-placement",
                    "purpose": PURPOSE, "respond_by": "2026-12-10"}),
        "{not json",
        "",
        json.dumps([1, 2]),
        json.dumps({"record": rec, "to": school.party, "reason": "new-placement", "purpose": PURPOSE, "attach": []}),
        json.dumps({"record": rec, "record_file": "x", "to": school.party, "reason": "r", "purpose": PURPOSE}),
        json.dumps({"record": rec, "reason": "new-placement", "purpose": PURPOSE}),
        json.dumps({"record": rec, "to": school.party, "reason": "new-placement", "purpose": PURPOSE,
                    "respond_by": "next week"}),
    ]
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(lines) + "\n")
    got = list(read_placements(path))
    first = got[0]
    assert isinstance(first, Placement) and first.line == 1 and first.to == [school.party]
    assert first.record["record_id"] == _child(rec, 60)["record_id"] and first.respond_by == dt.date(2026, 12, 10)
    errors = [g for g in got[1:] if isinstance(g, LaxError)]
    assert len(errors) == len(got) - 1 == 6, "the blank line is no placement"
    assert [e.details["line"] for e in errors] == [2, 4, 5, 6, 7, 8]
    assert errors[0].code.startswith("json.") and [e.code for e in errors[1:]] == ["notify.batch-line"] * 5
    assert all(e.message.startswith(f"line {e.details['line']}: ") for e in errors)
    assert "'attach'" in errors[2].message and "`to`" in errors[4].message and "respond_by" in errors[5].message


def test_write_new_files_with_the_folder_never_replaces_a_file(tmp_path: Path) -> None:
    (tmp_path / "b").write_bytes(b"old")
    with pytest.raises(FileExistsError):
        write_new_files(tmp_path, {"a": b"1", "b": b"2"}, folder_too=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"] and (tmp_path / "b").read_bytes() == b"old"
    write_new_files(tmp_path, {"c": b"3", "d": b"4"}, folder_too=True)
    assert (tmp_path / "c").read_bytes() == b"3" and (tmp_path / "d").read_bytes() == b"4"
    assert oct((tmp_path / "c").stat().st_mode & 0o777) == "0o600"


def _summary(result: Any) -> list[tuple[int, str | None, str | None, list[str]]]:
    return [(i.line, i.error.code if i.error else None, i.record_ref, [p.recipient for p in i.packages])
            for i in result.items]


@pytest.mark.skipif("fork" not in __import__("multiprocessing").get_all_start_methods(), reason="no fork here")
def test_a_batch_packed_in_worker_processes_gives_what_one_process_gives(tmp_path: Path) -> None:
    """`jobs=2`: the same items, errors (by line, in order, a duplicate found across the workers'
    chunks included) and packages, all queued in one commit, each opening at its school."""
    results = {}
    for jobs in (1, 2):
        vsh, _hvs, school, rec = placement_world(tmp_path / f"jobs{jobs}")
        children = [_child(rec, 100 + k) for k in range(110)]
        batch: list[Placement | LaxError] = []
        for k, c in enumerate(children, 1):
            batch.append(Placement(c, [school.party], "new-placement", PURPOSE, line=k))
        batch[9] = Placement(children[9], ["URN:900001"], "new-placement", PURPOSE, line=10)  # misdirected
        del batch[19].record["child"]["date_of_birth"]  # type: ignore[union-attr]
        batch[99] = Placement(children[2], [school.party], "new-placement", PURPOSE, line=100)  # line 3 again
        batch[49] = LaxError("line 50: not valid JSON", code="notify.batch-line", details={"line": 50})
        batch.append(LaxError("line 111: not valid JSON", code="notify.batch-line", details={"line": 111}))
        commits: list[int] = []
        ledger = Ledger(vsh.home.ledger_db, clock=vsh.clock, on_commit=lambda events, c=commits: c.append(len(events)))
        with Party.from_home(vsh.home, passphrase=passphrase, clock=vsh.clock, keystore=vsh.store,
                             directory=vsh.directory, ledger=ledger) as me:
            result = notify_placements(me, batch, send=False, jobs=jobs)
        assert commits == [106]
        assert _outbox(vsh) == sorted(f"{p.transfer_id}.lax" for p in result.packages)
        assert _queued(vsh) == sorted(p.transfer_id for p in result.packages)
        for k in (0, 60, 108):
            got = school.open(result.items[k].packages[0].path.read_bytes())
            assert got.document["record"]["record_id"] == children[k]["record_id"]
        results[jobs] = _summary(result)
    one, two = results[1], results[2]
    assert [line for line, *_ in two] == list(range(1, 112))
    assert {line: code for line, code, *_ in two if code} == {
        10: "notify.misdirected", 20: "record.invalid", 50: "notify.batch-line", 100: "notify.duplicate",
        111: "notify.batch-line"}
    # the record ids differ between the two worlds (each seeds its own); the rest is the same
    assert [(line, code, len(to)) for line, code, _, to in one] == [(line, code, len(to)) for line, code, _, to in two]


def test_a_batch_warns_of_a_record_notified_before_by_line_and_queues_it(tmp_path: Path) -> None:
    """A placement already notified in an earlier batch (council IT exported it twice): queued, with
    a warning on its line; the placement new tonight has none."""
    vsh, _hvs, school, rec = placement_world(tmp_path)
    old, new = _child(rec, 41), _child(rec, 42)
    with _me(vsh) as me:
        first = notify_placements(me, [Placement(old, [school.party], "new-placement", PURPOSE, line=1)], send=False)
        again = notify_placements(me, [Placement(new, [school.party], "new-placement", PURPOSE, line=1),
                                       Placement(old, [school.party], "new-placement", PURPOSE, line=2)],
                                  send=False, jobs=2)
    assert [i.error for i in again.items] == [None, None] and len(_queued(vsh)) == 3
    assert again.items[0].warnings == []
    tid = first.items[0].packages[0].transfer_id
    assert [w for w in again.items[1].warnings if "already" in w] == [
        (f"record {old['record_id']} was notified to {school.party} for new-placement already on "
         f"{vsh.clock.now().date().isoformat()} (transfer {tid}, queued): this notifies it again; if that is a "
         f"mistake, tell {school.party} to disregard one")]


class _StoppedWhileSending(Party):
    """A party whose sending is interrupted (Ctrl-C or a service stop, as the CLI raises them)."""

    def send(self, *_args: Any, **_kwargs: Any) -> Any:
        raise KeyboardInterrupt


def test_a_batch_interrupted_while_sending_says_it_is_queued_and_not_to_submit_it_again(tmp_path: Path) -> None:
    """Stopped after its one commit, the batch is queued whole and the next run sends it; the interrupt
    says so (the CLI prints it as the hint), since submitting it again would notify every child twice.
    Stopped before the commit, nothing is queued, and it says to submit it again."""
    vsh, _hvs, school, rec = placement_world(tmp_path)
    batch = [Placement(_child(rec, 41 + n), [school.party], "new-placement", PURPOSE, line=n + 1) for n in range(3)]
    me = _me(vsh)
    stopped = _StoppedWhileSending(home=me.home, keystore=me.keystore, directory=me.directory, clock=me.clock,
                                   transports=me.transports, ledger=me.ledger)
    with pytest.raises(KeyboardInterrupt) as sending:
        notify_placements(stopped, batch, send=True)
    assert len(_queued(vsh)) == 3
    assert any("all 3 packages of this notification were queued before the interrupt" in n and
               "Do not submit it again" in n for n in sending.value.__notes__), sending.value.__notes__

    def stop_before_the_commit(_paths: Sequence[Path]) -> None:
        raise KeyboardInterrupt

    more = [Placement(_child(rec, 51), [school.party], "new-placement", PURPOSE, line=1)]
    with pytest.raises(KeyboardInterrupt) as packing:
        notify_placements(me, more, send=False, before_commit=stop_before_the_commit)
    assert len(_queued(vsh)) == 3 and any("nothing of this batch was queued" in n for n in packing.value.__notes__)
    me.close()


def test_a_batch_interrupted_just_after_its_commit_keeps_its_files_and_says_it_is_queued(tmp_path: Path) -> None:
    """A signal that comes during SQLite's COMMIT is raised once the commit has returned: the batch
    is queued, so its packages must stay in the outbox (a queued row without its file would lose the
    placement) and the interrupt must not say "submit it again" (which would notify twice)."""
    vsh, _hvs, school, rec = placement_world(tmp_path)
    batch = [Placement(_child(rec, 61 + n), [school.party], "new-placement", PURPOSE, line=n + 1) for n in range(2)]

    def stop_after_the_commit(events: tuple[str, ...]) -> None:
        if "out.queued" in events:
            raise KeyboardInterrupt

    ledger = Ledger(vsh.home.ledger_db, clock=vsh.clock, on_commit=stop_after_the_commit)
    me = Party.from_home(vsh.home, passphrase=passphrase, clock=vsh.clock, keystore=vsh.store,
                         directory=vsh.directory, ledger=ledger)
    with me, pytest.raises(KeyboardInterrupt) as stopped:
        notify_placements(me, batch, send=True)
    queued = _queued(vsh)
    assert len(queued) == 2 and sorted(f"{t}.lax" for t in queued) == [n for n in _outbox(vsh) if n.endswith(".lax")]
    assert any("all 2 packages" in n and "Do not submit it again" in n for n in stopped.value.__notes__)


def test_every_package_a_notification_queues_is_logged_as_pack_queued(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """docs/operations.md: pack.queued whenever a package is queued; notifications queued none (a
    walk-through's --log-file held only command.started and command.finished)."""
    caplog.set_level(logging.INFO, logger="laxchange")
    vsh, hvs, school, rec = placement_world(tmp_path)
    with _me(vsh) as me:
        done = notify_placements(me, [Placement(_child(rec, 71), [hvs.party, school.party], "new-placement",
                                                PURPOSE, line=1)], send=False)
    tids = sorted(p.transfer_id for i in done.items for p in i.packages)
    logged = sorted(r.__dict__[_EXTRA][1]["transfer_id"] for r in caplog.records if r.getMessage() == "pack.queued")
    assert len(tids) == 2 and logged == tids


def test_a_placement_of_another_councils_child_is_refused_not_sent_with_a_warning(tmp_path: Path) -> None:
    """A walk-through notified a record whose placing_la was not ours: a warning, exit 0, and the host
    imported, signed by us, a notification naming another placing council. Now refused on its line."""
    vsh, _hvs, school, rec = placement_world(tmp_path)
    other = copy.deepcopy(_child(rec, 81))
    other["placement"]["placing_la"] = "202" if other["placement"]["placing_la"] != "202" else "203"
    with _me(vsh) as me:
        done = notify_placements(me, [Placement(other, [school.party], "new-placement", PURPOSE, line=1),
                                      Placement(_child(rec, 82), [school.party], "new-placement", PURPOSE, line=2)],
                                 send=False)
    errors = [i.error.code if i.error else None for i in done.items]
    assert errors == ["notify.not-placing-council", None], errors
    assert len(_queued(vsh)) == 1


def test_a_respond_by_date_that_has_passed_is_refused(tmp_path: Path) -> None:
    """The host would be asked to have answered already (a walk-through's --respond-by 2026-11-01 was
    sent as it was). Today, in England, is allowed."""
    vsh, hvs, _school, rec = placement_world(tmp_path)
    today = T0.date()  # the parties' clock: 24 November 2026, noon
    lines = [Placement(_child(rec, 91), [hvs.party], "new-placement", PURPOSE, respond_by=today - dt.timedelta(days=1),
                       line=1),
             Placement(_child(rec, 92), [hvs.party], "new-placement", PURPOSE, respond_by=today, line=2)]
    with _me(vsh) as me:
        done = notify_placements(me, lines, send=False)
    assert [i.error.code if i.error else None for i in done.items] == ["notify.respond-by", None]
    assert "2026-11-23 has passed" in str(done.items[0].error)
