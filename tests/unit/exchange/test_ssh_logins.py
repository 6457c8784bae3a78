"""The note of servers on our previous SSH key (`exchange.ssh_logins`) that `doctor` reads from the run."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from laxchange.exchange.ssh_logins import logins_file, previous_only, record_logins
from tests.support.parties import make_party

AT = dt.datetime(2026, 12, 1, 2, 30, tzinfo=dt.UTC)


def test_a_login_with_the_new_key_forgets_the_server_and_a_new_rotation_forgets_them_all(tmp_path: Path) -> None:
    a = make_party(tmp_path, "LA:919", "Example Council (fictional)")
    record_logins(a.home, a.store.ring(), AT, {"URN:123456": True})
    assert not logins_file(a.home).exists(), "no rotation under way: nothing to note"
    a.store.rotate_ssh(overlap_days=30)
    record_logins(a.home, a.store.ring(), AT, {"URN:123456": True, "URN:100002": True, "LA:919": False})
    assert previous_only(a.home, a.store.ring()) == {"URN:123456": "2026-12-01T02:30:00Z",
                                                     "URN:100002": "2026-12-01T02:30:00Z"}
    record_logins(a.home, a.store.ring(), AT + dt.timedelta(days=1), {"URN:100002": False})
    assert previous_only(a.home, a.store.ring()) == {"URN:123456": "2026-12-01T02:30:00Z"}, \
        "a server not logged in to tonight keeps its note; one that took the new key is forgotten"
    assert logins_file(a.home).stat().st_mode & 0o777 == 0o600

    a.clock.advance(days=31)
    a.store.prune()
    a.store.rotate_ssh(overlap_days=30)
    assert previous_only(a.home, a.store.ring()) == {}, "a note about the key of an earlier rotation is not this one's"
    logins_file(a.home).write_text("{damaged")
    assert previous_only(a.home, a.store.ring()) == {}, "a damaged note is no note (a cache)"


def test_a_night_with_nothing_new_does_not_rewrite_the_note_and_an_entry_without_a_time_is_passed_over(
        tmp_path: Path) -> None:
    a = make_party(tmp_path, "LA:919", "Example Council (fictional)")
    a.store.rotate_ssh(overlap_days=30)
    record_logins(a.home, a.store.ring(), AT, {"URN:123456": True})
    before = logins_file(a.home).stat()
    record_logins(a.home, a.store.ring(), AT, {"LA:919": False})  # our own drop folder took the new key
    after = logins_file(a.home).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), "not rewritten"
    data = json.loads(logins_file(a.home).read_text())
    data["previous_key_only"]["URN:123456"].pop("at")
    logins_file(a.home).write_text(json.dumps(data))
    assert previous_only(a.home, a.store.ring()) == {}, "no time: not reported as the text 'None'"
