"""Archive verification, `open --archive` (issue 12 #1, DESIGN.md §11): was this package genuinely sent by
that party to us at its `created` time, with keys valid then? Years later, after expiry, rotations and
revocations; never importing anything."""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from laxchange import package
from laxchange._util import jsonio
from laxchange.cli.app import App
from laxchange.clock import FixedClock
from laxchange.errors import SecurityError, UsageError
from laxchange.exchange import Party
from laxchange.home import Home
from laxchange.trust.keystore import SIGNING
from tests.support.forge import forge, statement_for
from tests.support.parties import PASSPHRASE, T0, make_party, record
from tests.support.parties import Party as HomeParty

A, B = "LA:919", "URN:123456"
THIRTY_YEARS = 30 * 365


def _party(p: HomeParty) -> Party:
    return Party.from_home(p.home, keystore=p.store, directory=p.directory, clock=p.clock)


@dataclass
class Archived:
    a: HomeParty
    b: HomeParty
    clock: FixedClock
    package: Path
    doc: dict[str, Any]
    revoked: str  # the key id that signed the package, revoked a day after it was made


@pytest.fixture
def archived(tmp_path: Path) -> Archived:
    """A packs for B at T0; both rotate; A revokes the key that signed it; B takes A's new cards."""
    clock = FixedClock(T0)
    a = make_party(tmp_path, A, "Example Council", clock)
    b = make_party(tmp_path, B, "Example School", clock)
    a.trust(b)
    b.trust(a)
    doc = record(7)
    pkg = tmp_path / "kept.lax"
    pkg.write_bytes(a.pack(doc, B))
    signer = a.store.ring().keys_valid_at(T0, SIGNING)[0].kid
    clock.advance(days=1)
    a.store.rotate(overlap_days=10)
    b.store.rotate(overlap_days=10)  # B's old decryption key moves to its archive
    assert b.directory.add(a.card()[0])[1] == "rotated"
    clock.advance(days=1)
    a.store.revoke(signer, "key-compromise")
    assert b.directory.add(a.card()[0])[1] == "updated"
    return Archived(a, b, clock, pkg, doc, signer)


def test_thirty_years_on_archive_verification_opens_it_and_says_the_key_was_revoked_later(
        archived: Archived, tmp_path: Path) -> None:
    b, clock = archived.b, archived.clock
    clock.advance(days=THIRTY_YEARS)
    with _party(b) as me:
        with pytest.raises(SecurityError) as ei:
            me.open(archived.package, out=tmp_path / "plain.json")
        assert ei.value.code in ("package.revoked-key", "package.expired")
        assert not (tmp_path / "plain.json").exists()
        opened = me.open_archived(archived.package, out=tmp_path / "kept.json")
        assert json.loads((tmp_path / "kept.json").read_text()) == archived.doc
        assert opened.document == archived.doc and opened.manifest.created == "2026-11-24T12:00:00Z"
        (warning,) = opened.warnings
        assert warning["code"] == "archive.revoked-later" and warning["kid"] == archived.revoked
        assert warning["revoked_at"] == "2026-11-26T12:00:00Z" and "compromised" in warning["message"]
        # No import state: no row for the transfer; the audit note has ids and codes only.
        assert me.ledger.get(opened.manifest.transfer_id, "in", A) is None
        note = me.ledger.audit_entries()[-1]
        assert note["event"] == "in.archive-opened"
        assert note["data"] == {"transfer_id": opened.manifest.transfer_id, "party": A,
                                "created": "2026-11-24T12:00:00Z", "schema": opened.schema,
                                "warnings": ["archive.revoked-later"]}
        assert archived.doc["record"]["child"]["upn"] not in json.dumps(me.ledger.audit_entries())
        # Plain open still refuses it, decades on, and the inbox-free file was left where it is.
        with pytest.raises(SecurityError):
            me.open(archived.package, out=tmp_path / "plain.json")
        assert archived.package.exists()


def test_archive_verification_never_imports_so_a_later_import_is_not_a_replay(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    a = make_party(tmp_path, A, "Example Council", clock)
    b = make_party(tmp_path, B, "Example School", clock)
    a.trust(b)
    b.trust(a)
    pkg = tmp_path / "p.lax"
    pkg.write_bytes(a.pack(record(8), B))
    with _party(b) as me:
        first = me.open_archived(pkg, out=tmp_path / "1.json")
        assert first.warnings == []
        assert me.ledger.get(first.manifest.transfer_id, "in", A) is None
        me.open(pkg, out=tmp_path / "2.json")  # imported now: not refused as a replay
        assert me.ledger.get(first.manifest.transfer_id, "in", A).state == "imported"
        me.open_archived(pkg, out=tmp_path / "3.json")  # and still verifiable as an archive afterwards
        assert me.ledger.get(first.manifest.transfer_id, "in", A).state == "imported"
        with pytest.raises(SecurityError) as ei:
            me.open(pkg, out=tmp_path / "4.json")
        assert ei.value.code == "package.replayed"


def test_a_revocation_dated_before_created_is_fatal_even_as_an_archive(tmp_path: Path) -> None:
    clock = FixedClock(T0)
    a = make_party(tmp_path, A, "Example Council", clock)
    b = make_party(tmp_path, B, "Example School", clock)
    a.trust(b)
    b.trust(a)
    pkg = tmp_path / "p.lax"
    pkg.write_bytes(a.pack(record(9), B))
    signer = a.store.ring().keys_valid_at(T0, SIGNING)[0].kid
    clock.advance(days=1)
    a.store.rotate()
    b.directory.add(a.card()[0])
    # The key is revoked as from an hour before the package says it was made (a compromise found later).
    a.store.revoke(signer, "key-compromise", at=T0.replace(hour=11))
    b.directory.add(a.card()[0])
    clock.advance(days=THIRTY_YEARS)
    with _party(b) as me:
        with pytest.raises(SecurityError) as ei:
            me.open_archived(pkg, out=tmp_path / "x.json")
        assert ei.value.code == "package.revoked-key" and not (tmp_path / "x.json").exists()
        assert [e["event"] for e in me.ledger.audit_entries()] == []


def test_a_tampered_package_is_refused_as_an_archive_and_left_where_it_is(archived: Archived,
                                                                         tmp_path: Path) -> None:
    data = bytearray(archived.package.read_bytes())
    data[-40] ^= 1
    bad = tmp_path / "bad.lax"
    bad.write_bytes(bytes(data))
    archived.clock.advance(days=THIRTY_YEARS)
    with _party(archived.b) as me:
        with pytest.raises(SecurityError) as ei:
            me.open_archived(bad, out=tmp_path / "bad.json")
        assert ei.value.code == "package.tampered" and bad.exists() and not (tmp_path / "bad.json").exists()
        assert not me.home.quarantine.exists() or not any(me.home.quarantine.iterdir())


def test_a_package_backdated_before_its_signing_key_existed_is_refused_as_an_archive(archived: Archived,
                                                                                    tmp_path: Path) -> None:
    """The rotated key (valid from T0 + 1 day) signs a package claiming T0: no key was valid at `created`."""
    a, b = archived.a, archived.b
    new_key = a.store.signers(archived.clock.now())[0]
    assert a.store.ring().find_key(new_key.keyid).not_before == "2026-11-25T12:00:00Z"
    st = statement_for(A, B, record(4), created=T0, expires=T0 + dt.timedelta(days=30))
    pkg = tmp_path / "backdated.lax"
    pkg.write_bytes(forge(st, signers=[new_key], encrypt_to=b))
    archived.clock.advance(days=THIRTY_YEARS)
    with _party(b) as me, pytest.raises(SecurityError) as ei:
        me.open_archived(pkg, out=tmp_path / "x.json")
    assert ei.value.code == "package.key-not-valid" and "not-yet-valid at 2026-11-24T12:00:00Z" in ei.value.message


def test_a_removed_sender_is_still_verifiable_from_its_history(archived: Archived, tmp_path: Path) -> None:
    archived.clock.advance(days=400)
    archived.b.directory.remove(A)
    with _party(archived.b) as me:
        with pytest.raises(SecurityError) as ei:
            me.open(archived.package, out=tmp_path / "x.json")
        assert ei.value.code == "package.unknown-sender"
        opened = me.open_archived(archived.package, out=tmp_path / "kept.json")
    assert [w["code"] for w in opened.warnings] == ["archive.revoked-later", "archive.partner-removed"]


def test_an_archive_needs_a_sender_we_once_trusted_and_a_package_for_us(archived: Archived, tmp_path: Path) -> None:
    stranger = make_party(tmp_path / "s", "LA:921", "Stranger Council", archived.clock)
    stranger.trust(archived.b)
    pkg = tmp_path / "stranger.lax"
    pkg.write_bytes(stranger.pack(record(3), B))
    with _party(archived.b) as me:
        with pytest.raises(SecurityError) as ei:
            me.open_archived(pkg, out=tmp_path / "s.json")
        assert ei.value.code == "package.unknown-sender"
    c = make_party(tmp_path / "c", "LA:920", "Other Council", archived.clock)
    c.trust(archived.a)
    with _party(c) as them, pytest.raises(SecurityError) as ei:
        them.open_archived(archived.package, out=tmp_path / "c.json")
    assert ei.value.code == "package.not-addressed-to-us"


def test_the_library_refuses_replay_hooks_with_archive(archived: Archived) -> None:
    with pytest.raises(UsageError):
        package.open_package(io.BytesIO(archived.package.read_bytes()), keystore=archived.b.store,
                             directory=archived.b.directory, seen=lambda tid, sender: False, archive=True)


# -- the same through the CLI, as council IT would run it thirty years on -------------------------

ENV = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode(), "LAXCHANGE_PASSPHRASE_FILE": ""}


def _cli(clock: FixedClock, home: Home, *args: str) -> tuple[int, str, str]:
    from laxchange.cli import main

    out, err = io.StringIO(), io.StringIO()
    r = CliRunner().invoke(main, ["--home", str(home.root), *args], env=ENV, catch_exceptions=False,
                           obj=App(home=home, clock=clock, out=out, err=err))
    return r.exit_code, out.getvalue(), err.getvalue()


def test_open_archive_through_the_cli(archived: Archived, tmp_path: Path) -> None:
    clock, home = archived.clock, archived.b.home
    clock.advance(days=THIRTY_YEARS)
    code, out, err = _cli(clock, home, "open", str(archived.package), "-o", str(tmp_path / "plain.json"))
    assert code == 3 and "package rejected" in err and not (tmp_path / "plain.json").exists()
    code, out, err = _cli(clock, home, "open", "--archive", str(archived.package), "-o", str(tmp_path / "kept.json"))
    assert code == 0, out + err
    version = archived.doc["schema"].rsplit("/", 1)[1]
    assert out.startswith(f"Verified as an archive: pep-transfer@{version} sent by {A} to {B} at 2026-11-24T12:00:00Z")
    assert "nothing was imported" in out
    assert f"warning: signing key {archived.revoked} (ed25519) of {A} was revoked later" in err
    assert jsonio.load_file(tmp_path / "kept.json") == archived.doc
    code, out, err = _cli(clock, home, "--json", "open", "--archive", str(archived.package), "-o",
                          str(tmp_path / "kept.json"), "--force")
    data = json.loads(out)
    assert code == 0 and data["archive"] is True and err == ""
    assert [w["code"] for w in data["warnings"]] == ["archive.revoked-later"]
    assert data["warnings"][0]["kid"] == archived.revoked
    code, out, _ = _cli(clock, home, "--json", "status")
    assert code == 0 and archived.doc["record"]["child"]["upn"] not in out
