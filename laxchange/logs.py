"""Structured log events for a council's SIEM: every event name, its fields, and the JSON-lines file.

The library logs through the standard `logging` module, each module to its own
`logging.getLogger("laxchange....")`, and only through `log_event`, which carries an event name
from `EVENTS` and its fields in the record's `extra`. Nothing is written anywhere unless a
program adds a handler (the `laxchange` logger has a `NullHandler`, as a library's should);
`laxchange --log-file PATH` adds `open_log_file(PATH)`.

What reaches a log file is decided here, not at the call sites, so personal data cannot slip in:
`EventFilter` passes only records carrying a registered event, and `JsonLineFormatter` writes
`ts`, `level`, `event` and only the fields that event declares, each checked against its shape in
`FIELDS` (a transfer id is 32 hex digits, a party id is `LA:919` or `URN:123456`, a code is a
registered reason code, a count is an integer...). A value of any other shape is dropped, never
written; the log message text is never written. docs/operations.md ("Logs") lists the events,
and tests/unit/test_logs.py checks that list against `EVENTS` and every `log_event` call.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from laxchange.errors import CODES, ConfigError

__all__ = ["EVENTS", "FIELDS", "EventFilter", "JsonLineFormatter", "JsonLineHandler", "log_event",
           "open_log_file"]

#: The logger every laxchange module's logger sits under.
ROOT = "laxchange"
logging.getLogger(ROOT).addHandler(logging.NullHandler())

#: The key on a LogRecord that holds (event, fields); one attribute, so no field can clobber a
#: LogRecord attribute (`name`, `msg`, ...).
_EXTRA = "laxchange_event"

_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
#: An SSH key's fingerprint (the id `keys prune` gives the previous SSH client key).
_SSH_FPR = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
#: A party id as cards spell it: the pattern of laxchange.trust.keystore.PARTY_RE (a test checks they agree;
#: `trust` is a higher layer than this module).
PARTY_ID_RE = re.compile(r"(LA:[0-9]{3}|URN:[0-9]{6})")
#: A message type (`education-record`, `pep-transfer`, ...) or a command name (`run`, `notify-placement`).
_WORD = re.compile(r"[a-z]+(-[a-z]+)*")

RUN_STAGES = ("housekeeping", "partners", "import", "deadlines", "report")
RECEIPT_STAGES = ("delivered", "applied")
RUN_STEPS = ("keys-prune", "list", "send", "collect", "import", "quarantine", "receipt")
RECEIPT_RESULTS = ("applied", "duplicate", "receipt.unmatched", "receipt.hash-mismatch", "receipt.out-of-state")


def _match(pattern: re.Pattern[str]) -> Callable[[object], bool]:
    return lambda v: isinstance(v, str) and pattern.fullmatch(v) is not None


def _one_of(*values: str) -> Callable[[object], bool]:
    return lambda v: isinstance(v, str) and v in values


def _count(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _code(v: object) -> bool:
    return isinstance(v, str) and v in CODES


def _word(v: object) -> bool:
    return isinstance(v, str) and len(v) <= 40 and _WORD.fullmatch(v) is not None


#: Every field an event may carry, and the only shape of value written for it.
FIELDS: dict[str, Callable[[object], bool]] = {
    "transfer_id": _match(_HEX32),
    "in_reply_to": _match(_HEX32),
    "claimed_transfer_id": _match(_HEX32),
    "record_ref": _match(_HEX32),
    "kid": lambda v: _match(_HEX32)(v) or _match(_SSH_FPR)(v),
    "sha256": _match(_HEX64),
    "party": _match(PARTY_ID_RE),
    "folder_of": _match(PARTY_ID_RE),
    "code": _code,
    "message_type": _word,
    "command": _word,
    "stage": _one_of(*RUN_STAGES, *RECEIPT_STAGES),
    "step": _one_of(*RUN_STEPS),
    "status": _one_of("accepted", "rejected"),
    "result": _one_of(*RECEIPT_RESULTS),
    "use": _one_of("encryption", "signing", "ssh"),
    "complete": lambda v: isinstance(v, bool),
    **dict.fromkeys(("bytes", "days", "hours", "ms", "exit_code", "sent", "imported", "duplicates", "receipts",
                     "quarantined", "failed", "failures", "uncollected", "overdue", "expired"), _count),
}

#: Every event and the fields it may carry. docs/operations.md ("Logs") says when each is logged.
EVENTS: dict[str, frozenset[str]] = {name: frozenset(fields.split()) for name, fields in [
    ("command.started", "command"),
    ("command.finished", "command exit_code code"),
    ("pack.queued", "transfer_id party message_type record_ref"),
    ("pack.withdrawn", "transfer_id party"),
    ("send.sent", "transfer_id party bytes"),
    ("send.failed", "transfer_id party code"),
    ("collect.fetched", "party folder_of claimed_transfer_id sha256 bytes"),
    ("collect.failed", "party code"),
    ("open.imported", "transfer_id party message_type record_ref"),
    ("open.quarantined", "transfer_id party code sha256"),
    ("open.refused", "transfer_id party code sha256"),
    ("receipt.applied", "in_reply_to party stage status result"),
    ("receipt.sent", "transfer_id in_reply_to party stage status"),
    ("receipt.failed", "in_reply_to party stage code"),
    ("checkpoint.failed", "code"),
    ("sftp.part-log-kept", "code"),
    ("import.finished", "imported duplicates receipts quarantined failed"),
    ("key.destroyed", "kid use"),
    ("run.started", "party"),
    ("run.stage", "stage"),
    ("run.expired", "transfer_id party"),
    ("run.unqueued-set-aside", "transfer_id"),
    ("run.failure", "step party code"),
    ("run.uncollected", "transfer_id party days"),
    ("run.overdue", "transfer_id party hours"),
    ("run.ssh-previous-key", "party"),
    ("run.finished", "complete sent imported quarantined failures uncollected overdue expired ms"),
]}


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log `event` with its `fields` (ids, codes and counts only; see `EVENTS`). None values are left out."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={_EXTRA: (event, {k: v for k, v in fields.items() if v is not None})})


def _event_of(record: logging.LogRecord) -> tuple[str, Mapping[str, Any]] | None:
    found = getattr(record, _EXTRA, None)
    if (isinstance(found, tuple) and len(found) == 2 and found[0] in EVENTS
            and isinstance(found[1], Mapping)):
        return found[0], found[1]
    return None


class EventFilter(logging.Filter):
    """Passes only records logged by `log_event` with a registered event (no free text, no other library's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _event_of(record) is not None


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record: `ts`, `level`, `event`, then the event's declared fields whose
    values have their declared shape. Nothing else (no message text, no exception text)."""

    def format(self, record: logging.LogRecord) -> str:
        found = _event_of(record)
        event, fields = found if found is not None else ("", {})
        ts = dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds")
        out: dict[str, Any] = {"ts": ts.replace("+00:00", "Z"), "level": record.levelname.lower(), "event": event}
        allowed = EVENTS.get(event, frozenset())
        for key in sorted(allowed & fields.keys()):
            if FIELDS[key](fields[key]):
                out[key] = fields[key]
        return json.dumps(out, ensure_ascii=True, separators=(",", ":"))


class JsonLineHandler(logging.Handler):
    """Appends each record as one line with one write(2) on an O_APPEND file, so lines from several
    processes (a run and an import at once) never interleave within a line."""

    def __init__(self, fd: int) -> None:
        super().__init__(logging.INFO)
        self.fd = fd
        self.setFormatter(JsonLineFormatter())
        self.addFilter(EventFilter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            os.write(self.fd, (self.format(record) + "\n").encode("ascii"))
        except Exception:  # a full disk must not stop an exchange: logging's own error path, as any handler
            self.handleError(record)

    def close(self) -> None:
        self.acquire()
        try:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1
        finally:
            self.release()
        super().close()


def open_log_file(path: Path) -> JsonLineHandler:
    """A handler appending to `path`, a regular file (created 0600 if missing, never opened through a
    symlink, so a planted link cannot make us append to another file)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ConfigError(f"cannot open the log file {path}: {exc.strerror}", code="log.file",
                          hint="name a regular file (not a symlink) this account can write, in a folder that "
                               "exists; it is created 0600") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ConfigError(f"the log file {path} is not a regular file", code="log.file",
                          hint="name a regular file; it is created 0600 if missing")
    return JsonLineHandler(fd)
