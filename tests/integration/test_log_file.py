"""`--log-file` over a whole exchange, as council IT runs it: ids only, never the child.

Council A and school B in two homes with drop folders on the local-folder transport. A packs a
fictional child's PEP and its nightly run sends it; a tampered package lands in B's drop folder
too; B's run imports the PEP, quarantines the tampered one and sends the receipts; A's next run
applies the delivered receipt and the rejection. Every command appends to one log file: each line must be one
JSON object with only the keys its event declares, and nothing of the record may be in it.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from laxchange.cli import main
from laxchange.logs import EVENTS
from tests.support.parties import PASSPHRASE, make_party, record

ENV = {"LAXCHANGE_PASSPHRASE": PASSPHRASE.decode()}
A, B = "LA:919", "URN:123456"


def _strings(doc: Any) -> list[str]:
    if isinstance(doc, dict):
        return [s for v in doc.values() for s in _strings(v)]
    if isinstance(doc, list):
        return [s for v in doc for s in _strings(v)]
    return [doc] if isinstance(doc, str) else []


def _personal(doc: dict[str, Any]) -> set[str]:
    """What of the record must never be logged: the child's identity, and every name, address,
    e-mail, phone number and sentence in it (any string with a space or an @)."""
    child = doc["record"]["child"]
    found = {child["upn"], child["date_of_birth"], child["local_child_id"], child["legal_name"]["given"],
             child["legal_name"]["family"]}
    return found | {s for s in _strings(doc) if " " in s or "@" in s}


def test_a_whole_exchange_logs_ids_only(tmp_path: Path) -> None:
    log = tmp_path / "siem" / "laxchange.jsonl"
    log.parent.mkdir()
    a = make_party(tmp_path, A, "Example Council (fictional)")
    b = make_party(tmp_path, B, "Example School (fictional)", a.clock)
    a.trust(b)
    b.trust(a)

    def lax(home: Path, *args: str, code: int = 0) -> Result:
        r = CliRunner().invoke(main, ["--home", str(home), "--log-file", str(log), *args], env=ENV)
        assert r.exit_code == code, r.output
        return r

    drops = {A: tmp_path / "drop-a", B: tmp_path / "drop-b"}
    for party, folder in drops.items():
        folder.mkdir()
        for home in (a.home.root, b.home.root):
            lax(home, "endpoints", "add", party, f"file://{folder}")
    doc = record(4)
    src = tmp_path / "Sorrel Fictional PEP.json"
    src.write_text(json.dumps(doc))
    lax(a.home.root, "pack", str(src), "--type", "pep-transfer", "--to", B, "-o", str(a.home.outbox / "pep.lax"))
    lax(a.home.root, "run")
    lax(a.home.root, "pack", str(src), "--type", "pep-transfer", "--to", B, "-o", str(tmp_path / "t.lax"))
    data = bytearray((tmp_path / "t.lax").read_bytes())
    data[-40] ^= 0x01  # in the encrypted payload: the manifest verifies, the payload does not
    (drops[B] / "tampered.lax").write_bytes(bytes(data))
    lax(b.home.root, "run", code=10)  # the tampered package needs a look
    lax(a.home.root, "run", code=10)  # the delivered receipt, and the school's refusal: needs a look

    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    text = log.read_text(encoding="utf-8")
    lines = [json.loads(line) for line in text.splitlines()]
    for line in lines:
        assert line["event"] in EVENTS, line
        assert set(line) <= {"ts", "level", "event", *EVENTS[line["event"]]}, line
        assert line["level"] in ("info", "warning")
    events = [line["event"] for line in lines]
    assert {"pack.queued", "send.sent", "collect.fetched", "open.imported", "open.quarantined", "receipt.sent",
            "receipt.applied", "import.finished", "run.started", "run.finished", "command.started",
            "command.finished"} <= set(events)
    assert events.count("run.stage") == 3 * 5
    quarantined = next(line for line in lines if line["event"] == "open.quarantined")
    assert quarantined["party"] == A and quarantined["code"].startswith("package.")
    imported = next(line for line in lines if line["event"] == "open.imported" and line["party"] == A)
    assert imported["record_ref"] == doc["record"]["record_id"] and imported["message_type"] == "pep-transfer"
    applied = [line for line in lines if line["event"] == "receipt.applied"]
    assert sorted((r["status"], r["result"]) for r in applied) == [("accepted", "applied"), ("rejected", "applied")]
    finished = [line for line in lines if line["event"] == "command.finished" and line["command"] == "run"]
    assert [f["exit_code"] for f in finished] == [0, 10, 10]
    leaked = sorted(s for s in _personal(doc) if s in text)
    assert leaked == [], f"personal data in the log: {leaked}"
    assert "tampered.lax" not in text and "Sorrel" not in text and "fictional" not in text.lower()
