"""A partner on an older laxchange (docs/format.md §4.1, §8.2): this release writes only what the
partner's card says it reads, so each older release opens what we send, and we open what it sends.

The older releases run as they were, from their own source (`git archive` of the commit) in a
subprocess, driven through their CLI as council IT would: `init`, `keys export-card`, `partners
add`, `pack`, `open`. Two of them matter:
- 7217943 (main before this change): reads receipt 1.2.0, but not `policy.reads` on a card and not
  a statement carrying `checkpoint` (it refuses any unknown statement member);
- 184619c (before receipt 1.2.0): reads receipts up to 1.1.0 only.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from laxchange import package
from laxchange.clock import FixedClock
from laxchange.exchange import Party
from laxchange.exchange.receipts import build_receipt, receipt_version_for
from laxchange.exchange.transparency import make_checkpoint
from laxchange.ledger import checkpoint as cpt
from tests.support.parties import PASSPHRASE, REPO, make_party, passphrase, record
from tests.support.parties import Party as SupportParty

BEFORE_NEGOTIATION = "7217943"
BEFORE_RECEIPT_1_2 = "184619c"
NEW, OLD = "LA:919", "URN:123456"


def _source(commit: str, dest: Path) -> Path:
    """laxchange's source as of `commit` (its package and schemas), unpacked under `dest`."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the older releases' source is not at hand")
    r = subprocess.run(["git", "-C", str(REPO), "archive", commit, "laxchange", "schemas"], capture_output=True,
                       timeout=120, check=False)
    assert r.returncode == 0, f"commit {commit} is not in this clone (fetch the full history): {r.stderr!r}"
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as tar:
        tar.extractall(dest, filter="tar")
    return dest


class Older:
    """A home run by an older release's CLI."""

    def __init__(self, src: Path, home: Path) -> None:
        self.src, self.home = src, home

    def lax(self, *args: str, code: int | None = 0) -> dict[str, Any]:
        env = {**os.environ, "PYTHONPATH": str(self.src), "LAXCHANGE_PASSPHRASE": PASSPHRASE.decode()}
        env.pop("LAXCHANGE_SCHEMA_DIR", None)
        r = subprocess.run([sys.executable, "-m", "laxchange", "--home", str(self.home), "--json", *args],
                           capture_output=True, text=True, env=env, timeout=180, check=False, cwd=self.src)
        if code is not None:
            assert r.returncode == code, (args, r.returncode, r.stdout, r.stderr)
        out: dict[str, Any] = json.loads(r.stdout) if r.stdout.strip() else {}
        out["exit_code"] = r.returncode
        return out


def _pair(tmp_path: Path, commit: str) -> tuple[Older, SupportParty]:
    """An older school (its own CLI) and a new council, each holding the other's card."""
    old = Older(_source(commit, tmp_path / "old-src"), tmp_path / "old-home")
    assert Path(old.src / "laxchange" / "__init__.py").is_file()
    clock = FixedClock(dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=1))
    new = make_party(tmp_path, NEW, "New Council (fictional)", clock)
    old.lax("init", "--party", OLD, "--name", "Older School (fictional)", "--kdf-work-factor", "10")
    clock.advance(minutes=2)  # the older school's keys (made on the real clock) are valid from now on
    card, fpr = new.card()
    assert "reads" in json.loads(base64.b64decode(card["payload"]))["policy"]
    (tmp_path / "new-card.json").write_text(json.dumps(card))
    added = old.lax("partners", "add", str(tmp_path / "new-card.json"), "--fingerprint", fpr)
    assert added["outcome"] == "added", "an older release takes a card that says what it reads"
    exported = old.lax("keys", "export-card", "-o", str(tmp_path / "old-card.json"))
    new.directory.add(json.loads((tmp_path / "old-card.json").read_text()), fingerprint=exported["fingerprint"])
    assert new.directory.get(OLD).reads is None, "an older card says nothing"
    return old, new


def _me(p: SupportParty) -> Party:
    return Party.from_home(p.home, passphrase=passphrase, clock=p.clock, keystore=p.store, directory=p.directory)


def _receipt_for(new: SupportParty, in_reply_to: str, sha: str) -> dict[str, Any]:
    now = new.clock.now()
    with _me(new) as me:
        note = make_checkpoint(me).note
        return build_receipt(in_reply_to=in_reply_to, payload_sha256=sha, received_at=now, processed_at=now,
                             checkpoint=note, version=receipt_version_for(new.directory.get(OLD)))


@pytest.mark.parametrize("commit", [BEFORE_NEGOTIATION, BEFORE_RECEIPT_1_2])
def test_new_to_older_partner_and_back(tmp_path: Path, commit: str) -> None:
    old, new = _pair(tmp_path, commit)
    with _me(new) as me:
        make_checkpoint(me)  # we have a checkpoint to carry ...
        me.pack(record(3), message_type="pep-transfer", recipient=OLD, out=tmp_path / "pep.lax")
    opened = old.lax("open", str(tmp_path / "pep.lax"), "-o", str(tmp_path / "pep.json"))
    assert opened["schema"].startswith("pep-transfer@"), "... and leave it out for a partner that would refuse it"

    # what the older release does with a statement carrying one: refuses it (why we ask its card first)
    own = cpt.own_store(new.home.root).paths()[-1].read_text()
    (tmp_path / "with.lax").write_bytes(new.pack(record(3), OLD, checkpoint=own))
    refused = old.lax("open", str(tmp_path / "with.lax"), "-o", str(tmp_path / "with.json"), code=None)
    assert (refused["exit_code"], refused["error"]) == (1, "statement.malformed")

    # our receipt to it: the version its card allows (1.1.0, no checkpoint), which it opens
    receipt = _receipt_for(new, opened["manifest"]["transfer_id"], opened["manifest"]["payload_sha256"])
    assert receipt["schema"].endswith("/receipt/1.1.0") and "checkpoint" not in receipt
    with _me(new) as me:
        me.pack(receipt, message_type="receipt", recipient=OLD, out=tmp_path / "receipt.lax")
    assert old.lax("open", str(tmp_path / "receipt.lax"), "-o", str(tmp_path / "receipt.json"))["schema"] == \
        "receipt@1.1.0"

    # and back: the older release packs a PEP and a receipt of its own, which we open
    (tmp_path / "theirs.json").write_text(json.dumps(record(4)))
    old.lax("pack", str(tmp_path / "theirs.json"), "--type", "pep-transfer", "--to", NEW,
            "-o", str(tmp_path / "theirs.lax"))
    with _me(new) as me:
        got = me.open(tmp_path / "theirs.lax", out=tmp_path / "theirs-opened.json")
    assert got.schema.startswith("pep-transfer@") and got.checkpoint is None and got.warnings == []
    version = "1.2.0" if commit == BEFORE_NEGOTIATION else "1.1.0"
    theirs = {"schema": f"https://laxchange.example/schemas/receipt/{version}", "in_reply_to": "0" * 32,
              "payload_sha256": "1" * 64, "status": "accepted", "stage": "delivered",
              "received_at": new.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")}
    (tmp_path / "their-receipt.json").write_text(json.dumps(theirs))
    old.lax("pack", str(tmp_path / "their-receipt.json"), "--type", "receipt", "--to", NEW,
            "-o", str(tmp_path / "their-receipt.lax"))
    with _me(new) as me:
        assert me.open(tmp_path / "their-receipt.lax", out=tmp_path / "their-receipt-opened.json").schema == \
            f"receipt@{version}"


def test_a_release_before_receipt_1_2_refuses_one_which_is_why_we_fall_back(tmp_path: Path) -> None:
    old, new = _pair(tmp_path, BEFORE_RECEIPT_1_2)
    now = new.clock.now()
    with _me(new) as me:
        note = make_checkpoint(me).note
        me.pack(build_receipt(in_reply_to="0" * 32, payload_sha256="1" * 64, received_at=now, processed_at=now,
                              checkpoint=note), message_type="receipt", recipient=OLD, out=tmp_path / "r.lax")
    r = old.lax("open", str(tmp_path / "r.lax"), "-o", str(tmp_path / "r.json"), code=None)
    assert (r["exit_code"], r["error"]) == (1, "record.invalid") and "reads receipt up to 1.1.0" in r["message"], r


def test_our_statement_member_only_goes_to_a_partner_whose_card_reads_it(tmp_path: Path) -> None:
    """The same older school after it updates to this release and sends its new card: now it gets
    the checkpoint (this release reads it), and `audit held` hands it back."""
    old, new = _pair(tmp_path, BEFORE_NEGOTIATION)
    updated = Older(REPO, old.home)  # the school's home, now run by this release
    exported = updated.lax("keys", "export-card", "-o", str(tmp_path / "updated-card.json"))
    assert new.directory.add(json.loads((tmp_path / "updated-card.json").read_text()))[1] == "updated"
    assert new.directory.get(OLD).reads_format(package.CHECKPOINT_FORMAT) and exported["fingerprint"]
    with _me(new) as me:
        note = make_checkpoint(me).note
        me.pack(record(3), message_type="pep-transfer", recipient=OLD, out=tmp_path / "pep.lax")
    updated.lax("open", str(tmp_path / "pep.lax"), "-o", str(tmp_path / "pep.json"))
    updated.lax("audit", "held", NEW, "-o", str(tmp_path / "held.note"))
    assert (tmp_path / "held.note").read_text() == note
