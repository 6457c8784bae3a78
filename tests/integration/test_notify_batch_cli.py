"""`laxchange notify-batch` as council IT runs it: a JSON Lines file of placements, some of them bad.

The homes of tests/integration/test_notify_cli.py (placing VSH, host virtual school, school, drop
folders on the local-folder transport).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from laxchange import samples
from laxchange.ledger.db import Ledger
from tests.integration.test_notify_cli import _homes, lax

PURPOSE = "statutory duty: new placement"


def _child(rec: dict[str, Any], seed: int) -> dict[str, Any]:
    out = copy.deepcopy(rec)
    out["record_id"] = samples.education_record(seed)["record_id"]
    return out


def _line(record: dict[str, Any] | None = None, **kw: Any) -> str:
    obj = {"reason": "new-placement", "purpose": PURPOSE, **kw}
    if record is not None:
        obj["record"] = record
    return json.dumps(obj)


def _queued(home: Path) -> list[str]:
    with Ledger(home / "ledger.sqlite3") as ledger:
        return sorted(t.transfer_id for t in ledger.transfers(direction="out", state="queued"))


def test_notify_batch_queues_the_good_lines_and_names_each_bad_one(tmp_path: Path) -> None:
    rec, homes, parties, record_path = _homes(tmp_path)
    both = [parties["host"], parties["school"]]
    lines = [
        _line(_child(rec, 71), to=both),
        "{not json",
        _line(_child(rec, 72), to="URN:900001"),                 # not the record's school
        _line(record_file=record_path.name, to=parties["school"]),
        _line(_child(rec, 71), to=both),                          # line 1 again
        "",
        _line(_child(rec, 73), to=parties["school"], attach=["pep.pdf"]),
    ]
    batch = tmp_path / "placements.jsonl"
    batch.write_text("\n".join(lines) + "\n")
    r = lax(homes["vsh"], "notify-batch", str(batch), "--queue-only")
    assert r.exit_code == 1, r.output  # the first refused line (2) is invalid data
    out = r.output
    assert "line 2: not valid JSON" in out and "(json.syntax)" in out
    assert "line 3: URN:900001 is not the record's placement school" in out and "notify.misdirected" in out
    assert "line 5: record" in out and "on line 1 of this batch already" in out and "notify.duplicate" in out
    assert "line 7: unknown key 'attach'" in out and "notify.batch-line" in out
    assert "2 of 6 placements queued (3 packages)" in out
    assert "correct the refused lines and submit only those again" in out
    assert out.count("not valid JSON") == 1, "each refused line is said once, the first not again at the end"
    assert "4 of 6 placements refused (lines 2, 3, 5, 7, each named above)" in out
    assert out.count("hint:") >= 2, "each refused line's hint is shown with it"
    assert "Traceback" not in out
    outbox = sorted(p.name[:-4] for p in (homes["vsh"] / "outbox").iterdir())
    assert outbox == _queued(homes["vsh"]) and len(outbox) == 3
    # nothing was sent (--queue-only); the nightly run sends exactly what was queued
    assert not any(list((tmp_path / "drops" / slug).iterdir()) for slug in ("host", "school"))
    r = lax(homes["vsh"], "run")
    sent = sorted(p.name[:-4] for slug in ("host", "school") for p in (tmp_path / "drops" / slug).iterdir())
    assert sent == outbox, r.output


def test_notify_batch_json_reports_every_line_and_sends(tmp_path: Path) -> None:
    rec, homes, parties, _record = _homes(tmp_path)
    batch = tmp_path / "placements.jsonl"
    batch.write_text("\n".join([_line(_child(rec, 81), to=[parties["school"]]),
                                _line(_child(rec, 82), to=[parties["host"], parties["school"]],
                                      respond_by="2026-12-10")]) + "\n")
    r = lax(homes["vsh"], "--json", "notify-batch", str(batch))
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert (out["placements"], out["queued"], out["refused"], out["packages"]) == (2, 2, 0, 3)
    assert [i["line"] for i in out["items"]] == [1, 2]
    states = [p["state"] for i in out["items"] for p in i["packages"]]
    assert states == ["sent", "sent", "sent"]
    assert len(list((tmp_path / "drops" / "school").iterdir())) == 2
    assert len(list((tmp_path / "drops" / "host").iterdir())) == 1
    assert _queued(homes["vsh"]) == []


def test_notify_batch_json_with_a_refused_line_exits_with_its_code(tmp_path: Path) -> None:
    rec, homes, parties, _record = _homes(tmp_path)
    batch = tmp_path / "placements.jsonl"
    batch.write_text("\n".join([_line(_child(rec, 91), to=[parties["school"]]),
                                _line(_child(rec, 91), to=[parties["school"]])]) + "\n")
    r = lax(homes["vsh"], "--json", "notify-batch", "--queue-only", str(batch))
    assert r.exit_code == 2, r.output  # notify.duplicate is a usage error
    out = json.loads(r.output)
    assert out["ok"] is False and out["error"]["error"] == "notify.duplicate"
    assert out["items"][1]["error"]["details"]["line"] == 2 and out["items"][0]["packages"][0]["state"] == "queued"
    assert len(_queued(homes["vsh"])) == 1


def test_notify_batch_with_jobs_packs_in_worker_processes_and_sends_the_same(tmp_path: Path) -> None:
    """`--jobs 2` as council IT would run a night's export: every good line queued and sent, the
    bad one named by its line, as in one process."""
    rec, homes, parties, _record = _homes(tmp_path)
    lines = [_line(_child(rec, 200 + k), to=[parties["school"]]) for k in range(90)]
    lines[40] = "{not json"
    batch = tmp_path / "placements.jsonl"
    batch.write_text("\n".join(lines) + "\n")
    r = lax(homes["vsh"], "--json", "notify-batch", str(batch), "--jobs", "2")
    assert r.exit_code == 1, r.output
    out = json.loads(r.output)
    assert (out["placements"], out["queued"], out["refused"], out["packages"]) == (90, 89, 1, 89)
    assert [i["line"] for i in out["items"]] == list(range(1, 91))
    assert out["error"]["error"] == "json.syntax" and out["items"][40]["error"]["error"] == "json.syntax"
    assert all(p["state"] == "sent" for i in out["items"] for p in i["packages"])
    assert len(list((tmp_path / "drops" / "school").iterdir())) == 89
    bad = lax(homes["vsh"], "notify-batch", str(batch), "--jobs", "0")
    assert bad.exit_code == 2 and "--jobs" in bad.output


def test_a_batch_with_every_line_refused_says_none_is_queued_and_lists_at_most_20_lines(tmp_path: Path) -> None:
    """A systematic error (every line): the last line says none is queued, not "the others", names the
    first 20 lines and counts the rest; with -q every refused line is still shown (they are errors)."""
    _rec, homes, _parties, _record = _homes(tmp_path)
    batch = tmp_path / "placements.jsonl"
    batch.write_text("\n".join("{not json" for _ in range(25)) + "\n")
    r = lax(homes["vsh"], "notify-batch", str(batch), "--queue-only", "-q")
    assert r.exit_code == 1, r.output
    out = r.output
    assert out.count("not valid JSON") == 25, "each refused line, with -q too"
    last = [line for line in out.splitlines() if "placements refused" in line]
    assert len(last) == 1
    assert "25 of 25 placements refused (lines 1, 2, 3," in last[0] and "20 and 5 more, each named above)" in last[0]
    assert last[0].endswith("none is queued") and "the others" not in out
    assert "hint: correct the refused lines and submit only those again" in out
    assert not (homes["vsh"] / "ledger.sqlite3").exists() or _queued(homes["vsh"]) == []
