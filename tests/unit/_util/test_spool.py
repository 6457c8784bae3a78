"""fs.Spool: in memory up to its size, then an unlinked 0600 file in the directory it is given."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

from laxchange._util.fs import Spool


def test_small_stays_in_memory_and_reads_back_without_a_file(tmp_path: Path) -> None:
    with Spool(100, dir=tmp_path) as sp:
        for part in (b"abc", bytearray(b"def"), memoryview(b"ghi")):
            assert sp.write(part) == 3
        assert len(sp) == 9 and sp.getvalue() == b"abcdefghi"
        assert sp.reader().read() == b"abcdefghi"
        out = io.BytesIO()
        sp.copy_to(out)
        assert out.getvalue() == b"abcdefghi"
        assert list(tmp_path.iterdir()) == []


def test_large_goes_to_a_private_unlinked_file_in_the_given_directory(tmp_path: Path) -> None:
    chunks = [os.urandom(40) for _ in range(5)]
    with Spool(100, dir=tmp_path) as sp:
        for c in chunks:
            sp.write(c)
        assert sp.getvalue() is None and len(sp) == 200
        assert list(tmp_path.iterdir()) == []  # unlinked: nothing to leave behind after a crash
        fh = sp.reader()
        assert stat.S_IMODE(os.fstat(fh.fileno()).st_mode) == 0o600
        assert os.path.samefile(os.path.dirname(os.readlink(f"/proc/self/fd/{fh.fileno()}").replace(" (deleted)", "")),
                                tmp_path)
        assert fh.read() == b"".join(chunks)
        out = io.BytesIO()
        sp.copy_to(out)
        assert out.getvalue() == b"".join(chunks)
    assert fh.closed


def test_exactly_full_stays_in_memory() -> None:
    with Spool(6) as sp:
        sp.write(b"abc")
        sp.write(b"def")
        assert sp.getvalue() == b"abcdef"
        sp.write(b"g")
        assert sp.getvalue() is None
        assert sp.reader().read() == b"abcdefg"
