"""Card history and stable fingerprints (issue 12 #3): every card version a partner presented is kept,
append-only, with how and when it was confirmed; the fingerprint covers party, policy and keys only."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from laxchange._util import jsonio
from laxchange.errors import ConfigError, SecurityError, UsageError
from laxchange.trust import PartnerDirectory, legacy_fingerprint_of
from laxchange.trust.keystore import ENCRYPTION, SIGNING
from tests.support.parties import make_party, record, world

_FPR_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


def _raw(fpr: str) -> str:
    return fpr.replace("-", "")


def test_fingerprint_is_stable_across_re_exports_and_changes_exactly_with_the_keys(tmp_path: Path) -> None:
    a = make_party(tmp_path, "LA:919", "Example Council")
    card1, f1 = a.card()
    a.clock.advance(days=3)
    card2, f2 = a.card()
    assert card1["payload"] != card2["payload"] and f1 == f2
    a.store.set_endpoint("sftp://la919@127.0.0.1:2222/inbox", ["SHA256:" + "A" * 43])
    a.store.rotate_ssh()
    assert a.card()[1] == f1  # endpoint and SSH key are bound by the signature, not the fingerprint
    kid = a.store.ring().keys_valid_at(a.clock.now(), ENCRYPTION)[0].kid
    a.store.revoke(kid, "superseded")
    assert a.card()[1] == f1  # a revocation changes a key's life, not which keys speak for the party
    a.store.rotate()
    assert a.card()[1] != f1  # new keys: a new fingerprint


def test_retired_public_keys_stay_on_the_card(tmp_path: Path) -> None:
    a = make_party(tmp_path, "LA:919", "Example Council")
    first = {k.kid for k in a.store.ring().keys}
    a.store.rotate(overlap_days=0)
    a.clock.advance(days=1)
    assert len(a.store.prune()) == 1  # the old signing key's private half is destroyed
    b = make_party(tmp_path, "URN:123456", "Example School", a.clock)
    b.trust(a)
    assert first < {k.kid for k in b.directory.get("LA:919").keys}


def test_a_wrong_fingerprint_is_refused_without_saying_the_right_one(tmp_path: Path) -> None:
    a, _b, c = world(tmp_path)
    card, real = c.card()
    wrong = "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-2222-3333"
    fresh = make_party(tmp_path / "fresh", "URN:654321", "Fresh School", a.clock)
    with pytest.raises(SecurityError) as ei:
        fresh.directory.add(card, fingerprint=wrong)
    assert ei.value.code == "card.fingerprint-mismatch"
    shown = json.dumps(ei.value.to_dict())
    assert _raw(real) not in shown.replace("-", "") and wrong in shown  # what was typed, never what was expected
    assert fresh.directory.get_optional("LA:920") is None
    # A known partner's changed card with a wrong fingerprint: refused the same way.
    c.clock.advance(days=1)
    c.store.rotate()
    rotated, rotated_fpr = c.card()
    with pytest.raises(SecurityError) as ei:
        a.directory.add(rotated, fingerprint=wrong)
    assert ei.value.code == "card.changed"
    shown = json.dumps(ei.value.to_dict()).replace("-", "")
    assert _raw(rotated_fpr) not in shown and _raw(real) not in shown


def test_history_keeps_every_version_append_only(tmp_path: Path) -> None:
    a, b, _c = world(tmp_path)
    path = b.home.partners / "LA_919.json"
    first_entry = json.loads(path.read_text())["events"][0]
    assert b.directory.add(a.card()[0]) == (b.directory.get("LA:919"), "unchanged")  # same bytes: no new entry
    a.clock.advance(days=1)
    assert b.directory.add(a.card()[0])[1] == "updated"  # a re-export: same keys, new issue time
    a.clock.advance(days=1)
    old_signing = a.store.ring().keys_valid_at(a.clock.now(), SIGNING)[0].kid
    a.store.rotate()
    rotated, rotated_fpr = a.card()
    assert b.directory.add(rotated)[1] == "rotated"
    b.directory.remove("LA:919")
    with pytest.raises(UsageError) as ei:
        b.directory.add(rotated)
    assert ei.value.code == "card.fingerprint-required"  # once removed, only a confirmed fingerprint brings it back
    b.clock.advance(days=1)
    assert b.directory.add(rotated, fingerprint=rotated_fpr)[1] == "added"
    history = b.directory.history("LA:919")
    assert [v.event for v in history] == ["added", "updated", "rotated", "removed", "added"]
    assert [v.seq for v in history] == [1, 2, 3, 4, 5]
    assert history[0].confirmed == {"by": "fingerprint", "fingerprint": history[0].partner.fingerprint,
                                    "fingerprint_version": 2}
    assert history[2].confirmed == {"by": "signature", "signed_by": [old_signing]}
    assert history[1].partner.fingerprint == history[0].partner.fingerprint != history[2].partner.fingerprint
    assert history[4].at == "2026-11-27T12:00:00Z" and history[3].at == "2026-11-26T12:00:00Z"
    assert json.loads(path.read_text())["events"][0] == first_entry  # nothing earlier was rewritten
    d = history[2].to_dict()
    assert d["event"] == "rotated" and d["fingerprint"] == rotated_fpr and len(d["keys"]) == 4


def test_a_removed_partner_is_unknown_but_its_history_stays(tmp_path: Path) -> None:
    a, b, _c = world(tmp_path)
    b.directory.remove("LA:919")
    assert b.directory.get_optional("LA:919") is None
    assert "LA:919" not in [p.party for p in b.directory.list()]
    with pytest.raises(ConfigError) as ei:
        b.directory.get("LA:919")
    assert ei.value.code == "partner.unknown" and "partners history LA:919" in (ei.value.hint or "")
    with pytest.raises(ConfigError):
        b.directory.remove("LA:919")
    assert [v.event for v in PartnerDirectory(b.home).history("LA:919")] == ["added", "removed"]
    assert b.directory.as_of("LA:919", a.clock.now()) is not None


def test_a_re_added_card_cannot_undo_what_we_knew_of_its_keys(tmp_path: Path) -> None:
    """A confirmed fingerprint covers the keys, not their revocations: a stale card re-added with it
    must not un-revoke a key."""
    a, b, _c = world(tmp_path)
    stale, fpr = a.card()
    kid = a.store.ring().keys_valid_at(a.clock.now(), ENCRYPTION)[0].kid
    a.clock.advance(days=1)
    a.store.revoke(kid, "key-compromise")
    assert b.directory.add(a.card()[0])[1] == "updated"
    with pytest.raises(SecurityError) as ei:
        b.directory.add(stale, fingerprint=fpr)
    assert ei.value.code == "card.changed" and "revocation" in ei.value.message
    b.directory.remove("LA:919")
    with pytest.raises(SecurityError):
        b.directory.add(stale, fingerprint=fpr)
    assert b.directory.history("LA:919")[-1].event == "removed"


def test_as_of_knows_every_key_ever_shown_with_its_most_restrictive_life(tmp_path: Path) -> None:
    a, b, _c = world(tmp_path)
    t0 = a.clock.now()
    first_signing = a.store.ring().keys_valid_at(t0, SIGNING)[0]
    a.clock.advance(days=1)
    a.store.rotate(overlap_days=10)
    assert b.directory.add(a.card()[0])[1] == "rotated"
    a.clock.advance(days=1)
    a.store.revoke(first_signing.kid, "key-compromise")
    assert b.directory.add(a.card()[0])[1] == "updated"
    # The partner rebuilds its home: a card with none of the old keys, re-added with its fingerprint.
    rebuilt = make_party(tmp_path / "rebuilt", "LA:919", "Example Council", a.clock)
    card, fpr = rebuilt.card()
    assert b.directory.add(card, fingerprint=fpr)[1] == "replaced"
    assert b.directory.get("LA:919").find_key(first_signing.kid) is None
    view = b.directory.as_of("LA:919", t0)
    assert view is not None and view.versions == 4 and view.removed_at is None
    old = view.partner.find_key(first_signing.kid)
    assert old is not None and old.revoked_at == "2026-11-26T12:00:00Z" and old.revocation_reason == "key-compromise"
    assert old.not_after == "2026-12-05T12:00:00Z"  # cut by the rotation, never lengthened again
    assert view.partner.issued == "2026-11-24T12:00:00Z"  # the version in force at t0
    assert b.directory.as_of("LA:919", a.clock.now()).partner.fingerprint == fpr
    assert b.directory.as_of("LA:921", t0) is None


def _legacy_record(b_home: Path, card: dict, fpr: str) -> Path:
    path = b_home / "partners" / "LA_919.json"
    path.write_text(jsonio.dumps_pretty({"fingerprint": fpr, "added": "2026-11-24T12:00:00Z", "card": card}))
    return path


def test_a_partner_file_of_an_older_release_still_works_and_migrates_on_its_next_change(tmp_path: Path) -> None:
    a, b, _c = world(tmp_path)
    card, fpr = a.card()
    v1 = legacy_fingerprint_of(base64.b64decode(card["payload"]))
    assert v1 != fpr and set(_raw(v1)) <= _FPR_CHARS
    path = _legacy_record(b.home.root, card, v1)
    before = path.read_bytes()
    fresh = PartnerDirectory(b.home, clock=b.clock)
    assert fresh.get("LA:919").fingerprint == fpr  # shown with the stable fingerprint
    (only,) = fresh.history("LA:919")
    assert only.migrated and only.confirmed == {"by": "fingerprint", "fingerprint": v1, "fingerprint_version": 1}
    assert b.open(a.pack(record(3), "URN:123456")).manifest.sender == "LA:919"
    assert path.read_bytes() == before  # reading never rewrites it
    a.clock.advance(days=1)
    a.store.rotate()
    assert fresh.add(a.card()[0])[1] == "rotated"
    stored = json.loads(path.read_text())
    assert stored["format"] == "laxchange-partner/2" and [e["event"] for e in stored["events"]] == ["added", "rotated"]
    assert stored["events"][0]["confirmed"]["fingerprint"] == v1  # what was confirmed then is kept as it was
    assert not PartnerDirectory(b.home).history("LA:919")[0].migrated


def test_a_partner_file_of_an_older_release_with_a_wrong_fingerprint_is_damaged(tmp_path: Path) -> None:
    a, b, _c = world(tmp_path)
    card, fpr = a.card()
    _legacy_record(b.home.root, card, fpr)  # a version-2 fingerprint where version 1 belongs
    with pytest.raises(ConfigError) as ei:
        PartnerDirectory(b.home).get("LA:919")
    assert ei.value.code == "partner.damaged"


def test_a_history_with_a_gap_or_a_rewritten_card_is_damaged(tmp_path: Path) -> None:
    a, b, _c = world(tmp_path)
    a.clock.advance(days=1)
    a.store.rotate()
    b.directory.add(a.card()[0])
    path = b.home.partners / "LA_919.json"
    good = json.loads(path.read_text())
    gap = {**good, "events": [good["events"][1]]}
    path.write_text(json.dumps(gap))
    with pytest.raises(ConfigError) as ei:
        PartnerDirectory(b.home).get("LA:919")
    assert ei.value.code == "home.file-damaged" and "append-only" in ei.value.message
    swapped = json.loads(json.dumps(good))
    swapped["events"][1]["fingerprint"] = swapped["events"][0]["fingerprint"]
    path.write_text(json.dumps(swapped))
    with pytest.raises(ConfigError) as ei:
        PartnerDirectory(b.home).get("LA:919")
    assert ei.value.code == "partner.damaged"


def test_history_of_an_unknown_party(tmp_path: Path) -> None:
    _a, b, _c = world(tmp_path)
    with pytest.raises(ConfigError) as ei:
        b.directory.history("LA:921")
    assert ei.value.code == "partner.unknown"
