"""The log of temporary upload files (`transport.parts`): what an ended connection left is found
without listing anything remote, and a connection still at work is never mistaken for one."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from laxchange.transport.parts import PartJournal

URL = "sftp://la@127.0.0.1:2222/drop"


def test_a_connection_that_resolved_everything_leaves_no_log(tmp_path: Path) -> None:
    journal = PartJournal(tmp_path / "cache" / "sftp-parts")
    log = journal.open(URL)
    log.add("/drop/.a.lax.part-00aa00aa00aa")
    log.add("/drop/.b.lax.part-00bb00bb00bb")
    log.resolved("/drop/.a.lax.part-00aa00aa00aa")
    log.resolved("/drop/.b.lax.part-00bb00bb00bb")
    log.close()
    assert list(log.path.parent.iterdir()) == []
    assert journal.orphans(URL) == []


def test_an_unresolved_file_outlives_its_connection_and_is_found_once(tmp_path: Path) -> None:
    journal = PartJournal(tmp_path / "parts")
    log = journal.open(URL)
    log.add("/drop/.a.lax.part-00aa00aa00aa")
    log.add("/drop/.b.lax.part-00bb00bb00bb")
    log.resolved("/drop/.b.lax.part-00bb00bb00bb")
    assert log.unresolved == {"/drop/.a.lax.part-00aa00aa00aa"}
    log.close()
    [orphan] = journal.orphans(URL)
    assert orphan.parts == ["/drop/.a.lax.part-00aa00aa00aa", "/drop/.b.lax.part-00bb00bb00bb"]
    assert journal.orphans(URL) == []  # held by the first finder until it settles
    orphan.settle(["/drop/.a.lax.part-00aa00aa00aa"])
    [again] = journal.orphans(URL)
    assert again.parts == ["/drop/.b.lax.part-00bb00bb00bb"]
    again.settle(again.parts)
    assert journal.orphans(URL) == []
    assert list(log.path.parent.iterdir()) == []


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
    log = journal.open(URL)
    log.add("/drop/.a.lax.part-00aa00aa00aa")
    log.close()
    assert journal.orphans("sftp://la@127.0.0.1:2222/other") == []
    assert stat.S_IMODE(os.stat(log.path).st_mode) == 0o600
    for d in (journal.root.parent, journal.root, log.path.parent):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    [o] = journal.orphans(URL)
    o.settle([])


def test_a_torn_or_foreign_line_is_skipped(tmp_path: Path) -> None:
    journal = PartJournal(tmp_path / "parts")
    log = journal.open(URL)
    log.add("/drop/.a.lax.part-00aa00aa00aa")
    log.close()
    with log.path.open("ab") as fh:
        fh.write(b'42\n{"x": 1}\n\n"/drop/.b.lax.part-00bb00bb00bb"\n"/drop/.c.la')  # the last line cut short
    [o] = journal.orphans(URL)
    assert o.parts == ["/drop/.a.lax.part-00aa00aa00aa", "/drop/.b.lax.part-00bb00bb00bb"]
    o.settle([])
