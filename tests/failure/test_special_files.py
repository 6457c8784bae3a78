"""Hostile files given where a regular file is expected (issue 10): FIFOs, devices, symlinks.

Each call runs under a hard timeout in a daemon thread, so a regression (a read that blocks on
a FIFO or never ends on /dev/zero) fails the test instead of hanging the suite.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from laxchange import package
from laxchange._util import fs, jsonio
from laxchange.errors import LaxError
from laxchange.exchange import Party as ExchangeParty
from laxchange.validate import validate_file
from tests.support.parties import Party, record, world

TIMEOUT = 10.0


def within(fn: Callable[[], Any], seconds: float = TIMEOUT) -> Any:
    """fn() under a hard timeout: its result, or the exception it raised; fails if it is still running."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed back to the test thread
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        pytest.fail(f"still running after {seconds:g}s (a read that blocks or never ends)")
    if "error" in box:
        raise box["error"]
    return box.get("value")


@pytest.fixture()
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "record.json"
    os.mkfifo(path)
    yield path
    # Free a reader a regression left blocked in open(): opening the write end wakes it.
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


@pytest.fixture()
def ab(tmp_path: Path) -> tuple[Party, Party]:
    a, b, _ = world(tmp_path / "world")
    return a, b


def _refused(fn: Callable[[], Any], code: str = "file.not-regular") -> LaxError:
    with pytest.raises(LaxError) as exc:
        within(fn)
    assert exc.value.code == code, exc.value.to_dict()
    assert exc.value.hint
    return exc.value


def test_load_file_refuses_a_fifo(fifo: Path) -> None:
    err = _refused(lambda: jsonio.load_file(fifo))
    assert "not a regular file (a FIFO)" in err.message and str(fifo) in err.message


def test_validate_file_refuses_a_fifo(fifo: Path) -> None:
    _refused(lambda: validate_file(fifo))


def test_read_record_refuses_a_fifo(fifo: Path) -> None:
    _refused(lambda: package.read_record(fifo))


def test_digest_file_refuses_a_fifo_and_a_device(fifo: Path) -> None:
    _refused(lambda: fs.digest_file(fifo))
    err = _refused(lambda: fs.sha256_file("/dev/zero"))
    assert "character device" in err.message


def test_inspect_refuses_a_fifo(fifo: Path) -> None:
    _refused(lambda: package.inspect(fifo))


def test_open_package_refuses_a_fifo(fifo: Path, ab: tuple[Party, Party]) -> None:
    _, b = ab
    _refused(lambda: package.open_package(fifo, keystore=b.store, directory=b.directory, clock=b.clock))


def test_send_refuses_a_fifo(fifo: Path, ab: tuple[Party, Party]) -> None:
    a, _ = ab
    with ExchangeParty.from_home(a.home, keystore=a.store, directory=a.directory, clock=a.clock) as party:
        _refused(lambda: party.send("URN:123456", [fifo]))


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_pack_refuses_a_special_file_as_an_attachment(kind: str, fifo: Path, ab: tuple[Party, Party]) -> None:
    a, _ = ab
    att = fifo if kind == "fifo" else Path("/dev/zero")
    _refused(lambda: a.pack(record(), "URN:123456", attachments=[att]))


def test_pack_refuses_a_symlinked_attachment(tmp_path: Path, ab: tuple[Party, Party]) -> None:
    a, _ = ab
    real = tmp_path / "report.pdf"
    real.write_bytes(b"%PDF-1.7 fictional")
    link = tmp_path / "link.pdf"
    link.symlink_to(real)
    err = _refused(lambda: a.pack(record(), "URN:123456", attachments=[link]), "file.symlink")
    assert str(link) in err.message and "real file" in (err.hint or "")


def test_an_attachment_that_changes_while_packing_is_refused(tmp_path: Path, ab: tuple[Party, Party],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The bytes streamed into the package are the bytes described (size and SHA-256), or nothing."""
    a, _ = ab
    att = tmp_path / "report.pdf"
    att.write_bytes(b"A" * 1000)
    described = package._describe_attachments

    def then_grow(paths: Any) -> Any:
        out = described(paths)
        with att.open("ab") as fh:
            fh.write(b"B" * 1000)
        return out

    monkeypatch.setattr(package, "_describe_attachments", then_grow)
    buf = io.BytesIO()
    with pytest.raises(LaxError) as exc:
        within(lambda: package.pack(record(), message_type="pep-transfer", recipient="URN:123456",
                                    keystore=a.store, directory=a.directory, out=buf, clock=a.clock,
                                    attachments=[att]))
    assert exc.value.code == "attachment.changed"


def test_regular_files_and_symlinked_records_still_work(tmp_path: Path, ab: tuple[Party, Party]) -> None:
    a, b = ab
    doc = record()
    rec = tmp_path / "rec.json"
    rec.write_text(jsonio.dumps_pretty(doc))
    link = tmp_path / "link.json"
    link.symlink_to(rec)
    assert package.read_record(link) == doc
    att = tmp_path / "report.pdf"
    att.write_bytes(b"%PDF-1.7 fictional")
    data = a.pack(doc, "URN:123456", attachments=[att])
    lax = tmp_path / "x.lax"
    lax.write_bytes(data)
    opened = package.open_package(lax, keystore=b.store, directory=b.directory, clock=b.clock)
    assert opened.attachments[0]["size"] == len(att.read_bytes())
