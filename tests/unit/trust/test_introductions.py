"""Introductions (issue 12 #6): a host council's signed area directory lets a placing council add a school it
never spoke to; limited to the host's own area, withdrawn with the host, and always outranked by a direct
confirmation."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from laxchange import dsse
from laxchange._util import jsonio
from laxchange.clock import FixedClock
from laxchange.errors import ConfigError, InvalidData, SecurityError, UsageError
from laxchange.trust import PartnerDirectory, build_area, read_schools_csv
from laxchange.trust.area import AREA_PAYLOAD_TYPE
from laxchange.trust.keystore import ENCRYPTION
from tests.support.parties import T0, Party, make_party, record

DT = {"name": "Alex Example", "role": "Designated Teacher", "email": "dt@school.example"}


def _setup(tmp_path: Path) -> tuple[Party, Party, Party, Party]:
    """Host council H (LA:919) confirmed its school S (URN:111111) and a neighbour's school N (URN:222222);
    placing council P (LA:210) confirmed only H."""
    clock = FixedClock(T0)
    h = make_party(tmp_path, "LA:919", "Host Council (fictional)", clock)
    s = make_party(tmp_path, "URN:111111", "Brook Primary (fictional)", clock)
    n = make_party(tmp_path, "URN:222222", "Neighbour Academy (fictional)", clock)
    p = make_party(tmp_path, "LA:210", "Placing Council (fictional)", clock)
    h.trust(s)
    h.trust(n)
    p.trust(h)
    return h, s, n, p


def _area(h: Party, schools: list[tuple[str, str, dict[str, str] | None]]) -> dict[str, Any]:
    entries, _ = h.directory.area_entries(h.party, schools)
    return build_area(h.store, entries)


def _raw_area(h: Party, schools: list[tuple[Party, str]]) -> dict[str, Any]:
    """An area directory signed by H listing whatever it is given (what area_entries would refuse to publish)."""
    return build_area(h.store, [(h.directory.get(x.party), la, None) for x, la in schools])


def test_a_placing_council_adds_a_school_it_never_spoke_to_and_sends_it_a_pep(tmp_path: Path) -> None:
    h, s, _n, p = _setup(tmp_path)
    area = _area(h, [("URN:111111", "919", DT)])
    h.clock.advance(hours=1)
    partner, outcome = p.directory.introduce(area, "URN:111111", introduced_by="LA:919")
    assert outcome == "introduced" and partner.introduced_by == "LA:919"
    assert partner.fingerprint == s.card()[1] and partner.designated_teacher == DT
    # on disk, seen by a fresh directory: recorded as introduced, naming the area directory version
    fresh = PartnerDirectory(p.home, clock=p.clock)
    got = fresh.get("URN:111111")
    assert got.trust is not None and got.trust["by"] == "introduction" and got.trust["introducer"] == "LA:919"
    [v] = fresh.history("URN:111111")
    d = v.to_dict()
    payload = base64.b64decode(area["payload"])
    assert d["event"] == "introduced" and d["confirmed"]["area"]["sha256"] == hashlib.sha256(payload).hexdigest()
    assert d["confirmed"]["introducer_fingerprint"] == h.card()[1]
    # the school can open what the placing council sends it
    s.trust(p)
    doc = record(3)
    opened = s.open(p.pack(doc, "URN:111111"))
    assert opened.manifest.sender == "LA:210" and opened.document["record"] == doc["record"]


def test_a_school_outside_the_introducers_area_is_refused(tmp_path: Path) -> None:
    h, _s, n, p = _setup(tmp_path)
    area = _raw_area(h, [(n, "920")])  # H holds N's card, but N is in LA 920
    with pytest.raises(SecurityError) as ei:
        p.directory.introduce(area, "URN:222222", introduced_by="LA:919")
    assert ei.value.code == "introduction.outside-area" and ei.value.exit_code == 3
    assert "920" in ei.value.message and p.directory.get_optional("URN:222222") is None
    with pytest.raises(UsageError) as ue:  # and a host council cannot publish it in the first place
        h.directory.area_entries(h.party, [("URN:222222", "920", None)])
    assert ue.value.code == "area.school-outside"


def test_a_school_not_in_the_area_directory_is_refused(tmp_path: Path) -> None:
    h, _s, _n, p = _setup(tmp_path)
    area = _area(h, [("URN:111111", "919", None)])
    with pytest.raises(UsageError) as ei:
        p.directory.introduce(area, "URN:222222", introduced_by="LA:919")
    assert ei.value.code == "introduction.not-listed"


def test_a_tampered_area_directory_is_refused(tmp_path: Path) -> None:
    h, _s, _n, p = _setup(tmp_path)
    area = _area(h, [("URN:111111", "919", DT)])
    raw = bytearray(jsonio.dumps_pretty(area).encode())
    at = raw.index(b'"payload": "') + len(b'"payload": "') + 200
    raw[at] = ord("A") if raw[at] != ord("A") else ord("B")  # one byte, still valid base64 and JSON
    tampered = jsonio.loads_strict(bytes(raw))
    with pytest.raises(SecurityError) as ei:
        p.directory.introduce(tampered, "URN:111111", introduced_by="LA:919")
    assert ei.value.code in ("area.signature", "area.invalid") and ei.value.exit_code == 3
    assert p.directory.get_optional("URN:111111") is None


def test_an_area_directory_signed_by_someone_else_is_refused(tmp_path: Path) -> None:
    h, _s, _n, p = _setup(tmp_path)
    c = make_party(tmp_path, "LA:920", "Other Council (fictional)", h.clock)
    c.trust(h)
    p.trust(c)
    genuine = _area(h, [("URN:111111", "919", None)])
    forged = dsse.sign(AREA_PAYLOAD_TYPE, base64.b64decode(genuine["payload"]), c.store.card_signers()).to_dict()
    with pytest.raises(SecurityError) as ei:
        p.directory.introduce(forged, "URN:111111", introduced_by="LA:919")
    assert ei.value.code == "area.signature"
    own = build_area(c.store, [])  # C's genuine area directory, offered as H's
    with pytest.raises(SecurityError) as mi:
        p.directory.introduce(own, "URN:111111", introduced_by="LA:919")
    assert mi.value.code == "area.introducer-mismatch"
    with pytest.raises(ConfigError) as ui:  # an introducer we never confirmed
        p.directory.introduce(genuine, "URN:111111", introduced_by="LA:921")
    assert ui.value.code == "partner.unknown"


def test_only_a_council_we_confirmed_ourselves_can_introduce(tmp_path: Path) -> None:
    _h, s, _n, p = _setup(tmp_path)
    p.trust(s)
    area = build_area(s.store, [])
    with pytest.raises(SecurityError) as ei:
        p.directory.introduce(area, "URN:222222", introduced_by="URN:111111")
    assert ei.value.code == "introduction.introducer-untrusted"


def test_removing_the_introducer_withdraws_the_school_and_sending_is_refused(tmp_path: Path) -> None:
    h, _s, _n, p = _setup(tmp_path)
    p.directory.introduce(_area(h, [("URN:111111", "919", None)]), "URN:111111", introduced_by="LA:919")
    assert p.directory.remove("LA:919") == ["URN:111111"]
    with pytest.raises(ConfigError) as ei:
        p.pack(record(1), "URN:111111")
    assert ei.value.code == "partner.withdrawn" and "LA:919" in ei.value.message
    assert [v.event for v in p.directory.history("URN:111111")] == ["introduced", "withdrawn"]
    assert p.directory.history("URN:111111")[-1].to_dict()["reason"] == "introducer-removed"
    assert [x.party for x in p.directory.list()] == []


def test_the_introducer_withdrawing_the_school_withdraws_it_and_an_older_directory_cannot_undo_it(
        tmp_path: Path) -> None:
    h, _s, _n, p = _setup(tmp_path)
    old = _area(h, [("URN:111111", "919", None)])
    p.directory.introduce(old, "URN:111111", introduced_by="LA:919")
    h.clock.advance(days=1)
    newer = build_area(h.store, [])
    area, report = p.directory.refresh_area(newer)
    assert area.introducer == "LA:919" and report["withdrawn"] == ["URN:111111"]
    with pytest.raises(ConfigError) as ei:
        p.directory.get("URN:111111")
    assert ei.value.code == "partner.withdrawn" and "withdrew it" in ei.value.message
    with pytest.raises(SecurityError) as si:
        p.directory.introduce(old, "URN:111111", introduced_by="LA:919")
    assert si.value.code == "area.stale"
    assert p.directory.refresh_area(newer)[1] == {"withdrawn": [], "updated": [], "refused": []}  # the same again


def test_a_direct_confirmation_wins(tmp_path: Path) -> None:
    h, s, _n, p = _setup(tmp_path)
    area = _area(h, [("URN:111111", "919", None)])
    p.directory.introduce(area, "URN:111111", introduced_by="LA:919")
    card, fpr = s.card()
    partner, outcome = p.directory.add(card, fingerprint=fpr)  # the same card, now confirmed by us
    assert outcome == "confirmed" and partner.introduced_by is None and partner.trust is not None
    assert partner.trust["by"] == "fingerprint"
    p.directory.remove("LA:919")  # no longer depends on the introducer
    assert p.directory.get("URN:111111").fingerprint == fpr
    # and an introduction never replaces a direct confirmation
    p.trust(h)
    n_before = len(p.directory.history("URN:111111"))
    got, outcome = p.directory.introduce(area, "URN:111111", introduced_by="LA:919")
    assert outcome == "kept-direct" and got.introduced_by is None
    assert len(p.directory.history("URN:111111")) == n_before


def test_publishing_leaves_out_schools_we_did_not_confirm_ourselves(tmp_path: Path) -> None:
    h, _s, _n, p = _setup(tmp_path)
    other = make_party(tmp_path, "URN:333333", "Elsewhere School (fictional)", h.clock)
    entries, left_out = h.directory.area_entries(h.party, [("URN:111111", "919", DT), ("URN:444444", "919", None)])
    assert [e[0].party for e in entries] == ["URN:111111"] and set(left_out) == {"URN:444444"}
    # a school introduced to us is not ours to introduce on
    p.directory.introduce(_area(h, [("URN:111111", "919", None)]), "URN:111111", introduced_by="LA:919")
    _, left = p.directory.area_entries(p.party, [("URN:111111", "210", None)])
    assert "introduced" in left["URN:111111"]
    assert other.party not in left


def test_the_schools_list_is_read_strictly() -> None:
    rows = read_schools_csv(b"urn,la_code,dt_name,dt_email\n111111,919,Alex Example,dt@school.example\n"
                            b"URN:222222,919,,\n", source="schools.csv")
    assert rows == [("URN:111111", "919", {"name": "Alex Example", "email": "dt@school.example",
                                          "role": "Designated Teacher"}), ("URN:222222", "919", None)]
    for bad in (b"urn\n111111\n", b"urn,la_code\n11111,919\n", b"urn,la_code\n111111,91\n",
                b"urn,la_code,dt_name\n111111,919,Alex\n", b"urn,la_code\n"):
        with pytest.raises(InvalidData) as ei:
            read_schools_csv(bad, source="schools.csv")
        assert ei.value.code == "area.schools-file", bad


def test_the_history_file_stays_append_only_and_verifiable(tmp_path: Path) -> None:
    h, _s, _n, p = _setup(tmp_path)
    p.directory.introduce(_area(h, [("URN:111111", "919", DT)]), "URN:111111", introduced_by="LA:919")
    p.directory.remove("LA:919")
    data = json.loads((p.home.partners / "URN_111111.json").read_text())
    assert [e["seq"] for e in data["events"]] == [1, 2]
    assert data["events"][0]["designated_teacher"] == DT
    data["events"][0]["confirmed"]["area"].pop("sha256")
    (p.home.partners / "URN_111111.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError):
        PartnerDirectory(p.home, clock=p.clock).history("URN:111111")


def test_a_newer_area_directory_brings_newer_cards_never_older_ones(tmp_path: Path) -> None:
    h, s, _n, p = _setup(tmp_path)
    p.directory.introduce(_area(h, [("URN:111111", "919", None)]), "URN:111111", introduced_by="LA:919")
    h.clock.advance(days=1)
    kid = s.store.ring().keys_valid_at(s.clock.now(), ENCRYPTION)[0].kid
    s.store.rotate()
    s.store.revoke(kid, "key-compromise")
    new_card, _ = s.card()
    assert p.directory.add(new_card)[1] == "rotated"  # the school sent us its new card itself
    stale = _area(h, [("URN:111111", "919", None)])  # the host still holds the old card
    assert p.directory.refresh_area(stale)[1] == {"withdrawn": [], "updated": [], "refused": []}
    assert p.directory.get("URN:111111").find_key(kid).revoked_at is not None  # the revocation stands
    s.clock.advance(days=1)
    s.store.rotate()  # the school rotates again and tells only its council
    h.trust(s)
    _, report = p.directory.refresh_area(_area(h, [("URN:111111", "919", None)]))
    got = p.directory.get("URN:111111")
    assert report["updated"] == ["URN:111111"] and got.fingerprint == s.card()[1] and got.introduced_by == "LA:919"
    assert [v.event for v in p.directory.history("URN:111111")] == ["introduced", "rotated", "introduced"]
