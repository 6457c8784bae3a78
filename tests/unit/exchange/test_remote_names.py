"""Remote names that cannot collide (issue 9 #7): a package is uploaded as `<transfer id>.lax`,
whatever the local file is called, and a second file of a name already collected never blocks."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from laxchange.exchange import Party
from laxchange.transport import Endpoint, LocalFolderTransport, RetryPolicy, Runner, StaticEndpoints, send
from tests.support.parties import make_party, record


def _party(p: Any, drops: dict[str, Path]) -> Party:
    endpoints = StaticEndpoints({k: Endpoint(k, f"file://{v}") for k, v in drops.items()})
    return Party(home=p.home, keystore=p.store, directory=p.directory, clock=p.clock,
                 transports=Runner(endpoints, LocalFolderTransport, RetryPolicy()))


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Party, Party, Path]:
    a = make_party(tmp_path, "LA:919", "Example Council")
    b = make_party(tmp_path, "URN:123456", "Example School", a.clock)
    a.trust(b)
    b.trust(a)
    drop = tmp_path / "drop-b"
    drop.mkdir()
    return _party(a, {"URN:123456": drop}), _party(b, {"URN:123456": drop}), drop


def test_send_uploads_as_the_transfer_id(pair: tuple[Party, Party, Path], tmp_path: Path) -> None:
    a, _b, drop = pair
    first = a.pack(record(1), message_type="pep-transfer", recipient="URN:123456", out=tmp_path / "pep.lax")
    r1 = a.send("URN:123456", [tmp_path / "pep.lax"])
    second = a.pack(record(2), message_type="pep-transfer", recipient="URN:123456", out=tmp_path / "pep.lax",
                    overwrite=True)
    r2 = a.send("URN:123456", [tmp_path / "pep.lax"])
    assert r1.ok and r2.ok
    names = sorted(os.listdir(drop))
    assert names == sorted(f"{r.manifest.transfer_id}.lax" for r in (first, second))
    assert [f.name for f in r2.files] == [f"{second.manifest.transfer_id}.lax"]
    for r in (first, second):
        assert a.ledger.get(r.manifest.transfer_id, "out", "URN:123456").state == "sent"  # type: ignore[union-attr]


def test_the_same_file_delivered_again_after_collection_is_collected(pair: tuple[Party, Party, Path],
                                                                      tmp_path: Path) -> None:
    a, b, drop = pair
    res = a.pack(record(1), message_type="pep-transfer", recipient="URN:123456", out=tmp_path / "pep.lax")
    name = f"{res.manifest.transfer_id}.lax"
    a.send("URN:123456", [tmp_path / "pep.lax"])
    assert b.collect(["URN:123456"])[0].ok
    a.send("URN:123456", [tmp_path / "pep.lax"])  # sent again, e.g. after a lost acknowledgement
    again = b.collect(["URN:123456"])[0]
    assert again.ok, again.first_error()
    assert os.listdir(drop / "processed") == [name] and name not in os.listdir(drop)


def test_two_different_files_of_one_old_style_name_never_block_collection(pair: tuple[Party, Party, Path]) -> None:
    """Senders of 0.1 named packages after the local file; a second `pep.lax` used to fail every run."""
    _a, b, drop = pair
    (drop / "pep.lax").write_bytes(b"first package")
    assert b.collect(["URN:123456"])[0].ok
    (drop / "pep.lax").write_bytes(b"second package")
    result = b.collect(["URN:123456"])[0]
    assert result.ok, result.first_error()
    assert b.collect(["URN:123456"])[0].ok  # and the next run has nothing left to trip on
    aside = f"pep-{hashlib.sha256(b'second package').hexdigest()[:12]}.lax"
    assert sorted(os.listdir(drop / "processed")) == sorted(["pep.lax", aside])
    inbox = b.home.inbox
    assert (inbox / "pep.lax").read_bytes() == b"first package"
    assert (inbox / aside).read_bytes() == b"second package"
    assert [(f.name, f.local) for f in result.files] == [("pep.lax", aside)]


def test_a_caller_that_uploads_what_plan_send_planned_records_it_with_record_sent(
        pair: tuple[Party, Party, Path], tmp_path: Path) -> None:
    """The library's seam for an upload made elsewhere: `plan_send` names it, the caller uploads it
    its own way (here `transport.send`, as any other uploader would), `record_sent` records it."""
    a, _b, drop = pair
    m = a.pack(record(3), message_type="pep-transfer", recipient="URN:123456", out=tmp_path / "pep.lax").manifest
    plan = a.plan_send("URN:123456", [tmp_path / "pep.lax"])
    result = send(a.transports, "URN:123456", [tmp_path / "pep.lax"], names=plan.names)
    assert a.ledger.get(m.transfer_id, "out", "URN:123456").state == "queued"  # type: ignore[union-attr]
    a.record_sent("URN:123456", result, plan)
    assert (drop / f"{m.transfer_id}.lax").is_file()
    assert a.ledger.get(m.transfer_id, "out", "URN:123456").state == "sent"  # type: ignore[union-attr]
