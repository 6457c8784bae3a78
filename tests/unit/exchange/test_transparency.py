"""Issue 12 #4: the transparency audit log. Checkpoints of our audit log detect what a hash chain
cannot: the newest entries cut off, or the whole chain recomputed after an edit; inclusion proofs
another party checks; the export for a data protection officer carries no personal data."""

from __future__ import annotations

import base64
import csv
import io
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from laxchange import samples
from laxchange.cli import main
from laxchange.errors import SecurityError
from laxchange.exchange import Party, transparency
from laxchange.exchange.endpoints import ConfigEndpoints
from laxchange.ledger import checkpoint as cpt
from laxchange.ledger import merkle
from laxchange.ledger.db import Ledger, entry_hash
from laxchange.transport import Endpoint
from tests.support.parties import PASSPHRASE, make_party, passphrase
from tests.support.parties import Party as SupportParty

ENV = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode()}


def _me(p: SupportParty) -> Party:
    return Party.from_home(p.home, passphrase=passphrase, clock=p.clock, keystore=p.store, directory=p.directory)


@pytest.fixture
def shared(tmp_path: Path) -> tuple[SupportParty, SupportParty, dict[str, Any]]:
    """A council that sent a PEP to a school, which opened it."""
    rec = samples.education_record(11)
    vsh = make_party(tmp_path, f"LA:{rec['placement']['placing_la']}", "Placing VS")
    school = make_party(tmp_path, f"URN:{rec['school']['urn']}", "School", vsh.clock)
    vsh.trust(school)
    school.trust(vsh)
    (tmp_path / "drop").mkdir()
    ConfigEndpoints(vsh.home).add(Endpoint(school.party, f"file://{tmp_path / 'drop'}"))
    with _me(vsh) as me:
        me.pack(rec, message_type="pep-transfer", recipient=school.party, out=tmp_path / "pep.lax",
                reason="new-placement")
        assert me.send(school.party, [tmp_path / "pep.lax"]).ok
    [arrived] = (tmp_path / "drop").rglob("*.lax")
    with _me(school) as me:
        me.open(arrived, out=tmp_path / "got.json")
    return vsh, school, rec


def lax(p: SupportParty, *args: str) -> Any:
    return CliRunner().invoke(main, ["--home", str(p.home.root), *args], env=ENV)


def _cut(p: SupportParty, keep: int) -> None:
    """What someone with write access to the database does: delete the newest entries."""
    db = sqlite3.connect(p.home.ledger_db)
    db.execute("DELETE FROM audit WHERE seq > ?", (keep,))
    db.commit()
    db.close()


def test_deleting_the_newest_entries_is_detected_against_the_checkpoint_a_partner_holds(
        shared: tuple[SupportParty, SupportParty, dict[str, Any]], tmp_path: Path) -> None:
    vsh, school, _ = shared
    r = lax(vsh, "--json", "audit", "checkpoint")
    assert r.exit_code == 0, r.output
    made = json.loads(r.stdout)
    held = tmp_path / "held-by-the-school.note"
    held.write_text(made["note"])
    with _me(school) as me:  # the school keeps it (as it does one that came in a receipt)
        assert transparency.receive_checkpoint(me, vsh.party, made["note"]).size == made["size"]
    assert lax(vsh, "audit", "verify", "--checkpoint", str(held)).exit_code == 0

    _cut(vsh, made["size"] - 2)
    shutil.rmtree(vsh.home.root / "checkpoints")  # and removes our own copies too
    plain = lax(vsh, "--json", "audit", "verify")
    assert plain.exit_code == 0, "the hash chain alone cannot see a cut-off end"
    r = lax(vsh, "--json", "audit", "verify", "--checkpoint", str(held))
    assert r.exit_code == 3, r.output
    out = json.loads(r.stdout)
    assert out["error"] == "audit.truncated" and "the newest 2 were removed" in out["message"]


def test_a_recomputed_chain_is_caught_by_our_own_stored_checkpoint(
        shared: tuple[SupportParty, SupportParty, dict[str, Any]]) -> None:
    vsh, _, _ = shared
    assert lax(vsh, "audit", "checkpoint").exit_code == 0
    _recompute_with_edit(vsh)
    with Ledger(vsh.home.ledger_db) as ledger:
        assert ledger.verify_audit() == []
    r = lax(vsh, "--json", "audit", "verify")
    assert r.exit_code == 3 and json.loads(r.stdout)["error"] == "audit.rewritten", r.output


def test_a_checkpoint_not_signed_by_us_proves_nothing(
        shared: tuple[SupportParty, SupportParty, dict[str, Any]], tmp_path: Path) -> None:
    vsh, school, _ = shared
    r = lax(school, "--json", "audit", "checkpoint")
    theirs = tmp_path / "school.note"
    theirs.write_text(json.loads(r.stdout)["note"])
    r = lax(vsh, "--json", "audit", "verify", "--checkpoint", str(theirs))
    assert r.exit_code == 3 and json.loads(r.stdout)["error"] == "checkpoint.wrong-origin", r.output
    forged = tmp_path / "forged.note"
    ours = json.loads(lax(vsh, "--json", "audit", "checkpoint").stdout)["note"]
    lines = ours.split("\n")
    lines[1] = str(int(lines[1]) + 5)  # claims a longer log
    forged.write_text("\n".join(lines))
    r = lax(vsh, "--json", "audit", "verify", "--checkpoint", str(forged))
    assert r.exit_code == 3 and json.loads(r.stdout)["error"] == "checkpoint.bad-signature", r.output
    garbage = tmp_path / "garbage.note"
    garbage.write_text("not a note")
    r = lax(vsh, "--json", "audit", "verify", "--checkpoint", str(garbage))
    assert r.exit_code == 1 and json.loads(r.stdout)["error"] == "checkpoint.malformed", r.output


def test_an_inclusion_proof_checks_at_the_partner_and_an_altered_one_does_not(
        shared: tuple[SupportParty, SupportParty, dict[str, Any]], tmp_path: Path) -> None:
    vsh, school, _ = shared
    proof = tmp_path / "proof.json"
    r = lax(vsh, "audit", "prove", "2", "-o", str(proof))
    assert r.exit_code == 0, r.output
    r = lax(school, "--json", "audit", "check-proof", str(proof))
    assert r.exit_code == 0, r.output
    found = json.loads(r.stdout)
    assert (found["party"], found["seq"], found["leaf_index"]) == (vsh.party, 2, 1)
    doc = json.loads(proof.read_text())
    for change in ("event", "index", "path"):
        bad = json.loads(json.dumps(doc))
        if change == "event":
            bad["entry"]["event"] = "out.rejected"
        elif change == "index":
            bad["leaf_index"] = 0
        else:
            bad["proof"][0] = bad["proof"][-1] if len(bad["proof"]) > 1 else bad["proof"][0][::-1]
        path = tmp_path / f"bad-{change}.json"
        path.write_text(json.dumps(bad))
        r = lax(school, "--json", "audit", "check-proof", str(path))
        assert r.exit_code in (1, 3) and json.loads(r.stdout)["error"].startswith(("audit.proof", "checkpoint.")), \
            (change, r.output)
    assert lax(vsh, "--json", "audit", "prove", "999").exit_code == 2


def test_the_export_for_a_data_protection_officer(shared: tuple[SupportParty, SupportParty, dict[str, Any]],
                                                  tmp_path: Path) -> None:
    vsh, _, rec = shared
    r = lax(vsh, "audit", "export", "--format", "csv", "--from", "2000-01-01", "--to", "2999-12-31")
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    with Ledger(vsh.home.ledger_db) as ledger:
        entries = ledger.audit_entries()
    assert [int(x["seq"]) for x in rows] == [e["seq"] for e in entries] and rows
    assert {x["hash"] for x in rows} == {e["hash"] for e in entries}
    r = lax(vsh, "--json", "audit", "export", "--to", "2000-01-01")
    assert r.exit_code == 0 and json.loads(r.stdout)["entries"] == [], r.output
    out = tmp_path / "audit.json"
    assert lax(vsh, "audit", "export", "-o", str(out)).exit_code == 0
    text = out.read_text()
    child = rec["child"]
    for personal in (child["legal_name"]["family"], child["legal_name"]["given"], child["date_of_birth"]):
        assert personal not in text and personal not in rows.__repr__()
    assert lax(vsh, "audit", "export", "-o", str(out)).exit_code == 2, "never replaces a file"
    bad = lax(vsh, "--json", "audit", "export", "--from", "2026-12-01", "--to", "2026-11-01")
    assert bad.exit_code == 2 and "before" in json.loads(bad.stdout)["message"]


def test_partner_checkpoints_are_kept_only_when_their_signature_verifies(
        shared: tuple[SupportParty, SupportParty, dict[str, Any]]) -> None:
    vsh, school, _ = shared
    note = json.loads(lax(vsh, "--json", "audit", "checkpoint").stdout)["note"]
    with _me(school) as me:
        with pytest.raises(SecurityError):
            transparency.receive_checkpoint(me, vsh.party, note.replace("\n", "\n9", 1))  # another size
        transparency.receive_checkpoint(me, vsh.party, note)
        transparency.receive_checkpoint(me, vsh.party, note)
        assert len(transparency.partner_store(me, vsh.party).paths()) == 1
    with pytest.raises(cpt.CheckpointUnverified):
        cpt.read_checkpoint(note, [], vsh.party)


def test_a_checkpoint_signed_after_a_cut_does_not_hide_the_cut(
        shared: tuple[SupportParty, SupportParty, dict[str, Any]]) -> None:
    vsh, _, _ = shared
    first = json.loads(lax(vsh, "--json", "audit", "checkpoint").stdout)
    _cut(vsh, first["size"] - 1)
    assert lax(vsh, "audit", "checkpoint").exit_code == 0  # signs the shorter log: the old file stays
    r = lax(vsh, "--json", "audit", "verify")
    assert r.exit_code == 3, r.output
    out = json.loads(r.stdout)
    assert out["error"] == "audit.truncated"
    assert [p["code"] for p in out["details"]["problems"]] == ["audit.truncated"]
    assert [c["ok"] for c in out["details"]["checked"]] == [False, True]


def _recompute_with_edit(p: SupportParty) -> None:
    """Edit the first entry and recompute the whole chain, so the chain itself still verifies."""
    db = sqlite3.connect(p.home.ledger_db)
    rows = db.execute("SELECT seq, at, event, data FROM audit ORDER BY seq").fetchall()
    prev = "0" * 64
    for i, (seq, at, event, data) in enumerate(rows):
        if i == 0:
            data = data.replace('"party":', '"note":"edited","party":')
        h = entry_hash(prev, at, event, data)
        db.execute("UPDATE audit SET data = ?, prev = ?, hash = ? WHERE seq = ?", (data, prev, h, seq))
        prev = h
    db.commit()
    db.close()


def test_two_checkpoints_we_signed_of_different_logs_of_one_size_are_inconsistent(
        shared: tuple[SupportParty, SupportParty, dict[str, Any]]) -> None:
    vsh, _, _ = shared
    assert lax(vsh, "audit", "checkpoint").exit_code == 0
    _recompute_with_edit(vsh)
    assert lax(vsh, "audit", "checkpoint").exit_code == 0
    out = json.loads(lax(vsh, "--json", "audit", "verify").stdout)
    assert [p["code"] for p in out["details"]["problems"]] == ["audit.rewritten", "audit.inconsistent"]


def test_a_partner_whose_log_forked_is_reported(shared: tuple[SupportParty, SupportParty, dict[str, Any]]) -> None:
    vsh, school, _ = shared
    first = json.loads(lax(school, "--json", "audit", "checkpoint").stdout)["note"]
    _recompute_with_edit(school)
    second = json.loads(lax(school, "--json", "audit", "checkpoint").stdout)["note"]
    with _me(vsh) as me:
        transparency.receive_checkpoint(me, school.party, first)
        assert lax(vsh, "audit", "verify").exit_code == 0
        with pytest.raises(cpt.CheckpointForked, match="changed between them"):  # found as it arrives ...
            transparency.receive_checkpoint(me, school.party, second)
        assert [p.read_text() for p in transparency.partner_store(me, school.party).paths()] == [first, second], \
            "... and kept: two signed heads of one size are the evidence"
    r = lax(vsh, "--json", "audit", "verify")
    assert r.exit_code == 3 and json.loads(r.stdout)["error"] == "checkpoint.partner-inconsistent", r.output


def test_the_checkpoint_handed_back_is_the_largest_not_the_last_to_arrive(
        shared: tuple[SupportParty, SupportParty, dict[str, Any]], tmp_path: Path) -> None:
    vsh, school, _ = shared
    small = json.loads(lax(school, "--json", "audit", "checkpoint").stdout)
    with _me(school) as me:
        me.ledger.note("in.refused", {"reason": "package.tampered", "sha256": "0" * 64})
    large = json.loads(lax(school, "--json", "audit", "checkpoint").stdout)
    assert large["size"] == small["size"] + 1
    with _me(vsh) as me:  # a resent receipt brings the older checkpoint last
        transparency.receive_checkpoint(me, school.party, large["note"])
        transparency.receive_checkpoint(me, school.party, small["note"])
    out = tmp_path / "back.note"
    r = lax(vsh, "--json", "audit", "held", school.party, "-o", str(out))
    assert r.exit_code == 0 and json.loads(r.stdout)["kept"] == 2, r.output
    assert out.read_text() == large["note"]
    r = lax(vsh, "--json", "audit", "held", "URN:999999")
    assert r.exit_code == 5 and json.loads(r.stdout)["error"] == "checkpoint.none-held", r.output


def test_a_fork_is_reported_each_time_it_comes_though_the_last_kept_note_is_not_checked_twice(
        shared: tuple[SupportParty, SupportParty, dict[str, Any]]) -> None:
    """Every receipt a partner packs in one run carries the same checkpoint: the party keeps it
    once and passes over the same note again (`Party.keep_checkpoint`), but never remembers a fork."""
    vsh, school, _ = shared
    first = json.loads(lax(school, "--json", "audit", "checkpoint").stdout)["note"]
    _recompute_with_edit(school)
    second = json.loads(lax(school, "--json", "audit", "checkpoint").stdout)["note"]
    with _me(vsh) as me:
        cp = transparency.receive_checkpoint(me, school.party, first)
        assert transparency.receive_checkpoint(me, school.party, first) == cp
        store = transparency.partner_store(me, school.party)
        assert [p.read_text() for p in store.paths()] == [first]
        for _ in range(2):
            with pytest.raises(cpt.CheckpointForked, match="changed between them"):
                transparency.receive_checkpoint(me, school.party, second)
        assert transparency.receive_checkpoint(me, school.party, first) == cp
        with pytest.raises(SecurityError):  # a note that does not verify is refused, whatever came before
            transparency.receive_checkpoint(me, school.party, first.replace("\n", "\n9", 1))
        assert [p.read_text() for p in store.paths()][:2] == [first, second]
    r = lax(vsh, "--json", "audit", "verify")
    assert r.exit_code == 3 and json.loads(r.stdout)["error"] == "checkpoint.partner-inconsistent", r.output


def _head(p: SupportParty) -> bytes:
    """The tree head of the log as it is, hashed whole."""
    with Ledger(p.home.ledger_db) as ledger:
        return merkle.root(ledger.audit_leaves())


def test_each_checkpoint_hashes_only_the_entries_since_the_last_and_signs_the_same_head(
        shared: tuple[SupportParty, SupportParty, dict[str, Any]]) -> None:
    """The tree of the newest checkpoint is kept (checkpoints/own/tree.json) and extended by the
    entries written since: the head signed is the one hashing the whole log gives."""
    vsh, _, _ = shared
    state = vsh.home.root / "checkpoints" / "own" / transparency.TREE_STATE
    for n in range(4):
        with _me(vsh) as me:
            for _ in range(n * 3):
                me.ledger.note("in.refused", {"reason": "package.tampered", "sha256": f"{n:064d}"})
            made = transparency.make_checkpoint(me)
            assert made.root == _head(vsh) and made.size == len(me.ledger.audit_leaves()), n
        assert json.loads(state.read_text())["size"] == made.size
    assert lax(vsh, "audit", "verify").exit_code == 0


def test_a_changed_tree_state_is_not_signed_and_a_changed_log_is_not_laundered(
        shared: tuple[SupportParty, SupportParty, dict[str, Any]]) -> None:
    vsh, _, _ = shared
    state = vsh.home.root / "checkpoints" / "own" / transparency.TREE_STATE
    with _me(vsh) as me:
        transparency.make_checkpoint(me)
    kept = json.loads(state.read_text())
    forged = {**kept, "frontier": [[h, base64.b64encode(b"\x07" * 32).decode()] for h, _ in kept["frontier"]]}
    state.write_text(json.dumps(forged))
    with _me(vsh) as me:  # a state matching no checkpoint we signed: the whole log is hashed
        me.ledger.note("in.refused", {"reason": "package.tampered", "sha256": "1" * 64})
        assert transparency.make_checkpoint(me).root == _head(vsh)
    state.write_text("not json")
    with _me(vsh) as me:
        assert transparency.make_checkpoint(me).root == _head(vsh)
    # An entry before the kept tree's end changed (its hash too, not the chain after it): the next
    # checkpoint extends the tree we signed, not the changed log, and `audit verify` reports it.
    with Ledger(vsh.home.ledger_db) as ledger:
        before = ledger.audit_leaves()
    db = sqlite3.connect(vsh.home.ledger_db)
    db.execute("UPDATE audit SET hash = ? WHERE seq = (SELECT MIN(seq) FROM audit)", ("ab" * 32,))
    db.commit()
    db.close()
    with _me(vsh) as me:
        me.ledger.note("in.refused", {"reason": "package.tampered", "sha256": "2" * 64})
        new = me.ledger.audit_leaves()[len(before):]
        made = transparency.make_checkpoint(me)
    assert made.root == merkle.root(before + new) != _head(vsh)
    r = lax(vsh, "--json", "audit", "verify")
    assert r.exit_code == 3 and "audit.rewritten" in [p["code"] for p in json.loads(r.stdout)["details"]["problems"]]


@pytest.mark.parametrize("shift", [3, -1])
def test_a_tree_state_ending_at_another_entry_is_not_signed(
        shared: tuple[SupportParty, SupportParty, dict[str, Any]], shift: int) -> None:
    """The entry a kept tree ends at is not covered by any signature: a state whose frontier is one
    we signed but whose `seq` (with that entry's real chain hash) is moved on would skip the entries
    between, moved back would hash some twice. Either way the log's own head is what gets signed."""
    vsh, _, _ = shared
    state = vsh.home.root / "checkpoints" / "own" / transparency.TREE_STATE
    with _me(vsh) as me:
        transparency.make_checkpoint(me)
        for n in range(4):
            me.ledger.note("in.refused", {"reason": "package.tampered", "sha256": f"{n:064d}"})
        kept = json.loads(state.read_text())
        seq = kept["seq"] + shift
        state.write_text(json.dumps({**kept, "seq": seq, "hash": me.ledger.audit_hash(seq)}))
        made = transparency.make_checkpoint(me)
    assert made.root == _head(vsh) and made.size == len(_leaves(vsh))
    assert lax(vsh, "audit", "verify").exit_code == 0


def _leaves(p: SupportParty) -> list[bytes]:
    with Ledger(p.home.ledger_db) as ledger:
        return ledger.audit_leaves()


def test_a_tree_state_vouched_for_by_a_revoked_key_is_not_signed(
        shared: tuple[SupportParty, SupportParty, dict[str, Any]]) -> None:
    """Whoever holds a signing key we revoked (compromised) can sign a checkpoint of any tree in
    our name; with it and a tree.json of that tree beside it, our next checkpoint, signed by the
    key that replaced it, must still be of our log, not of that tree."""
    vsh, _, _ = shared
    state = vsh.home.root / "checkpoints" / "own" / transparency.TREE_STATE
    with _me(vsh) as me:
        transparency.make_checkpoint(me)
        signer = next(s for s in me.keystore.signers() if s.alg == "ed25519")
        info = me.keystore.ring().find_key(signer.keyid)
        assert info is not None
        kept = json.loads(state.read_text())
        forged = [(h, bytes([7 + h]) * 32) for h, _ in kept["frontier"]]
        origin = cpt.origin_for(me.keystore.ring().party)
        note = cpt.sign_note(cpt.Checkpoint(origin, kept["size"], merkle.frontier_root(forged)).text(), origin,
                             signer, info.public_bytes())
        transparency.own_store(me).add(note, kept["size"])
        state.write_text(json.dumps({**kept, "frontier": [[h, base64.b64encode(x).decode()] for h, x in forged]}))
        me.keystore.rotate()
        me.keystore.revoke(signer.keyid, "key-compromise")
        me.ledger.note("in.refused", {"reason": "package.tampered", "sha256": "3" * 64})
        made = transparency.make_checkpoint(me)
    assert made.root == _head(vsh)
