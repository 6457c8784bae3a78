"""`in_inbox`: a file directly in the home's inbox, however it is named; a link in it to elsewhere is not."""

from __future__ import annotations

import os
from pathlib import Path

from laxchange.exchange.quarantine import in_inbox
from laxchange.home import Home


def _home(tmp_path: Path) -> Home:
    home = Home(tmp_path / "home")
    home.inbox.mkdir(parents=True)
    return home


def test_a_file_in_the_inbox_is_in_it_by_any_name(tmp_path: Path) -> None:
    home = _home(tmp_path)
    f = home.inbox / "a.lax"
    f.write_bytes(b"x")
    assert in_inbox(home, f)
    assert in_inbox(home, home.inbox / "sub" / ".." / "a.lax")
    os.symlink(home.root, tmp_path / "alias")
    assert in_inbox(home, tmp_path / "alias" / "inbox" / "a.lax")  # another path to the same folder
    assert in_inbox(Home(tmp_path / "alias"), f)


def test_a_link_in_the_inbox_to_a_file_elsewhere_is_not_in_it(tmp_path: Path) -> None:
    home = _home(tmp_path)
    outside = tmp_path / "outside.lax"
    outside.write_bytes(b"x")
    os.symlink(outside, home.inbox / "link.lax")
    assert not in_inbox(home, home.inbox / "link.lax")
    assert not in_inbox(home, outside)
    (home.inbox / "nested").mkdir()
    assert not in_inbox(home, home.inbox / "nested" / "b.lax")
    # a link from elsewhere to a file in the inbox resolves into it, as ever
    (home.inbox / "c.lax").write_bytes(b"y")
    os.symlink(home.inbox / "c.lax", tmp_path / "to-c.lax")
    assert in_inbox(home, tmp_path / "to-c.lax")
