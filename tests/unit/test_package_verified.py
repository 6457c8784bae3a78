"""`package.verify_package` and `open_package(verified=...)`: a package verified ahead in another
process (the nightly run's collecting child) is taken as verified only for exactly the bytes that
were verified, and every check that depends on the time or the ledger is still made where it is
imported."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
from pathlib import Path
from typing import Any

import pytest

from laxchange import package
from laxchange.clock import FixedClock
from laxchange.errors import ConfigError, SecurityError
from laxchange.trust.keystore import KeyStore
from tests.support.parties import WORK_FACTOR, Party, record, world


@pytest.fixture()
def abc(tmp_path: Path) -> tuple[Party, Party, Party]:
    return world(tmp_path)


def _file(tmp_path: Path, data: bytes, name: str = "p.lax") -> Path:
    """The package as a file in a folder of its own (`tmp_path / "in"`)."""
    (tmp_path / "in").mkdir(exist_ok=True)
    path = tmp_path / "in" / name
    path.write_bytes(data)
    return path


def _unlocked(p: Party, data: bytes) -> None:
    """Unlock the key the package is encrypted to, as a run does before it forks its child."""
    p.store.identity(package.read_manifest(io.BytesIO(data))[0].recipient_key_id)


def _ahead(p: Party, path: Path) -> package.Verified | None:
    return package.verify_package(path, keystore=p.store, directory=p.directory, clock=p.clock)


def test_a_package_verified_ahead_opens_to_the_same_record(abc: Any, tmp_path: Path) -> None:
    a, b, _ = abc
    data = a.pack(record(3), "URN:123456")
    path = _file(tmp_path, data)
    _unlocked(b, data)
    v = _ahead(b, path)
    assert v is not None and v.opened.document == record(3) and v.opened.written == []
    assert v.package_sha256 == hashlib.sha256(data).hexdigest()
    assert list(path.parent.iterdir()) == [path], "verifying ahead writes nothing"
    out = tmp_path / "r.json"
    got = package.open_package(path, keystore=b.store, directory=b.directory, clock=b.clock, out=out, verified=v)
    full = b.open(data)
    assert (got.document, got.manifest, got.schema, got.checkpoint) == (full.document, full.manifest, full.schema,
                                                                         full.checkpoint)
    assert got.written == [out] and out.read_bytes() == package.pretty_json(record(3))


def test_a_locked_key_is_never_asked_for_its_passphrase(abc: Any, tmp_path: Path) -> None:
    a, b, _ = abc
    asked: list[str] = []

    def ask(purpose: str, *, confirm: bool = False) -> bytes:
        asked.append(purpose)
        raise ConfigError("no passphrase here", code="passphrase.missing")

    locked = KeyStore(b.home, passphrase=ask, clock=b.clock, work_factor=WORK_FACTOR)
    path = _file(tmp_path, a.pack(record(), "URN:123456"))
    assert package.verify_package(path, keystore=locked, directory=b.directory, clock=b.clock) is None
    assert asked == []


def test_what_was_verified_ahead_is_used_only_for_the_same_bytes(abc: Any, tmp_path: Path) -> None:
    """A stand-in result proves which path was taken: with the SHA-256 of these bytes its record is
    the one written (nothing was verified again); with any other, the package is opened in full."""
    a, b, _ = abc
    data = a.pack(record(3), "URN:123456")
    path = _file(tmp_path, data)
    _unlocked(b, data)
    v = _ahead(b, path)
    assert v is not None
    stand_in = dataclasses.replace(v.opened, document=record(4))
    kw: dict[str, Any] = {"keystore": b.store, "directory": b.directory, "clock": b.clock}
    same = package.open_package(path, **kw, verified=package.Verified(v.package_sha256, stand_in))
    assert same.document == record(4)
    other = package.open_package(path, **kw, verified=package.Verified("0" * 64, stand_in))
    assert other.document == record(3)
    # the same bytes' hash but another package's manifest: not what was verified, opened in full
    m2 = b.open(a.pack(record(5), "URN:123456")).manifest
    wrong = dataclasses.replace(stand_in, manifest=m2)
    assert package.open_package(path, **kw, verified=package.Verified(v.package_sha256, wrong)).document == record(3)
    # bytes changed since they were verified (one byte of the payload): refused in full, as ever
    bad = bytearray(data)
    bad[-5] ^= 1
    _file(tmp_path, bytes(bad))
    with pytest.raises(SecurityError) as ei:
        package.open_package(path, **kw, verified=v)
    assert ei.value.code == "package.tampered"


def test_the_checks_of_time_and_ledger_are_made_for_a_package_verified_ahead(abc: Any, tmp_path: Path) -> None:
    a, b, _ = abc
    data = a.pack(record(), "URN:123456", expires_in=dt.timedelta(days=1))
    path = _file(tmp_path, data)
    _unlocked(b, data)
    v = _ahead(b, path)
    assert v is not None
    kw: dict[str, Any] = {"keystore": b.store, "directory": b.directory, "verified": v}
    reserved: list[package.Manifest] = []
    package.open_package(path, **kw, clock=b.clock, reserve=reserved.append)
    assert reserved == [v.opened.manifest], "the reservation is taken here"
    with pytest.raises(SecurityError) as ei:
        package.open_package(path, **kw, clock=b.clock, seen=lambda _t, _s: True)
    assert ei.value.code == "package.replayed"
    later = FixedClock(b.clock.now() + dt.timedelta(days=2))
    with pytest.raises(SecurityError) as ei:
        package.open_package(path, **kw, clock=later)
    assert ei.value.code == "package.expired"


def test_nothing_is_verified_ahead_that_the_import_must_refuse_or_write_in_full(abc: Any, tmp_path: Path) -> None:
    a, b, _ = abc
    good = a.pack(record(), "URN:123456")
    _unlocked(b, good)
    bad = bytearray(good)
    bad[-5] ^= 1
    assert _ahead(b, _file(tmp_path, bytes(bad), "tampered.lax")) is None
    assert _ahead(b, _file(tmp_path, a.pack(record(), "LA:920"), "not-ours.lax")) is None
    att = tmp_path / "report.pdf"
    att.write_bytes(b"%PDF-1.4 fictional\n")
    assert _ahead(b, _file(tmp_path, a.pack(record(), "URN:123456", attachments=[att]), "att.lax")) is None
    big = _file(tmp_path, good + b"\0" * package.MAX_VERIFIED_AHEAD, "big.lax")
    assert _ahead(b, big) is None
    assert _ahead(b, _file(tmp_path, good, "good.lax")) is not None


def test_a_key_revoked_since_it_was_verified_ahead_is_refused_here(abc: Any, tmp_path: Path) -> None:
    """The sender's card changes between the child's verification and the import (a key revoked):
    this process judges the keys against its own directory, as the full open does."""
    a, b, _ = abc
    data = a.pack(record(), "URN:123456")
    path = _file(tmp_path, data)
    _unlocked(b, data)
    v = _ahead(b, path)
    assert v is not None
    a.clock.advance(minutes=1)
    a.store.rotate(overlap_days=30)
    b.directory.add(a.card()[0])  # the rotated card first, as a partner would have it
    for kid in v.opened.manifest.sender_key_ids:
        a.store.revoke(kid, "key-compromise")
    a.clock.advance(minutes=1)
    card, _ = a.card()
    b.directory.add(card)  # the revoking card, added while the run goes on
    kw: dict[str, Any] = {"keystore": b.store, "directory": b.directory, "clock": b.clock}
    with pytest.raises(SecurityError) as full:
        package.open_package(path, **kw)
    with pytest.raises(SecurityError) as ahead:
        package.open_package(path, **kw, verified=v)
    assert ahead.value.code == full.value.code == "package.revoked-key"
