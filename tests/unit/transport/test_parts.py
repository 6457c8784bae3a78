"""The log of temporary upload files (`transport.parts`): what an ended connection left is found
without listing anything remote, and a connection still at work is never mistaken for one."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from laxchange.transport.parts import PartJournal, PartLog

URL = "sftp://la@127.0.0.1:2222/drop"


def _ended(journal: PartJournal, *names: str) -> PartLog:
    """The log of a connection that made `names` and ended with none of them resolved."""
    log = journal.open(URL)
    for n in names:
        log.add(n)
    log.close()
    return log


def _logs(folder: Path) -> list[str]:
    """What an endpoint's folder holds besides the note of its URL."""
    return sorted(p.name for p in folder.iterdir() if p.name != "endpoint-url")


def _made(log: PartLog, n: int, keep: int) -> list[str]:
    """`n` temporary names made on `log`, each published but the `keep`th."""
    names = [f"/drop/.p{i}.lax.part-{i:012x}" for i in range(n)]
    for name in names:
        log.add(name)
        if name != names[keep]:
            log.resolved(name)
    return names


def test_a_connection_that_resolved_everything_leaves_no_log(tmp_path: Path) -> None:
    journal = PartJournal(tmp_path / "cache" / "sftp-parts")
    log = journal.open(URL)
    log.add("/drop/.a.lax.part-00aa00aa00aa")
    log.add("/drop/.b.lax.part-00bb00bb00bb")
    log.resolved("/drop/.a.lax.part-00aa00aa00aa")
    log.resolved("/drop/.b.lax.part-00bb00bb00bb")
    log.close()
    assert _logs(log.path.parent) == []
    assert journal.orphans(URL) == []


def test_an_unresolved_file_outlives_its_connection_and_its_log_goes_only_when_all_are_gone(tmp_path: Path) -> None:
    journal = PartJournal(tmp_path / "parts")
    log = journal.open(URL)
    for n in ("/drop/.a.lax.part-00aa00aa00aa", "/drop/.b.lax.part-00bb00bb00bb", "/drop/.c.lax.part-00cc00cc00cc"):
        log.add(n)
    log.resolved("/drop/.b.lax.part-00bb00bb00bb")
    assert log.unresolved == {"/drop/.a.lax.part-00aa00aa00aa", "/drop/.c.lax.part-00cc00cc00cc"}
    log.close()
    [orphan] = journal.orphans(URL)
    assert orphan.parts == ["/drop/.a.lax.part-00aa00aa00aa", "/drop/.c.lax.part-00cc00cc00cc"]
    assert journal.orphans(URL) == []  # held by the first finder until it settles
    orphan.settle(["/drop/.a.lax.part-00aa00aa00aa"])  # one of two: the log is kept as it was (never rewritten)
    [again] = journal.orphans(URL)
    assert again.parts == orphan.parts
    again.settle(again.parts)
    assert journal.orphans(URL) == []
    assert _logs(log.path.parent) == []


def test_a_long_connection_starts_new_logs_carrying_what_is_unresolved(tmp_path: Path) -> None:
    journal = PartJournal(tmp_path / "parts", rotate_lines=3)
    log = journal.open(URL)
    names = _made(log, 8, keep=1)
    assert len(list(log.path.parent.glob("*.log"))) == 1  # the old files went as the new ones came
    log.close()
    [o] = journal.orphans(URL)
    assert names[1] in o.parts and len(o.parts) <= 3
    o.settle(o.parts)
    assert journal.orphans(URL) == []


def test_a_log_longer_than_the_limit_is_never_removed(tmp_path: Path) -> None:
    journal = PartJournal(tmp_path / "parts", max_log_bytes=64)
    names = [f"/drop/.p{i}.lax.part-{i:012x}" for i in range(4)]
    _ended(journal, *names)
    [o] = journal.orphans(URL)
    assert not o.complete and o.parts == names[:1]  # what fits; the rest is never read
    o.settle(names)
    assert [p.parts for p in journal.orphans(URL)] == [names[:1]]  # kept, so nothing past the limit is forgotten


def test_an_orphans_age_is_from_its_last_write(tmp_path: Path) -> None:
    now = [time.time()]
    journal = PartJournal(tmp_path / "parts", clock=lambda: now[0])
    _ended(journal, "/drop/.a.lax.part-00aa00aa00aa")
    [o] = journal.orphans(URL)
    assert o.age < 60
    o.settle([])
    now[0] += 3600
    [o] = journal.orphans(URL)
    assert o.age >= 3500
    o.settle([])


def test_a_live_connections_log_is_not_an_orphan(tmp_path: Path) -> None:
    journal = PartJournal(tmp_path / "parts")
    live = journal.open(URL)
    live.add("/drop/.a.lax.part-00aa00aa00aa")
    assert journal.orphans(URL) == []  # its lock is held (another open file, as another process's would be)
    live.close()
    assert [o.parts for o in journal.orphans(URL)] == [["/drop/.a.lax.part-00aa00aa00aa"]]


def test_each_endpoint_has_its_own_logs_private_to_the_owner(tmp_path: Path) -> None:
    journal = PartJournal(tmp_path / "home" / "cache" / "sftp-parts")
    (tmp_path / "home").mkdir(mode=0o700)
    log = _ended(journal, "/drop/.a.lax.part-00aa00aa00aa")
    assert journal.orphans("sftp://la@127.0.0.1:2222/other") == []
    assert stat.S_IMODE(os.stat(log.path).st_mode) == 0o600
    for d in (journal.root.parent, journal.root, log.path.parent):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    [o] = journal.orphans(URL)
    o.settle([])


def test_a_torn_or_foreign_line_is_skipped(tmp_path: Path) -> None:
    journal = PartJournal(tmp_path / "parts")
    log = _ended(journal, "/drop/.a.lax.part-00aa00aa00aa")
    with log.path.open("ab") as fh:
        fh.write(b'42\n{"x": 1}\n\n"/drop/.b.lax.part-00bb00bb00bb"\n"/drop/.c.la')  # the last line cut short
    [o] = journal.orphans(URL)
    assert o.parts == ["/drop/.a.lax.part-00aa00aa00aa", "/drop/.b.lax.part-00bb00bb00bb"]
    o.settle([])


def test_a_log_that_is_not_a_plain_file_is_passed_over(tmp_path: Path) -> None:
    journal = PartJournal(tmp_path / "parts")
    log = _ended(journal, "/drop/.a.lax.part-00aa00aa00aa")
    os.mkfifo(log.path.parent / "0000.log")
    (log.path.parent / "1111.log").symlink_to(log.path)
    assert [o.path.name for o in journal.orphans(URL)] == [log.path.name]


def test_a_log_file_left_before_it_was_named_is_removed_once_free_and_old(tmp_path: Path) -> None:
    now = [time.time()]
    journal = PartJournal(tmp_path / "parts", clock=lambda: now[0])
    live = journal.open(URL)  # makes the endpoint's folder
    unnamed = live.path.parent / ".0123456789abcdef0123.new"  # a crash between making a log and naming it
    unnamed.write_bytes(b"")
    assert journal.orphans(URL) == []
    assert unnamed.exists()  # young: it may be between its maker's open and its lock
    now[0] += 120
    assert journal.orphans(URL) == []
    assert not unnamed.exists()
    assert live.path.exists()  # held, so not touched
    live.close()


def test_a_line_cut_short_by_a_failed_write_does_not_swallow_the_next(tmp_path: Path) -> None:
    journal = PartJournal(tmp_path / "parts")
    log = journal.open(URL)
    log.add("/drop/.a.lax.part-00aa00aa00aa")
    with log.path.open("ab") as fh:  # what a write cut short by a full disk leaves
        fh.write(b'\n"/drop/.b.lax.pa')
    log.add("/drop/.c.lax.part-00cc00cc00cc")
    log.close()
    [o] = journal.orphans(URL)
    assert o.parts == ["/drop/.a.lax.part-00aa00aa00aa", "/drop/.c.lax.part-00cc00cc00cc"]
    o.settle([])


def test_a_log_kept_at_close_holds_only_what_is_unresolved(tmp_path: Path) -> None:
    journal = PartJournal(tmp_path / "parts")
    log = journal.open(URL)
    names = _made(log, 50, keep=7)
    log.close()
    [o] = journal.orphans(URL)
    assert o.parts == [names[7]]  # a later sweep sends one REMOVE, not fifty
    o.settle([])


def test_a_child_forked_while_a_log_is_held_does_not_keep_it_held(tmp_path: Path) -> None:
    """A flock belongs to the open file a forked child shares: without the child letting go, the
    log of a connection that has ended stays held (no orphan to sweep) for as long as the child
    lives; and the child never removes the parent's log, even closing its own copy of it."""
    journal = PartJournal(tmp_path / "parts")
    log = journal.open(URL)
    log.add("/drop/.a.lax.part-00aa00aa00aa")
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: says whether it could use the log, then waits to be told to exit
        try:
            os.close(ready_r)
            os.close(done_w)
            try:
                log.add("/drop/.b.lax.part-00bb00bb00bb")
                os.write(ready_w, b"used")
            except ValueError:
                log.close()  # closing its (already closed) copy removes nothing
                os.write(ready_w, b"free")
            os.read(done_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(done_r)
    try:
        assert os.read(ready_r, 4) == b"free"
        assert log.path.exists()
        log.close()  # ended with a file unresolved, the child still alive
        [orphan] = journal.orphans(URL)
        assert orphan.parts == ["/drop/.a.lax.part-00aa00aa00aa"]
        orphan.release()
    finally:
        os.write(done_w, b"x")
        os.close(done_w)
        os.close(ready_r)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_leftovers_name_each_endpoint_with_files_unresolved_and_the_url_it_is_for(tmp_path: Path) -> None:
    """`doctor` needs the URL of a folder whose endpoint is no longer used: its name is a hash."""
    journal = PartJournal(tmp_path / "parts")
    assert journal.leftovers() == []
    _ended(journal, "/drop/.a.lax.part-00aa00aa00aa", "/drop/.b.lax.part-00bb00bb00bb")
    _ended(journal, "/drop/.b.lax.part-00bb00bb00bb")
    old = "sftp://la@old.example.invalid:22/drop"
    gone = journal.open(old)
    gone.add("/drop/.c.lax.part-00cc00cc00cc")
    done = journal.open("sftp://la@127.0.0.1:2222/other")  # everything resolved: nothing left
    done.add("/other/.d.lax.part-00dd00dd00dd")
    done.resolved("/other/.d.lax.part-00dd00dd00dd")
    done.close()
    assert [(x.url, x.names, x.logs) for x in journal.leftovers()
            if x.url == old] == []  # still held by its live connection
    gone.close()
    found = {x.url: (x.names, x.logs) for x in journal.leftovers()}
    assert found == {URL: (2, 2), old: (1, 1)}
    [orphan] = journal.orphans(old)  # each log was let go after reading
    assert orphan.parts == ["/drop/.c.lax.part-00cc00cc00cc"]
    orphan.release()
    folder = next(x.folder for x in journal.leftovers() if x.url == old)
    (folder / "endpoint-url").write_text("sftp://someone@else.invalid/x\n")  # not the URL this folder is for
    assert {x.url for x in journal.leftovers()} == {URL, None}
    assert stat.S_IMODE(os.stat(journal.root / next(iter(os.listdir(journal.root))) / "endpoint-url").st_mode) == 0o600
