"""The transparency audit log: signed checkpoints of our audit log, their verification, inclusion
proofs and the export for a data protection officer (docs/ledger.md).

A checkpoint (`laxchange.ledger.checkpoint`) is made on demand and after every nightly run and
kept under HOME/checkpoints/own/. `verify` checks the hash chain, rebuilds the Merkle tree and
holds every checkpoint we have of our own log against it — our own, those partners sent back,
and any file given — so entries cut off the end (the tree is now smaller than a checkpoint
says) or rewritten (the tree at a checkpoint's size has another root) are found.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import csv
import datetime as dt
import hashlib
import io
import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from laxchange import dsse
from laxchange._util import jsonio, timefmt
from laxchange.errors import LaxError, SecurityError, UsageError
from laxchange.exchange.party import Party
from laxchange.ledger import checkpoint as cpt
from laxchange.ledger import merkle
from laxchange.ledger.db import Ledger, entry_hash
from laxchange.trust.keystore import SIGNING, KeySet

#: The `format` member of a proof document (`audit prove`)
PROOF_FORMAT = "laxchange-inclusion-proof/1"
#: The CSV columns of `audit export` (data is the entry's own JSON text: ids, states, hashes, no personal data)
EXPORT_COLUMNS = ("seq", "at", "event", "party", "transfer_id", "message_type", "record_ref", "data", "hash")


def own_store(party: Party) -> cpt.CheckpointStore:
    return cpt.own_store(party.home.root)


def partner_store(party: Party, who: str) -> cpt.CheckpointStore:
    return cpt.partner_store(party.home.root, who)


def _ed25519_publics(keys: KeySet) -> list[bytes]:
    """Every Ed25519 signing key of a keyring or card, current or not: an old checkpoint stays
    verifiable after a rotation."""
    return keys.signing_publics(dsse.ED25519)


def _unrevoked_ed25519_publics(keys: KeySet) -> list[bytes]:
    """`_ed25519_publics` but those revoked: what may vouch for the tree we sign over next
    (`_resume_tree`). A key revoked may have been stolen, and whoever holds it can sign a
    checkpoint of any tree in our name; its old checkpoints still verify (`verify`), but our next
    one is then made from the whole log."""
    return [k.public_bytes() for k in keys.keys
            if k.use == SIGNING and k.alg == dsse.ED25519 and k.revoked_at is None]


@dataclass(frozen=True)
class Made:
    """A checkpoint `make_checkpoint` signed and kept."""

    note: str
    size: int
    root: bytes
    path: Path

    def to_dict(self) -> dict[str, Any]:
        return {"note": self.note, "size": self.size, "root": base64.b64encode(self.root).decode(),
                "path": str(self.path)}


def make_checkpoint(party: Party) -> Made:
    """Sign a checkpoint of our audit log as it is now with our Ed25519 key, and keep it."""
    ring = party.keystore.ring()
    signer = next((s for s in party.keystore.signers() if s.alg == dsse.ED25519), None)
    info = ring.find_key(signer.keyid) if signer is not None else None
    if signer is None or info is None:
        raise SecurityError(f"{ring.party} has no Ed25519 signing key to sign a checkpoint with",
                            code="checkpoint.no-key", hint="run `laxchange keys rotate` to make new keys")
    frontier, seq = _resume_tree(party, _unrevoked_ed25519_publics(ring)) or ([], 0)
    new = party.ledger.audit_hashes(after=seq)
    for _, h in new:
        merkle.push(frontier, merkle.leaf_hash(bytes.fromhex(h)))
    size = merkle.frontier_size(frontier) or 0
    cp = cpt.Checkpoint(cpt.origin_for(ring.party), size, merkle.frontier_root(frontier))
    note = cpt.sign_note(cp.text(), cp.origin, signer, info.public_bytes())
    path = own_store(party).add(note, cp.size)
    if new:
        _keep_tree(party, frontier, *new[-1])
    return Made(note, cp.size, cp.root, path)


#: Beside our own checkpoints: the tree of our log at the newest we signed (`_keep_tree`).
TREE_STATE = "tree.json"


def _keep_tree(party: Party, frontier: merkle.Frontier, seq: int, entry_hash_hex: str) -> None:
    """Keep the tree we just signed the head of, ending at audit entry `seq`, so the next
    checkpoint hashes only the entries written since (a national council's log grows by several
    entries a record, every night, for years). A file that cannot be written costs only that."""
    state = {"size": merkle.frontier_size(frontier), "seq": seq, "hash": entry_hash_hex,
             "frontier": [[height, base64.b64encode(h).decode()] for height, h in frontier]}
    with contextlib.suppress(OSError):
        jsonio.write_atomic(own_store(party).folder / TREE_STATE, jsonio.dumps_pretty(state).encode())


def _resume_tree(party: Party, publics: Sequence[bytes]) -> tuple[merkle.Frontier, int] | None:
    """The tree `_keep_tree` kept, and the audit entry it ends at, only if it is the one we signed:
    its head is the root of a checkpoint of that size signed by one of our keys not revoked
    (`publics`), and the entry it ends at is still in the log with the same chain hash and is its
    `size`th. Else None, and the caller hashes the whole log.

    So the state file cannot make us sign a tree we did not: changed, it matches no checkpoint we
    signed. Entries changed before its end are not hashed again here; the next checkpoint extends
    the tree we signed, not the changed log, and `audit verify` (which always hashes the whole log)
    reports the change against it and against every checkpoint since. Entries removed before its
    end leave it fewer than `size` entries: the whole log is hashed, as without the file (which
    whoever removed them could delete too), and `audit verify` reports the cut chain."""
    try:
        state = jsonio.load_file(own_store(party).folder / TREE_STATE)
        size, seq, anchor, raw = state["size"], state["seq"], state["hash"], state["frontier"]
        frontier = [(int(height), base64.b64decode(h, validate=True)) for height, h in raw]
    except (OSError, LaxError, KeyError, TypeError, ValueError, binascii.Error):
        return None
    if type(size) is not int or type(seq) is not int or not isinstance(anchor, str) \
            or merkle.frontier_size(frontier) != size:
        return None
    root = merkle.frontier_root(frontier)
    ring = party.keystore.ring()
    signed = False
    for path in own_store(party).paths(size=size):
        with contextlib.suppress(OSError, cpt.CheckpointMalformed, cpt.CheckpointUnverified):
            if cpt.read_checkpoint(path.read_bytes(), publics, ring.party).root == root:
                signed = True
                break
    # The entry it ends at is no part of what we signed: it must be the tree's last leaf, else the
    # entries after the real end (or some before it) would be skipped (or hashed twice).
    if not signed or party.ledger.audit_hash(seq) != anchor or party.ledger.audit_count(seq) != size:
        return None
    return frontier, seq


#: What an operator may give as the reference of an acknowledgement (`acknowledge`): a ticket or
#: incident number with at least one digit, never a sentence or a name (the audit log holds no
#: personal data)
ACK_REF = re.compile(r"(?=[^0-9]*[0-9])[A-Za-z0-9][A-Za-z0-9._/#:-]{0,63}")


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    #: For a problem with a partner's checkpoint evidence: the partner and the kept file (relative
    #: to its folder under HOME/checkpoints/partners/) that an operator acknowledges to dismiss it
    evidence: tuple[str, str] | None = None
    #: Another kept file the problem rests on (a fork's earlier checkpoint): acknowledged with it
    earlier: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.evidence is not None:
            d["party"], d["kept"] = self.evidence
        return d


@dataclass
class Verification:
    """What `verify` found; `problems` empty means every check passed."""

    entries: int
    root: bytes
    checked: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: Partners' checkpoint evidence an operator acknowledged (`acknowledge`): still kept and
    #: listed, no longer a problem; each the problem's dict plus the acknowledgement's `ref` and `at`
    acknowledged: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"entries": self.entries, "root": base64.b64encode(self.root).decode(), "checked": self.checked,
                "problems": [p.to_dict() for p in self.problems], "acknowledged": self.acknowledged}


def _against_tree(cp: cpt.Checkpoint, leaves: Sequence[bytes], roots: dict[int, bytes], source: str) -> Problem | None:
    """Is the checkpoint's tree a prefix of the log we hold now? (`roots`: the log's prefix roots.)

    Equal roots at its size is exactly what a consistency proof from it to the log as it is now
    would show a partner holding only the two heads (RFC 6962 §2.1.2); `prove` and the tests
    make and check such proofs, here the log itself is at hand."""
    n = len(leaves)
    if cp.size > n:
        return Problem(code="audit.truncated",
                       message=f"{source} records {cp.size} audit entries, but the log holds {n}: "
                               f"the newest {cp.size - n} were removed")
    if roots[cp.size] != cp.root:
        return Problem(code="audit.rewritten",
                       message=f"{source}: the log's first {cp.size} entries are not the ones it signed "
                               "(entries were changed, removed or replaced)")
    return None


def verify(party: Party, presented: Sequence[tuple[str, bytes]] = ()) -> Verification:
    """Check the chain, the tree and every checkpoint of our log we hold or are given.

    `presented` are (source name, note bytes) of checkpoints of our log from elsewhere, e.g. the
    one a partner holds (`audit verify --checkpoint FILE`). A presented note that is malformed or
    not signed by us raises (it proves nothing either way); a stored one is reported."""
    ledger = party.ledger
    ring = party.keystore.ring()
    publics = _ed25519_publics(ring)
    leaves = ledger.audit_leaves()
    out = Verification(len(leaves), merkle.root(leaves))
    out.problems += [Problem(code="audit.broken", message=p) for p in ledger.verify_audit()]
    signed: list[tuple[str, cpt.Checkpoint]] = []
    for path in own_store(party).paths():
        source = f"checkpoint {path.name}"
        try:
            signed.append((source, cpt.read_checkpoint(path.read_bytes(), publics, ring.party, source=source)))
        except (cpt.CheckpointMalformed, cpt.CheckpointUnverified) as e:
            out.problems.append(Problem(e.code, str(e)))
    given = [(source, cpt.read_checkpoint(data, publics, ring.party, source=source)) for source, data in presented]
    roots = merkle.prefix_roots(leaves, [cp.size for _, cp in signed + given if cp.size <= len(leaves)])
    for source, cp in signed:
        _record(out, cp, leaves, roots, source)
    # by size, not by file order: two commands signing at once may keep theirs in either order. Each
    # one the log still holds matches it, so any two of those are consistent; what remains is a fork
    # beyond the log's end or a second root at one size.
    ordered = sorted(signed, key=lambda sc: sc[1].size)
    for (_, old), (source, new) in itertools.pairwise(ordered):
        if new.size == old.size and new.root != old.root:
            out.problems.append(Problem(code="audit.inconsistent",
                                        message=f"{source} records {new.size} entries like another checkpoint "
                                                "we signed, with another root (we signed two different logs)"))
    for source, cp in given:
        _record(out, cp, leaves, roots, source)
    acks = _acknowledgements(party.ledger)
    for problem in _witnessed(party):
        ack = _acknowledged(party, problem, acks)
        if ack is None:
            out.problems.append(problem)
        else:
            out.acknowledged.append({**problem.to_dict(), "ref": ack["ref"], "at": ack["at"]})
    return out


_AckKey = tuple[str, str, str, str | None, str | None]


def _acknowledgements(ledger: Ledger) -> dict[_AckKey, dict[str, Any]]:
    """The `checkpoint.acknowledged` notes, by what they acknowledged (party, kept file and its
    SHA-256, and for a fork the earlier file and its SHA-256): the latest of each."""
    return {(d["party"], d["kept"], d["sha256"], d.get("earlier"), d.get("earlier_sha256")):
            {"ref": d["ref"], "at": e["at"]}
            for e in ledger.audit_entries(["checkpoint.acknowledged"]) for d in [e["data"]]}


def _ack_data(party: Party, problem: Problem) -> dict[str, Any] | None:
    """What acknowledging `problem` records of its evidence as it is now: each file it rests on and
    that file's SHA-256 (None if one cannot be read)."""
    if problem.evidence is None:
        return None
    who, kept = problem.evidence
    folder = partner_store(party, who).folder
    try:
        data: dict[str, Any] = {"party": who, "kept": kept, "sha256": hashlib.sha256((folder / kept).read_bytes())
                                .hexdigest()}
        if problem.earlier is not None:
            data["earlier"] = problem.earlier
            data["earlier_sha256"] = hashlib.sha256((folder / problem.earlier).read_bytes()).hexdigest()
    except OSError:
        return None
    return data


def _acknowledged(party: Party, problem: Problem, acks: dict[_AckKey, dict[str, Any]]) -> dict[str, Any] | None:
    """The acknowledgement that dismisses `problem`, if one was recorded for its evidence as it is
    now (a file changed after it was acknowledged, either of a fork's two, is a problem again)."""
    data = _ack_data(party, problem) if acks else None
    if data is None:
        return None
    return acks.get((data["party"], data["kept"], data["sha256"], data.get("earlier"), data.get("earlier_sha256")))


def acknowledge(party: Party, who: str, kept: str, ref: str) -> dict[str, Any]:
    """Record in the audit log that an operator dealt with a partner's checkpoint evidence that
    `verify` reports (told the partner, opened a ticket): `audit verify` then lists it as
    acknowledged and passes. The file stays kept, byte for byte; if it changes, or the partner
    sends more evidence, `verify` reports that again. `kept` is the file as `verify` names it
    (`refused/NAME.note`, or the later of two forked checkpoints)."""
    if not ACK_REF.fullmatch(ref):
        raise UsageError(f"{ref!r} is not a reference laxchange keeps: give a ticket or incident number "
                         "(letters, digits and . _ / # : -, at most 64, with a digit), not a description",
                         code="audit.bad-reference",
                         hint="the audit log holds no personal data; write the details in the ticket itself")
    found = _witnessed(party)
    outstanding = [p for p in found if p.evidence == (who, kept)]
    if not outstanding:
        reported = sorted({f"{p.evidence[0]} {p.evidence[1]}" for p in found if p.evidence is not None})
        raise UsageError(f"{who} {kept} is not checkpoint evidence `audit verify` reports"
                         + (f" (it reports: {', '.join(reported)})" if reported else " (it reports none)"),
                         code="audit.no-such-evidence",
                         hint="give the party and the kept file exactly as `laxchange --json audit verify` "
                              "lists them under problems (`party`, `kept`)")
    evidence = _ack_data(party, outstanding[0])
    if evidence is None:
        raise UsageError(f"{who} {kept} could not be read to acknowledge it", code="audit.no-such-evidence",
                         hint="check HOME/checkpoints/partners/ is readable (`laxchange doctor`)")
    data = {**evidence, "ref": ref, "code": outstanding[0].code}
    party.ledger.note("checkpoint.acknowledged", data)
    return data



def _witnessed(party: Party) -> list[Problem]:
    """What the checkpoints partners sent us say about their logs: each still verifies under their
    card, and no two are for the same size with different roots (their log forked: entries changed
    between the two; `checkpoint.forks`). Receipts can arrive in any order (a resent one carries an
    older checkpoint), so sizes alone prove nothing here; a full check needs their log: they run
    `audit verify --checkpoint` with the one we hand back (`held`). A checkpoint a partner signed
    into a package that did not verify was kept as evidence (`refused/`) and is reported too."""
    found: list[Problem] = []
    for who in sorted(held_parties(party)):
        store = partner_store(party, who)
        found += [Problem(code="checkpoint.refused",
                          message=f"{who} sent a checkpoint that did not verify inside a package it signed "
                                  f"(kept as evidence: refused/{path.name})", evidence=(who, f"refused/{path.name}"))
                  for path in store.refused()]
        card = party.directory.get_optional(who)
        if card is None:
            continue  # a partner since removed: its checkpoints stay kept, with nothing to check them by
        good: list[tuple[str, cpt.Checkpoint]] = []
        for path in store.paths():
            source = f"{who}'s checkpoint {path.name}"
            try:
                good.append((path.name, cpt.read_checkpoint(path.read_bytes(), _ed25519_publics(card), who,
                                                            source=source)))
            except (cpt.CheckpointMalformed, cpt.CheckpointUnverified) as e:
                found.append(Problem(code=e.code, message=str(e)))
        for name, earlier, cp in cpt.forks(good):
            found.append(Problem(code="checkpoint.partner-inconsistent",
                                 message=f"{who}'s checkpoint {name} and {earlier} both record {cp.size} entries "
                                         f"with different roots: {who}'s audit log was changed between them",
                                 evidence=(who, name), earlier=earlier))
    return found


def held_parties(party: Party) -> list[str]:
    """The partners whose checkpoints we keep."""
    folder = party.home.root / "checkpoints" / "partners"
    return sorted(d.name.replace("_", ":") for d in folder.iterdir() if d.is_dir()) if folder.is_dir() else []


def held(party: Party, who: str) -> Path | None:
    """The checkpoint of `who`'s log with the most entries that `who` sent us (of those, the last
    kept): the one to hand back so that `who` can check its own log against it (`audit verify
    --checkpoint FILE`). By size, since receipts arrive in any order."""
    paths = partner_store(party, who).paths()
    return max(reversed(paths), key=lambda p: int(p.stem.split("-", 1)[1])) if paths else None


def _record(out: Verification, cp: cpt.Checkpoint, leaves: Sequence[bytes], roots: dict[int, bytes],
            source: str) -> None:
    problem = _against_tree(cp, leaves, roots, source)
    out.checked.append({"source": source, "size": cp.size, "root": base64.b64encode(cp.root).decode(),
                        "ok": problem is None})
    if problem is not None:
        out.problems.append(problem)


def prove(party: Party, seq: int) -> dict[str, Any]:
    """An inclusion proof of audit entry `seq` in a checkpoint signed now (kept like any other):
    a document another party can check with `check_proof` or by hand (docs/ledger.md)."""
    entries = party.ledger.audit_entries()
    index = next((i for i, e in enumerate(entries) if e["seq"] == seq), None)
    if index is None:
        raise UsageError(f"there is no audit entry {seq}", code="audit.no-entry",
                         hint="`laxchange audit list` shows the entries and their numbers")
    made = make_checkpoint(party)
    leaves = party.ledger.audit_leaves()[: made.size]
    e = entries[index]
    entry = {"seq": e["seq"], "at": e["at"], "event": e["event"], "data": _canonical(e["data"]), "prev": e["prev"],
             "hash": e["hash"]}
    return {"format": PROOF_FORMAT, "entry": entry, "leaf_index": index, "tree_size": made.size,
            "proof": [base64.b64encode(p).decode() for p in merkle.inclusion_proof(leaves, index)],
            "checkpoint": made.note}


def _canonical(data: Any) -> str:
    """The entry's data exactly as hashed into the chain (sorted keys, no spaces)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def check_proof(party: Party, doc: Any) -> dict[str, Any]:
    """Verify a proof document from `prove`: its checkpoint's signature under the key of the party
    it names (ours, or a partner's from its card), the entry's hash, and its inclusion."""
    bad = "the proof document is malformed"
    hint = "give the JSON `laxchange audit prove ENTRY --json` printed, unchanged"
    try:
        if doc["format"] != PROOF_FORMAT:
            raise KeyError("format")
        entry, index, size = doc["entry"], int(doc["leaf_index"]), int(doc["tree_size"])
        path = [base64.b64decode(p, validate=True) for p in doc["proof"]]
        note = cpt.parse_note(doc["checkpoint"], source="the proof's checkpoint")
        at, event, data, prev, claimed = (str(entry[k]) for k in ("at", "event", "data", "prev", "hash"))
    except (KeyError, TypeError, ValueError) as e:
        raise cpt.CheckpointMalformed(f"{bad} ({e})", code="audit.proof-malformed", hint=hint) from None
    cp = cpt.parse_checkpoint(note.text, source="the proof's checkpoint")
    who = cp.party
    ring = party.keystore.ring()
    keys: KeySet = ring if who == ring.party else party.directory.get(who)
    cpt.read_checkpoint(doc["checkpoint"], _ed25519_publics(keys), who, source="the proof's checkpoint")
    digest = entry_hash(prev, at, event, data)
    if digest != claimed:
        raise SecurityError("the entry in the proof does not hash to the hash it claims", code="audit.proof-invalid",
                            hint="the entry was altered after the proof was made")
    if size != cp.size or not merkle.verify_inclusion(index, size, merkle.leaf_hash(bytes.fromhex(digest)), path,
                                                      cp.root):
        raise SecurityError(f"the proof does not show the entry in {who}'s signed log of {cp.size} entries",
                            code="audit.proof-invalid", hint="ask the sender for a fresh proof")
    return {"party": who, "seq": entry.get("seq"), "event": event, "at": at, "leaf_index": index,
            "tree_size": cp.size}


def receive_checkpoint(party: Party, who: str, note: str) -> cpt.Checkpoint:
    """Keep a checkpoint of `who`'s log that `who` sent us (as `Party.open` does with one in a receipt)."""
    return party.keep_checkpoint(who, note)


def export(ledger: Ledger, *, start: dt.datetime | None = None, end: dt.datetime | None = None,
           fmt: str = "json") -> str:
    """Audit entries written from `start` to `end` (inclusive), for a data protection officer.

    Entries hold ids, states, schema names and hashes only (docs/ledger.md: no personal data);
    the export adds nothing. Each entry keeps its chain hash so it can be held against a proof."""
    rows = []
    for e in ledger.audit_entries():
        t = timefmt.parse(e["at"])
        if (start is not None and t < start) or (end is not None and t > end):
            continue
        rows.append(e)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(EXPORT_COLUMNS)
        for e in rows:
            d = e["data"]
            w.writerow([e["seq"], e["at"], e["event"], d.get("party", ""), d.get("transfer_id", ""),
                        d.get("message_type", ""), d.get("record_ref", ""), _canonical(d), e["hash"]])
        return buf.getvalue()
    return json.dumps({"from": timefmt.fmt(start) if start else None, "to": timefmt.fmt(end) if end else None,
                       "entries": [{k: e[k] for k in ("seq", "at", "event", "data", "hash")} for e in rows]},
                      indent=2) + "\n"
