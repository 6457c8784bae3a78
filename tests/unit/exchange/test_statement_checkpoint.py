"""Issue 12 #4: a checkpoint as an optional signed member of a package's statement (format 1.1,
docs/format.md §4.1), and what each side writes for a partner by what its card says it reads
(policy.reads, §8.2): the statement's checkpoint only for a 1.1 reader, receipts at the highest
version both read. A checkpoint that arrives and does not verify is evidence: kept and reported,
never dropped, and never a reason to refuse the genuine record it came with."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from laxchange import dsse, package
from laxchange.cli import main
from laxchange.errors import ConfigError
from laxchange.exchange import Party, transparency
from laxchange.exchange.receipts import BASELINE, build_receipt, receipt_version_for
from laxchange.ledger import checkpoint as cpt
from laxchange.ledger.db import Ledger
from laxchange.models.messages import RECEIPT_VERSION
from laxchange.trust import read_card
from laxchange.trust.cards import card_from, our_reads
from tests.support.forge import forge, statement_for
from tests.support.parties import PASSPHRASE, make_party, passphrase, record
from tests.support.parties import Party as SupportParty

ENV = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode()}
VSH, SCHOOL = "LA:919", "URN:123456"


def _me(p: SupportParty) -> Party:
    return Party.from_home(p.home, passphrase=passphrase, clock=p.clock, keystore=p.store, directory=p.directory)


def lax(p: SupportParty, *args: str) -> Any:
    return CliRunner().invoke(main, ["--home", str(p.home.root), *args], env=ENV)


def _old_card(p: SupportParty) -> tuple[dict[str, Any], str]:
    """`p`'s card as a release before negotiation made it: no `policy.reads`."""
    return card_from(p.store.ring(), p.clock.now(), p.store.card_signers())


@pytest.fixture
def pair(tmp_path: Path) -> tuple[SupportParty, SupportParty]:
    vsh = make_party(tmp_path, VSH, "Placing VS (fictional)")
    school = make_party(tmp_path, SCHOOL, "School (fictional)", vsh.clock)
    vsh.trust(school)
    school.trust(vsh)
    return vsh, school


def _send(vsh: SupportParty, school: SupportParty, tmp_path: Path, name: str) -> package.Opened:
    """VSH packs a PEP for the school (`Party.pack`), the school opens it (`Party.open`)."""
    with _me(vsh) as me:
        me.pack(record(3), message_type="pep-transfer", recipient=school.party, out=tmp_path / f"{name}.lax")
    with _me(school) as me:
        return me.open(tmp_path / f"{name}.lax", out=tmp_path / f"{name}.json")


def _held(school: SupportParty, who: str = VSH) -> list[str]:
    return [p.read_text() for p in cpt.partner_store(school.home.root, who).paths()]


def _signed(p: SupportParty, size: int, root: bytes) -> str:
    """A checkpoint of `p`'s log of `size` entries with `root`, signed with `p`'s own Ed25519 key."""
    signer = next(s for s in p.store.signers() if s.alg == dsse.ED25519)
    info = p.store.ring().find_key(signer.keyid)
    assert info is not None
    cp = cpt.Checkpoint(cpt.origin_for(p.party), size, root)
    return cpt.sign_note(cp.text(), cp.origin, signer, info.public_bytes())


def _pep_with_forged_checkpoint(vsh: SupportParty, out: Path) -> str:
    """A genuine PEP for the school at `out` carrying a checkpoint that does not verify (it claims a
    longer log than `vsh` signed); returns that checkpoint."""
    with _me(vsh) as me:
        note = transparency.make_checkpoint(me).note
    lines = note.split("\n")
    forged = "\n".join([lines[0], str(int(lines[1]) + 7), *lines[2:]])
    out.write_bytes(vsh.pack(record(3), SCHOOL, checkpoint=forged))
    return forged


def test_a_package_carries_the_senders_latest_checkpoint_and_the_recipient_keeps_it(
        pair: tuple[SupportParty, SupportParty], tmp_path: Path) -> None:
    vsh, school = pair
    assert _send(vsh, school, tmp_path, "before").checkpoint is None, "nothing signed yet, nothing carried"
    assert _held(school) == []
    with _me(vsh) as me:
        made = transparency.make_checkpoint(me)
    opened = _send(vsh, school, tmp_path, "after")
    assert opened.checkpoint == made.note and opened.warnings == []
    assert _held(school) == [made.note]
    _send(vsh, school, tmp_path, "again")  # the same latest checkpoint again: kept once
    assert _held(school) == [made.note]
    with _me(vsh) as me:
        me.ledger.note("in.refused", {"reason": "package.tampered", "sha256": "0" * 64})
        later = transparency.make_checkpoint(me)
        me.pack(record(3), message_type="pep-transfer", recipient=SCHOOL, out=tmp_path / "archived.lax")
    with _me(school) as me:  # archive verification reads it and keeps nothing (it changes no state)
        assert me.open_archived(tmp_path / "archived.lax", out=tmp_path / "archived.json").checkpoint == later.note
    assert _held(school) == [made.note]
    out = tmp_path / "held.note"
    r = lax(school, "--json", "audit", "held", VSH, "-o", str(out))
    assert r.exit_code == 0, r.output
    assert out.read_text() == made.note
    assert lax(vsh, "audit", "verify", "--checkpoint", str(out)).exit_code == 0
    assert lax(school, "audit", "verify").exit_code == 0


def test_a_partner_whose_card_does_not_say_it_reads_1_1_gets_no_checkpoint(
        pair: tuple[SupportParty, SupportParty], tmp_path: Path) -> None:
    vsh, school = pair
    shown = lax(vsh, "partners", "show", SCHOOL).output
    assert "Reads: package format 1.1, receipts 1.0.0, 1.1.0, 1.2.0; we send it receipt 1.2.0" in shown
    vsh.directory.add(_old_card(school)[0])  # the school's card re-exported by an older release
    shown = lax(vsh, "partners", "show", SCHOOL).output
    assert "Reads: nothing said (an older laxchange): package format 1.0; we send it receipt 1.1.0" in shown
    assert not vsh.directory.get(SCHOOL).reads_format(package.CHECKPOINT_FORMAT)
    with _me(vsh) as me:
        transparency.make_checkpoint(me)
    assert _send(vsh, school, tmp_path, "pep").checkpoint is None
    assert _held(school) == []


def test_a_checkpoint_that_does_not_verify_in_a_genuine_package_is_kept_as_evidence_and_reported(
        pair: tuple[SupportParty, SupportParty], tmp_path: Path) -> None:
    vsh, school = pair
    forged = _pep_with_forged_checkpoint(vsh, tmp_path / "pep.lax")
    r = lax(school, "--json", "open", str(tmp_path / "pep.lax"), "-o", str(tmp_path / "pep.json"))
    assert r.exit_code == 0, r.output  # the record is genuine: the package's signatures verified
    [warning] = json.loads(r.stdout)["warnings"]
    assert warning["code"] == "checkpoint.refused" and "does not verify" in warning["message"]
    assert _held(school) == [], "not kept as a checkpoint of the sender's log ..."
    [evidence] = cpt.partner_store(school.home.root, VSH).refused()
    assert evidence.read_text() == forged, "... but kept as evidence, byte for byte"
    with Ledger(school.home.ledger_db) as ledger:
        notes = [e["data"] for e in ledger.audit_entries() if e["event"] == "checkpoint.refused"]
    [n] = notes
    assert (n["party"], n["code"], n["kept"]) == (VSH, "checkpoint.bad-signature", evidence.name)
    assert n["transfer_id"] == json.loads(r.stdout)["manifest"]["transfer_id"]
    r = lax(school, "--json", "audit", "verify")
    assert r.exit_code == 3 and json.loads(r.stdout)["error"] == "checkpoint.refused", r.output
    r = lax(school, "open", str(tmp_path / "pep.lax"), "-o", str(tmp_path / "again.json"))
    assert r.exit_code == 3, "a replay is still a replay"


def test_a_checkpoint_of_a_forked_log_is_kept_beside_the_other_and_reported(
        pair: tuple[SupportParty, SupportParty], tmp_path: Path) -> None:
    vsh, school = pair
    with _me(vsh) as me:
        first = transparency.make_checkpoint(me)
    assert _send(vsh, school, tmp_path, "one").warnings == []
    fork = _signed(vsh, first.size, bytes(32))  # the same size, another root: the log was rewritten
    (tmp_path / "two.lax").write_bytes(vsh.pack(record(3), SCHOOL, checkpoint=fork))
    with _me(school) as me:
        opened = me.open(tmp_path / "two.lax", out=tmp_path / "two.json")
        state = me.ledger.get(opened.manifest.transfer_id, "in", VSH)
    assert state is not None and state.state == "imported"
    assert [w["code"] for w in opened.warnings] == ["checkpoint.partner-inconsistent"]
    assert _held(school) == [first.note, fork], "both signed heads are the evidence"
    with Ledger(school.home.ledger_db) as ledger:
        [n] = [e["data"] for e in ledger.audit_entries() if e["event"] == "checkpoint.partner-inconsistent"]
    kept = [p.name for p in cpt.partner_store(school.home.root, VSH).paths()]
    assert (n["party"], n["transfer_id"], n["earlier"], n["kept"]) == (VSH, opened.manifest.transfer_id, *kept)
    r = lax(school, "--json", "audit", "verify")
    assert r.exit_code == 3 and json.loads(r.stdout)["error"] == "checkpoint.partner-inconsistent", r.output


def test_readers_take_only_a_string_checkpoint_and_still_refuse_unknown_members(
        pair: tuple[SupportParty, SupportParty]) -> None:
    vsh, school = pair
    signer = vsh.store.signers()
    now = vsh.clock.now()
    for extra in ({"checkpoint": 5}, {"checkpoint": None}, {"checkpoint": "x" * 5000}, {"witness": "x"}):
        st = {**statement_for(VSH, SCHOOL, record(3), created=now, expires=now.replace(year=now.year + 1)), **extra}
        data = forge(st, signers=signer, encrypt_to=school)
        with pytest.raises(Exception) as e:
            school.open(data)
        assert getattr(e.value, "code", None) == "statement.malformed", (extra, e.value)
    st = {**statement_for(VSH, SCHOOL, record(3), created=now, expires=now.replace(year=now.year + 1)),
          "checkpoint": "any string: the package reader only carries it"}
    assert school.open(forge(st, signers=signer, encrypt_to=school)).checkpoint == st["checkpoint"]


def test_the_card_says_what_we_read_and_older_cards_say_nothing(pair: tuple[SupportParty, SupportParty]) -> None:
    vsh, _ = pair
    new, _ = read_card(vsh.card()[0])
    assert new.reads == our_reads()
    assert new.reads_format("1.1") and new.reads_format("1.0") and not new.reads_format("1.2")
    assert RECEIPT_VERSION in (new.reads_versions("receipt") or [])
    old, _ = read_card(_old_card(vsh)[0])
    assert old.reads is None and old.reads_versions("receipt") is None
    assert old.reads_format("1.0") and not old.reads_format("1.1")
    assert new.fingerprint == old.fingerprint, "what a party reads is not who it is"


@pytest.mark.parametrize("reads", [[], {"format": 1}, {"format": "1"}, {"schemas": {"receipt": []}},
                                   {"schemas": {"receipt": ["1.2"]}}, {"schemas": {"Receipt!": ["1.2.0"]}},
                                   {"schemas": ["receipt"]}, {"format": "1.10000"}, {"format": "01.1"},
                                   {"schemas": {"receipt": ["1.2.10000"]}}])
def test_a_card_with_a_malformed_reads_is_refused(pair: tuple[SupportParty, SupportParty], reads: Any) -> None:
    vsh, _ = pair
    card, _ = card_from(vsh.store.ring(), vsh.clock.now(), vsh.store.card_signers(), reads=reads)
    with pytest.raises(Exception) as e:
        read_card(card)
    assert getattr(e.value, "code", None) == "card.invalid"


def test_unknown_advertisements_are_ignored(pair: tuple[SupportParty, SupportParty]) -> None:
    vsh, _ = pair
    reads = {"format": "1.7", "schemas": {"receipt": ["1.2.0", "1.3.0"]}, "future": {"anything": True}}
    card, _ = card_from(vsh.store.ring(), vsh.clock.now(), vsh.store.card_signers(), reads=reads)
    partner, _ = read_card(card)
    assert partner.reads == {"format": "1.7", "schemas": {"receipt": ["1.2.0", "1.3.0"]}}
    assert receipt_version_for(partner) == "1.2.0", "the highest both read, not the highest they read"


def test_the_receipt_version_for_each_kind_of_partner(pair: tuple[SupportParty, SupportParty]) -> None:
    vsh, _ = pair

    def partner(reads: Any) -> Any:
        return read_card(card_from(vsh.store.ring(), vsh.clock.now(), vsh.store.card_signers(), reads=reads)[0])[0]

    assert receipt_version_for(partner(None)) == BASELINE == "1.1.0"
    assert receipt_version_for(partner(our_reads())) == RECEIPT_VERSION
    assert receipt_version_for(partner({"format": "1.1"})) == BASELINE, "says nothing about receipts"
    assert receipt_version_for(partner({"schemas": {"receipt": ["1.0.0", "1.1.0"]}})) == "1.1.0"
    with pytest.raises(ConfigError) as e:
        receipt_version_for(partner({"schemas": {"receipt": ["1.0.0"]}}))
    assert e.value.code == "receipt.no-common-version"


def test_a_1_1_0_receipt_goes_without_the_checkpoint(pair: tuple[SupportParty, SupportParty]) -> None:
    vsh, school = pair
    now = vsh.clock.now()
    note = _signed(school, 1, bytes(32))
    kw: dict[str, Any] = {"in_reply_to": "0" * 32, "payload_sha256": "1" * 64, "received_at": now,
                          "processed_at": now, "checkpoint": note}
    old = build_receipt(**kw, version="1.1.0")
    assert old["schema"].endswith("/receipt/1.1.0") and "checkpoint" not in old
    new = build_receipt(**kw)
    assert new["schema"].endswith("/receipt/1.2.0") and new["checkpoint"] == note
    for doc, schema in ((old, "receipt@1.1.0"), (new, "receipt@1.2.0")):  # each validates as what it says
        assert vsh.open(school.pack(doc, VSH, message_type="receipt")).schema == schema


def test_evidence_an_operator_acknowledges_stays_kept_and_verify_passes_until_it_changes(
        pair: tuple[SupportParty, SupportParty], tmp_path: Path) -> None:
    vsh, school = pair
    forged = _pep_with_forged_checkpoint(vsh, tmp_path / "pep.lax")
    assert lax(school, "open", str(tmp_path / "pep.lax"), "-o", str(tmp_path / "pep.json")).exit_code == 0
    r = lax(school, "--json", "audit", "verify")
    assert r.exit_code == 3, r.output
    [problem] = json.loads(r.stdout)["details"]["problems"]
    [evidence] = cpt.partner_store(school.home.root, VSH).refused()
    assert (problem["party"], problem["kept"]) == (VSH, f"refused/{evidence.name}")

    r = lax(school, "--json", "audit", "acknowledge", VSH, problem["kept"], "--ref", "INC-2026-0042")
    assert r.exit_code == 0, r.output
    with Ledger(school.home.ledger_db) as ledger:
        [n] = [e["data"] for e in ledger.audit_entries(["checkpoint.acknowledged"])]
    assert n == {"party": VSH, "kept": problem["kept"], "sha256": hashlib.sha256(forged.encode()).hexdigest(),
                 "ref": "INC-2026-0042", "code": "checkpoint.refused"}
    r = lax(school, "--json", "audit", "verify")
    assert r.exit_code == 0, r.output
    [ack] = json.loads(r.stdout)["acknowledged"]
    assert (ack["code"], ack["kept"], ack["ref"]) == ("checkpoint.refused", problem["kept"], "INC-2026-0042")
    assert evidence.read_text() == forged, "acknowledged evidence is never removed or changed"
    r = lax(school, "audit", "verify")
    assert r.exit_code == 0 and "acknowledged" in r.stdout and "INC-2026-0042" in r.stdout, r.output

    evidence.write_text(forged + "x")  # the file is not what was acknowledged any more
    assert lax(school, "audit", "verify").exit_code == 3


def test_acknowledging_needs_reported_evidence_and_a_reference_without_prose(
        pair: tuple[SupportParty, SupportParty], tmp_path: Path) -> None:
    vsh, school = pair
    with _me(vsh) as me:
        first = transparency.make_checkpoint(me)
    _send(vsh, school, tmp_path, "one")
    (tmp_path / "two.lax").write_bytes(vsh.pack(record(3), SCHOOL, checkpoint=_signed(vsh, first.size, bytes(32))))
    assert lax(school, "open", str(tmp_path / "two.lax"), "-o", str(tmp_path / "two.json")).exit_code == 0
    older, later = (p.name for p in cpt.partner_store(school.home.root, VSH).paths())

    r = lax(school, "--json", "audit", "acknowledge", VSH, older, "--ref", "T1")
    assert r.exit_code == 2 and json.loads(r.stdout)["error"] == "audit.no-such-evidence", r.output
    assert later in json.loads(r.stdout)["message"], "it says what verify does report"
    for prose in ("told Jo Bloggs at the school", "Jo.Bloggs"):  # a sentence, or a name: no ticket number
        r = lax(school, "--json", "audit", "acknowledge", VSH, later, "--ref", prose)
        assert r.exit_code == 2 and json.loads(r.stdout)["error"] == "audit.bad-reference", r.output
    with Ledger(school.home.ledger_db) as ledger:
        assert ledger.audit_entries(["checkpoint.acknowledged"]) == [], "nothing recorded by a refused call"

    assert lax(school, "audit", "acknowledge", VSH, later, "--ref", "T1").exit_code == 0
    r = lax(school, "--json", "audit", "verify")
    assert r.exit_code == 0 and [a["code"] for a in json.loads(r.stdout)["acknowledged"]] == [
        "checkpoint.partner-inconsistent"], r.output
    # the fork rests on both files: the earlier one replaced (by another fork of that size) is not
    # what was acknowledged
    folder = cpt.partner_store(school.home.root, VSH).folder
    kept_earlier = (folder / older).read_bytes()
    (folder / older).write_text(_signed(vsh, first.size, bytes([2]) * 32))
    assert lax(school, "audit", "verify").exit_code == 3
    (folder / older).write_bytes(kept_earlier)
    assert lax(school, "audit", "verify").exit_code == 0
    # a further fork is new evidence: verify reports it although the earlier one was acknowledged
    (tmp_path / "three.lax").write_bytes(vsh.pack(record(3), SCHOOL,
                                                  checkpoint=_signed(vsh, first.size, bytes([1]) * 32)))
    assert lax(school, "open", str(tmp_path / "three.lax"), "-o", str(tmp_path / "three.json")).exit_code == 0
    r = lax(school, "--json", "audit", "verify")
    assert r.exit_code == 3 and json.loads(r.stdout)["error"] == "checkpoint.partner-inconsistent", r.output


def test_one_party_packing_across_new_checkpoints_carries_the_newest_each_time(
        pair: tuple[SupportParty, SupportParty]) -> None:
    """The newest note is remembered between packages (a batch packs one per placement); a note
    signed since, even within the same clock tick as the last one, is seen at once."""
    vsh, _school = pair
    with _me(vsh) as me:
        assert me.checkpoint_for(SCHOOL, record(3)) is None
        for _ in range(3):  # back to back: each note within the file system's timestamp granularity
            made = transparency.make_checkpoint(me)
            assert me.checkpoint_for(SCHOOL, record(3)) == made.note


def test_the_newest_note_is_read_again_only_when_its_folder_changes(pair: tuple[SupportParty, SupportParty]) -> None:
    """Once the folder is older than the racy margin, an unchanged folder is not listed and read
    again for every package; a note added (the folder changes) is."""
    import os
    vsh, _school = pair
    with _me(vsh) as me:
        first = transparency.make_checkpoint(me)
        folder = cpt.own_store(vsh.home.root).folder
        past = os.stat(folder).st_mtime_ns - 10_000_000_000
        os.utime(folder, ns=(past, past))  # as if signed a while ago
        newest = cpt.own_store(vsh.home.root).paths()[-1]
        assert me.checkpoint_for(SCHOOL, record(3)) == first.note
        newest.write_text("rewritten in place: the folder's times do not change\n")
        remembered = me.checkpoint_for(SCHOOL, record(3))
        later = transparency.make_checkpoint(me)
        assert me.checkpoint_for(SCHOOL, record(3)) == later.note, "a new note changes the folder"
    assert remembered == first.note, "the folder did not change: the note was not read again"
