"""Issue 10: keys are destroyed only by an explicit, audited prune; `keys list` tells the truth."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from laxchange.errors import ConfigError
from laxchange.exchange import Party
from laxchange.trust.keystore import ENCRYPTION, SIGNING
from tests.support.parties import record, world


def _party(p) -> Party:  # type: ignore[no-untyped-def]
    return Party.from_home(p.home, clock=p.clock, keystore=p.store, directory=p.directory)


def test_pack_past_a_keys_not_after_destroys_nothing(tmp_path: Path) -> None:
    """Issue 10 item 11: one `pack` with the clock past not_after deleted keys/<kid>.age silently."""
    a, b, _ = world(tmp_path)
    files = sorted(p.name for p in a.home.keys.rglob("*.age"))
    kid = next(k.kid for k in a.store.ring().keys if k.use == SIGNING)
    a.clock.advance(days=3 * 365)  # far past every key's not_after (a skewed clock looks the same)
    with _party(a) as me, pytest.raises(ConfigError):
        me.pack(record(1), message_type="pep-transfer", recipient=b.party, out=tmp_path / "x.lax")
    assert sorted(p.name for p in a.home.keys.rglob("*.age")) == files
    assert a.store.key_states()[kid]["status"] == "expired"


def test_rotated_signing_key_waits_for_prune_and_prune_is_audited(tmp_path: Path) -> None:
    a, b, _ = world(tmp_path)
    old = {k.use: k.kid for k in a.store.ring().keys}
    a.store.rotate(overlap_days=7)
    with _party(a) as me:
        assert me.prune_keys() == [], "nothing is destroyed during the overlap"
        a.clock.advance(days=8)
        me.pack(record(1), message_type="pep-transfer", recipient=b.party, out=tmp_path / "x.lax")
        assert (a.home.keys / f"{old[SIGNING]}.age").exists(), "pack destroys nothing"
        assert a.store.key_states()[old[SIGNING]]["status"] == "retired-awaiting-prune"
        gone = me.prune_keys()
        assert [g["kid"] for g in gone] == [old[SIGNING]]
        assert not (a.home.keys / f"{old[SIGNING]}.age").exists()
        assert (a.home.keys / "archive" / f"{old[ENCRYPTION]}.age").exists(), "old packages must still open"
        notes = [e for e in me.ledger.audit_entries() if e["event"] == "key.destroyed"]
        assert [n["data"]["kid"] for n in notes] == [old[SIGNING]]
        assert me.prune_keys() == []
    states = a.store.key_states()
    assert states[old[SIGNING]]["status"] == "retired" and states[old[SIGNING]]["private"] == "destroyed"
    assert states[old[ENCRYPTION]]["status"] == "retired" and states[old[ENCRYPTION]]["private"] == "archived"


def test_expired_key_that_was_never_replaced_is_not_pruned(tmp_path: Path) -> None:
    a, _, _ = world(tmp_path)
    a.clock.advance(days=3 * 365)
    with _party(a) as me:
        assert me.prune_keys() == []
    assert len(list(a.home.keys.glob("*.age"))) == 2


def test_revoked_signing_key_is_kept_until_prune(tmp_path: Path) -> None:
    a, _, _ = world(tmp_path)
    a.store.rotate(overlap_days=30)
    old = next(k.kid for k in a.store.ring().keys if k.use == SIGNING)
    a.store.revoke(old, "key-compromise")
    assert (a.home.keys / f"{old}.age").exists()
    assert a.store.key_states()[old]["status"] == "revoked"
    with _party(a) as me:
        assert [g["kid"] for g in me.prune_keys()] == [old]
    assert not (a.home.keys / f"{old}.age").exists()


def test_missing_private_file_is_shown(tmp_path: Path) -> None:
    a, _, _ = world(tmp_path)
    kid = next(k.kid for k in a.store.ring().keys if k.use == SIGNING)
    (a.home.keys / f"{kid}.age").unlink()
    assert a.store.key_states()[kid]["status"] == "missing-private-file"


def test_expiring_warns_30_days_ahead_unless_a_successor_exists(tmp_path: Path) -> None:
    a, _, _ = world(tmp_path)
    end = min(dt.datetime.fromisoformat(k.not_after.replace("Z", "+00:00")) for k in a.store.ring().keys)
    a.clock.advance(seconds=(end - a.clock.now()).total_seconds() - 31 * 86400)
    assert a.store.expiring() == []
    a.clock.advance(days=2)
    assert {k.use for k in a.store.expiring()} == {ENCRYPTION, SIGNING}
    a.store.rotate()
    assert a.store.expiring() == [], "a rotation's overlap is not a warning"
