"""The structured log (laxchange.logs): the documented events are the ones the code logs, with the
fields it passes; the file writes only declared fields of the declared shape; the file is private."""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import stat
from pathlib import Path

import pytest

from laxchange.errors import ConfigError
from laxchange.logs import EVENTS, FIELDS, PARTY_ID_RE, log_event, open_log_file
from laxchange.transport.base import folder_sender, sender_folder
from laxchange.trust.keystore import PARTY_RE
from tests.support import pyast
from tests.support.parties import REPO

DOC = REPO / "docs" / "operations.md"
ROW = re.compile(r"^\| `([a-z.-]+)` \| ([^|]*) \|", re.M)


def _documented() -> dict[str, frozenset[str]]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("\n## Logs\n", 1)[1].split("\n## ", 1)[0]
    return {name: frozenset(re.findall(r"`([a-z0-9_]+)`", fields)) for name, fields in ROW.findall(section)}


def _calls() -> list[tuple[str, str, set[str]]]:
    """(where, event, keyword names) of every log_event call in the package."""
    found = []
    for path in (REPO / "laxchange").rglob("*.py"):
        for node in ast.walk(pyast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "log_event":
                where = f"{path.relative_to(REPO)}:{node.lineno}"
                arg = node.args[1]
                # a literal, or each branch of `"a" if x else "b"`: no event name is computed
                names = [arg.body, arg.orelse] if isinstance(arg, ast.IfExp) else [arg]
                assert all(isinstance(n, ast.Constant) and isinstance(n.value, str) for n in names), \
                    f"{where}: the event is not a literal"
                fields = {k.arg for k in node.keywords if k.arg is not None}
                found += [(where, n.value, fields) for n in names if isinstance(n, ast.Constant)]
    return found


def test_the_documented_events_are_the_registered_ones_with_the_same_fields() -> None:
    assert _documented() == EVENTS


def test_every_log_call_names_a_registered_event_and_only_its_fields() -> None:
    calls = _calls()
    for where, event, fields in calls:
        assert event in EVENTS, f"{where}: {event} is not in laxchange.logs.EVENTS"
        assert fields <= EVENTS[event], f"{where}: {sorted(fields - EVENTS[event])} not declared for {event}"
    assert {e for _, e, _ in calls} == set(EVENTS), "an event nothing logs (remove it from EVENTS and the docs)"


def test_every_declared_field_has_a_shape() -> None:
    assert set().union(*EVENTS.values()) <= set(FIELDS)


def test_party_pattern_is_the_cards_pattern() -> None:
    assert PARTY_ID_RE.pattern == PARTY_RE.pattern


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def logger(tmp_path: Path):  # type: ignore[no-untyped-def]
    handler = open_log_file(tmp_path / "log.jsonl")
    log = logging.getLogger("laxchange.test_logs")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield log
    log.removeHandler(handler)
    handler.close()


def test_only_declared_fields_of_the_declared_shape_are_written(logger: logging.Logger, tmp_path: Path) -> None:
    tid = "ab" * 16
    log_event(logger, "open.imported", transfer_id=tid, party="LA:919", message_type="pep-transfer",
              record_ref="Sorrel Fictional", upn="B206376024878")  # a name where an id goes; an undeclared field
    log_event(logger, "send.failed", logging.WARNING, transfer_id="../2020-09-03", party="URN:123456",
              code="no such code")
    (imported, failed) = _lines(tmp_path / "log.jsonl")
    assert imported == {"ts": imported["ts"], "level": "info", "event": "open.imported", "transfer_id": tid,
                        "party": "LA:919", "message_type": "pep-transfer"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(imported["ts"]))
    assert failed == {"ts": failed["ts"], "level": "warning", "event": "send.failed", "party": "URN:123456"}
    text = (tmp_path / "log.jsonl").read_text()
    assert "Sorrel" not in text and "B206376024878" not in text and "2020-09-03" not in text


def test_records_without_a_registered_event_are_not_written(logger: logging.Logger, tmp_path: Path) -> None:
    logger.warning("child Sorrel Fictional, UPN B206376024878")  # free text, as another library might log
    logger.warning("not.an-event", extra={"laxchange_event": ("not.an-event", {"party": "LA:919"})})
    log_event(logger, "run.stage", stage="housekeeping")
    assert [line["event"] for line in _lines(tmp_path / "log.jsonl")] == ["run.stage"]


def test_the_log_file_is_created_private_and_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path_lines = []
    for n in range(2):
        handler = open_log_file(path)
        log = logging.getLogger(f"laxchange.test_logs.append{n}")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log_event(log, "run.stage", stage="partners")
        log.removeHandler(handler)
        handler.close()
        path_lines.append(len(_lines(path)))
    assert path_lines == [1, 2]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_symlink_or_a_folder_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("not a log\n")
    link = tmp_path / "log.jsonl"
    os.symlink(target, link)
    with pytest.raises(ConfigError) as exc:
        open_log_file(link)
    assert exc.value.code == "log.file" and exc.value.exit_code == 5
    assert target.read_text() == "not a log\n"
    with pytest.raises(ConfigError) as exc:
        open_log_file(tmp_path)
    assert exc.value.code == "log.file"


def test_a_party_id_in_other_unicode_digits_is_no_party_id() -> None:
    """The attack: `LA:９１９` (fullwidth digits) reads as LA:919 to an operator, and \\d took it as
    a party id: in logs, and as the drop folder `LA_９１９` the server confines a sender to."""
    look_alike = "LA:\uff19\uff11\uff19"
    assert PARTY_ID_RE.fullmatch(look_alike) is None and PARTY_ID_RE.fullmatch("LA:919") is not None
    assert folder_sender("LA_\uff19\uff11\uff19") is None and folder_sender("LA_919") == "LA:919"
    with pytest.raises(ValueError):
        sender_folder(look_alike)
