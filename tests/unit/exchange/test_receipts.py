"""Two-stage receipts (receipt 1.1.0): delivered, then applied; a 1.0.0 receipt still reads as delivered."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from laxchange._util import timefmt
from laxchange.exchange import Party
from laxchange.models import messages
from laxchange.models.migrations import REGISTRY
from laxchange.transport import RetryPolicy, Runner, StaticEndpoints
from laxchange.validate import validate_document
from tests.support.parties import T0, make_party, record


def _party(p: Any) -> Party:
    def no_transport(_endpoint: Any) -> Any:
        raise AssertionError("these tests do not transfer")

    return Party(home=p.home, keystore=p.store, directory=p.directory, clock=p.clock,
                 transports=Runner(StaticEndpoints(), no_transport, RetryPolicy()))


def _receipt(transfer_id: str, payload_sha256: str, **extra: Any) -> dict[str, Any]:
    stamp = timefmt.fmt(T0)
    return {"schema": messages.RECEIPT_ID, "in_reply_to": transfer_id, "payload_sha256": payload_sha256,
            "status": "accepted", "received_at": stamp, "processed_at": stamp, **extra}


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Party, Party]:
    a = make_party(tmp_path, "LA:919", "Example Council")
    b = make_party(tmp_path, "URN:123456", "Example School", a.clock)
    a.trust(b)
    b.trust(a)
    return _party(a), _party(b)


def _send_pep(a: Party, b: Party, tmp: Path) -> tuple[str, str]:
    out = tmp / "pep.lax"
    m = a.pack(record(3), message_type="pep-transfer", recipient="URN:123456", out=out).manifest
    b.open(out, out=tmp / "pep.json")
    return m.transfer_id, m.payload_sha256


def _reply(b: Party, a: Party, doc: dict[str, Any], tmp: Path, name: str) -> None:
    out = tmp / f"{name}.lax"
    b.pack(doc, message_type="receipt", recipient="LA:919", out=out)
    a.open(out, out=tmp / f"{name}.json")


def test_delivered_then_applied(pair: tuple[Party, Party], tmp_path: Path) -> None:
    a, b = pair
    tid, digest = _send_pep(a, b, tmp_path)
    _reply(b, a, _receipt(tid, digest, stage="delivered"), tmp_path, "r1")
    assert a.ledger.get(tid, "out", "URN:123456").state == "delivered"  # type: ignore[union-attr]
    _reply(b, a, _receipt(tid, digest, stage="applied"), tmp_path, "r2")
    assert a.ledger.get(tid, "out", "URN:123456").state == "applied"  # type: ignore[union-attr]
    events = [e["event"] for e in a.ledger.audit_entries()]
    assert events.count("out.delivered") == 1 and events.count("out.applied") == 1


def test_a_receipt_without_stage_is_the_delivered_one(pair: tuple[Party, Party], tmp_path: Path) -> None:
    a, b = pair
    tid, digest = _send_pep(a, b, tmp_path)
    _reply(b, a, _receipt(tid, digest), tmp_path, "r1")
    assert a.ledger.get(tid, "out", "URN:123456").state == "delivered"  # type: ignore[union-attr]


def test_a_1_0_0_receipt_still_validates_and_is_delivered(pair: tuple[Party, Party], tmp_path: Path) -> None:
    a, b = pair
    tid, digest = _send_pep(a, b, tmp_path)
    old = _receipt(tid, digest, schema="https://laxchange.example/schemas/receipt/1.0.0")
    assert validate_document(old).ok
    _reply(b, a, old, tmp_path, "r1")
    assert a.ledger.get(tid, "out", "URN:123456").state == "delivered"  # type: ignore[union-attr]


def test_stage_is_not_allowed_in_a_1_0_0_receipt() -> None:
    """Released 1.0.0 is closed: the new field exists only from 1.1.0 on."""
    doc = _receipt("0" * 32, "0" * 64, stage="applied", schema="https://laxchange.example/schemas/receipt/1.0.0")
    assert not validate_document(doc).ok


def test_an_applied_rejection_is_refused() -> None:
    report = validate_document(_receipt("0" * 32, "0" * 64, stage="applied", status="rejected", reason_code="x.y"))
    assert [f.rule for f in report.errors] == ["receipt.stage-status"]


def test_a_1_0_0_receipt_migrates_to_1_1_0() -> None:
    old = _receipt("0" * 32, "0" * 64, schema="https://laxchange.example/schemas/receipt/1.0.0")
    new = REGISTRY.upgrade(copy.deepcopy(old), "1.1.0")
    assert new["schema"] == "https://laxchange.example/schemas/receipt/1.1.0" and validate_document(new).ok
    newest = REGISTRY.upgrade(copy.deepcopy(old))
    assert newest["schema"] == messages.RECEIPT_ID and validate_document(newest).ok
