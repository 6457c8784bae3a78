"""The morning report: what a nightly run did, or what the ledger holds, as one printable HTML page.

Rendered from exactly the dictionary the command prints with `--json` (`RunReport.to_dict()` for
`laxchange run --report`, `exchange.status.ledger_status` for `laxchange status --html`), so the
page and the JSON cannot disagree. This module only rearranges that dictionary for people: per
partner, what was sent, delivered, applied, received, quarantined, overdue and uncollected (and, for
a run, what was delivered again after it was imported: duplicates, never counted as received); one
table of what needs a look, each line with its reason and what to do; the deadlines when the
dictionary has them (`"deadlines"`), else a line saying they were not computed.

What it shows is ids only: transfer ids, pseudonymous record references, party ids and the
partners' organisation names from their cards. An error message about a package's content is
never shown (it may quote the record, as the quarantine sidecar's comment says): such a line gets
the reason code's registered meaning, the failing JSON paths and rule ids instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from markupsafe import Markup, escape

from laxchange import __version__
from laxchange._util import timefmt
from laxchange.errors import CODES, ExitCode
from laxchange.exchange.receipts import ReceiptOutcome
from laxchange.render.html import csp, environment, style

__all__ = ["render_run_report_html", "render_status_html", "run_partner_counts"]

#: The run steps whose failures are about moving files or keys (their messages quote no record).
_TRANSPORT_STEPS = ("list", "send", "collect", "receipt", "keys-prune")

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Line:
    """One thing that needs a look: a status word (the meaning is in the text, never only in colour),
    who, which transfer or file, why, and what to do."""

    status: str
    party: str
    name: str | None
    what: str
    reason: str
    hint: str | None = None
    #: `what` is an id (set in a monospace font), not words
    is_id: bool = True


@dataclass
class Partner:
    """One partner's column of the per-partner table: transfer ids (or file names) in each group."""

    party: str
    name: str | None = None
    sent: list[str] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    received: list[str] = field(default_factory=list)
    #: delivered again after an earlier copy was imported (a sender re-sent it): not received twice
    duplicates: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    overdue: list[str] = field(default_factory=list)
    uncollected: list[str] = field(default_factory=list)
    failed: int = 0
    #: {direction: {state: count}}: the ledger's totals for this partner
    ledger: dict[str, dict[str, int]] = field(default_factory=dict)

    #: the per-partner table's columns, in order: (attribute, heading)
    COLUMNS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("sent", "Sent"), ("delivered", "Delivered"), ("applied", "Applied"), ("received", "Received"),
        ("quarantined", "Quarantined"), ("overdue", "Overdue"), ("uncollected", "Uncollected"))
    #: the run's table: a package or receipt delivered again (its import's `duplicate`) has a column of its
    #: own beside Received, since it brought nothing new; the ledger has no state for it (no row changes)
    RUN_COLUMNS: ClassVar[tuple[tuple[str, str], ...]] = (*COLUMNS[:4], ("duplicates", "Duplicates"), *COLUMNS[4:])

    def totals(self) -> str:
        """The ledger's totals: `outbound: 1 delivered, 2 sent; inbound: 3 imported`."""
        return "; ".join(f"{'outbound' if d == 'out' else 'inbound'}: " + ", ".join(
            f"{n} {s}" for s, n in sorted(states.items())) for d, states in sorted(self.ledger.items()))

    def others(self) -> str:
        """The ledger's transfers in states the table has no column for: `1 queued (outbound)`."""
        return ", ".join(f"{n} {s} ({'outbound' if d == 'out' else 'inbound'})"
                         for d, states in sorted(self.ledger.items()) for s, n in sorted(states.items())
                         if (d, s) not in _COLUMN_STATES)


#: The (direction, state) pairs the status report's columns count.
_COLUMN_STATES = {("out", "sent"), ("out", "delivered"), ("out", "applied"), ("out", "uncollected"),
                  ("in", "imported"), ("in", "quarantined")}


def _when(value: object, *, short: bool = False) -> str:
    """`2026-11-24T02:30:00Z` → `Tuesday 24 November 2026, 02:30 UTC` (short: `24 Nov 2026 02:30 UTC`, for a
    table cell); `2026-11-27` → `Friday 27 November 2026`; anything else as it is."""
    text = str(value)
    try:
        t = timefmt.parse(text)
    except ValueError:
        try:
            d = dt.date.fromisoformat(text)
        except ValueError:
            return text
        return f"{_DAYS[d.weekday()]} {d.day} {_MONTHS[d.month - 1]} {d.year}"
    if short:
        return f"{t.day} {_MONTHS[t.month - 1][:3]} {t.year} {t:%H:%M} UTC"
    return f"{_DAYS[t.weekday()]} {t.day} {_MONTHS[t.month - 1]} {t.year}, {t:%H:%M} UTC"


def _reason(code: str | None) -> str:
    """A reason code with its registered meaning: `ssh.connect-failed: cannot connect to the SFTP server`."""
    if not code:
        return "no reason given"
    meaning = CODES.get(code)
    return f"{meaning} ({code})" if meaning else code


def _tid(file: str | None) -> str:
    """`<transfer id>.lax` → the transfer id; other names as they are."""
    name = file or "?"
    return name[:-4] if name.endswith(".lax") else name


def _names(data: Mapping[str, Any]) -> dict[str, str]:
    """Partners' names: the report's `partners`, and the contacts of uncollected and overdue transfers."""
    out = {str(k): str(v) for k, v in (data.get("partners") or {}).items() if v}
    for item in (*data.get("uncollected", ()), *data.get("overdue", ())):
        c = item.get("contact") or {}
        if c.get("party") and c.get("name"):
            out[str(c["party"])] = str(c["name"])
    return out


def _content_error(err: Mapping[str, Any]) -> tuple[str, str | None]:
    """(reason, hint) for an error about a package: the message is left out when it may quote the record
    (invalid data), replaced by the code's meaning and the failing JSON paths and rules."""
    code = str(err.get("error") or "")
    reason = _reason(code)
    if err.get("exit_code") != ExitCode.INVALID_DATA and err.get("message"):
        reason = f"{err['message']} ({code})"
    found = [f for f in (err.get("details") or {}).get("errors", []) if isinstance(f, dict)]
    if found:
        at = "; ".join(f"{f.get('path')}" + (f" [{f['rule']}]" if f.get("rule") else "") for f in found[:5])
        reason += f"; at {at}" + (f" and {len(found) - 5} more" if len(found) > 5 else "")
    hint = err.get("hint")
    return reason, str(hint) if hint else None


#: The deadline groups the report shows, in order: (key in the dictionary, heading).
DEADLINE_GROUPS = (("overdue", "Overdue"), ("due_soon", "Due soon"), ("met", "Met"))
_DEADLINE_FIELDS = ("rule", "title", "record_ref", "due", "state", "met_by", "source")


def _deadlines(value: Any) -> dict[str, Any] | None:
    """The report's `deadlines` section with every group and field present (None: not computed)."""
    if not isinstance(value, Mapping):
        return None
    groups = {key: [{f: item.get(f) for f in _DEADLINE_FIELDS} for item in value.get(key) or ()
                    if isinstance(item, Mapping)] for key, _ in DEADLINE_GROUPS}
    for items in groups.values():
        items.sort(key=lambda i: (str(i["due"]), str(i["record_ref"]), str(i["rule"])))
    return {**groups, "approximate": bool(value.get("approximate"))}


class _Partners(dict[str, Partner]):
    def __init__(self, names: Mapping[str, str]) -> None:
        super().__init__()
        self.names = names

    def __missing__(self, party: str) -> Partner:
        p = self[party] = Partner(party, self.names.get(party))
        return p

    def sorted(self) -> list[Partner]:
        return [self[k] for k in sorted(self)]


_UNCOLLECTED_HINT = "ask the partner whether their nightly job collects its drop folder"
_OVERDUE_HINT = "the partner collected it but no delivered receipt came back: ask them whether it was imported"
_RECEIPT_HINT = "`laxchange audit list` has the note; ask the partner which transfer their receipt answers"
_QUARANTINE_HINT = "`laxchange quarantine list` shows it; ask the sender to send it again"

#: What each run step was doing, for the "needs a look" table.
_STEP = {"list": "listing our folder on its server", "send": "sending", "collect": "collecting our drop folder",
         "receipt": "sending a receipt", "keys-prune": "pruning our retired keys"}


def code_spans(text: object) -> Markup:
    """Text with its `backticked` parts as <code>, every part escaped (hints name commands that way)."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: leave the text as it is
        return escape(str(text))
    return Markup("").join(escape(p) if i % 2 == 0 else Markup("<code>%s</code>") % p for i, p in enumerate(parts))


@dataclass
class _View:
    kind: str
    title: str
    when: str
    complete: bool
    partners: list[Partner]
    lines: list[Line]
    notes: list[str]
    deadlines: dict[str, Any] | None
    housekeeping: list[Line]
    filtered: bool = False
    #: the status report's transfers, newest change last (as `status --json` lists them)
    transfers: list[Mapping[str, Any]] = field(default_factory=list)
    #: partners' names by party id
    names: Mapping[str, str] = field(default_factory=dict)

    def context(self) -> dict[str, Any]:
        css, css_hash = style("report.css")
        columns = Partner.RUN_COLUMNS if self.kind == "run" else Partner.COLUMNS
        return {"v": self, "columns": columns, "deadline_groups": DEADLINE_GROUPS, "css": css,
                "csp": csp(css_hash), "generator": f"laxchange {__version__}", "when_text": _when,
                "code_spans": code_spans}


def _run_view(data: Mapping[str, Any]) -> _View:
    names = _names(data)
    ps = _Partners(names)
    lines: list[Line] = []
    for party, dirs in (data.get("counts") or {}).items():
        ps[party].ledger = {d: dict(states) for d, states in dirs.items()}
    for s in data.get("sent", ()):
        ps[s["party"]].sent.append(_tid(s.get("file")))
    for f in data.get("failures", ()):
        if f.get("step") not in _TRANSPORT_STEPS:
            continue  # import and quarantine failures are the import items below, with their safe reasons
        if f.get("step") != "collect":  # collecting is from our own drop folder: not a partner's column
            ps[f["party"]].failed += 1
        step = _STEP.get(str(f.get("step")), str(f.get("step")))
        what = f"{step} {_tid(f['file'])}" if f.get("file") else step
        lines.append(Line("FAILED", f["party"], names.get(f["party"]), what,
                          f"{f.get('message') or _reason(f.get('code'))} ({f.get('code')})", f.get("hint"),
                          is_id=bool(f.get("file"))))
    imp = data.get("import") or {}
    for item in imp.get("items", ()):
        result, who = item.get("result"), item.get("sender") or "unknown sender"
        rec = item.get("receipt")
        if result == "imported":
            ps[who].received.append(item.get("transfer_id") or _tid(item.get("file")))
        elif result == "duplicate":
            ps[who].duplicates.append(item.get("transfer_id") or _tid(item.get("file")))
        elif result == "receipt" and rec and rec.get("result") == "applied":
            if rec.get("state") == "applied":
                ps[rec["party"]].applied.append(rec["in_reply_to"])
            elif rec.get("state") == "delivered":
                ps[rec["party"]].delivered.append(rec["in_reply_to"])
            elif rec.get("state") == "rejected":
                lines.append(Line("REJECTED", rec["party"], ps[rec["party"]].name, rec["in_reply_to"],
                                  f"{rec['party']} refused the transfer ({rec.get('stage')} receipt)",
                                  f"`laxchange status --party {rec['party']} --state rejected --json` gives its reason "
                                  "code; correct the record and send it again"))
        if result in ("quarantined", "failed") and item.get("error"):
            reason, hint = _content_error(item["error"])
            if result == "quarantined":
                ps[who].quarantined.append(item.get("transfer_id") or _tid(item.get("file")))
                hint = hint or _QUARANTINE_HINT
            else:
                ps[who].failed += 1
            lines.append(Line(result.upper(), who, ps[who].name, item.get("transfer_id") or _tid(item.get("file")),
                              reason, hint))
    for r in data.get("receipt_warnings", ()):
        outcome = ReceiptOutcome(**{k: r.get(k) for k in ("in_reply_to", "party", "status", "stage", "result",
                                                          "state")})
        lines.append(Line("RECEIPT NOT APPLIED", r["party"], ps[r["party"]].name, r["in_reply_to"],
                          outcome.describe(), _RECEIPT_HINT))
    for u in data.get("uncollected", ()):
        ps[u["party"]].uncollected.append(u["transfer_id"])
        lines.append(Line("UNCOLLECTED", u["party"], ps[u["party"]].name, u["transfer_id"],
                          f"in the partner's drop folder {u.get('days')} days after it was sent "
                          f"({_when(u.get('sent'), short=True)})", _UNCOLLECTED_HINT))
    for o in data.get("overdue", ()):
        ps[o["party"]].overdue.append(o["transfer_id"])
        lines.append(Line("OVERDUE", o["party"], ps[o["party"]].name, o["transfer_id"],
                          f"collected, but no delivered receipt {o.get('hours')} hours after it was sent",
                          _OVERDUE_HINT))
    house = [Line("EXPIRED", e["party"], ps[e["party"]].name, e["transfer_id"],
                  f"expired {_when(e.get('expires'), short=True)} while {e.get('was')}",
                  "pack the record again if it still needs to go") for e in data.get("expired", ())]
    house += [Line("KEY PRUNED", "us", None, f"{k.get('use')} key {k.get('kid')}", str(k.get("reason") or ""),
                   is_id=False)
              for k in data.get("keys_pruned", ())]
    house += [Line("KEY EXPIRES", "us", None, f"{k.get('use')} key {k.get('kid')}",
                   f"expires {_when(k.get('not_after'), short=True)}", "run `laxchange keys rotate` before then",
                   is_id=False)
              for k in data.get("keys_expiring", ())]
    house += [Line("SSH KEY", w["party"], w.get("name"), "our previous SSH key",
                   f"{w.get('message')} ({w.get('code')})", w.get("hint"), is_id=False)
              for w in data.get("ssh_previous_key_only", ())]
    notes = [str(w) for w in imp.get("warnings", ())]
    return _View("run", "Morning report", str(data.get("started", "")), bool(data.get("complete")), ps.sorted(),
                 lines, notes, _deadlines(data.get("deadlines")), house)


def _status_view(data: Mapping[str, Any], *, filtered: bool) -> _View:
    ps = _Partners(_names(data))
    lines: list[Line] = []
    late = {(o["transfer_id"], o["party"]) for o in data.get("overdue", ())}
    for t in data.get("transfers", ()):
        p, tid, state, direction = ps[t["party"]], t["transfer_id"], t["state"], t["direction"]
        by_state = p.ledger.setdefault(direction, {})
        by_state[state] = by_state.get(state, 0) + 1
        ref = f" (record {t['record_ref']})" if t.get("record_ref") else ""
        if direction == "out" and state in ("sent", "delivered", "applied", "uncollected"):
            getattr(p, state).append(tid)
        elif direction == "in" and state == "imported":
            p.received.append(tid)
        elif direction == "in" and state == "quarantined":
            p.quarantined.append(tid)
            lines.append(Line("QUARANTINED", p.party, p.name, tid + ref, _reason(t.get("detail")),
                              _QUARANTINE_HINT))
        elif direction == "out" and state == "rejected":
            lines.append(Line("REJECTED", p.party, p.name, tid + ref, _reason(t.get("detail")),
                              "the partner refused it: correct the record and send it again"))
        if state == "uncollected":
            lines.append(Line("UNCOLLECTED", p.party, p.name, tid + ref,
                              f"in the partner's drop folder (since {_when(t.get('updated'), short=True)})",
                              _UNCOLLECTED_HINT))
        if direction == "out" and (tid, t["party"]) in late:
            p.overdue.append(tid)
            lines.append(Line("OVERDUE", p.party, p.name, tid + ref,
                              f"sent {_when(t.get('updated'), short=True)}, no delivered receipt after 48 hours",
                              _OVERDUE_HINT))
    for w in data.get("warnings", ()):
        who = str(w.get("party"))
        lines.append(Line("RECEIPT NOT APPLIED", who, ps.names.get(who), str(w.get("in_reply_to")),
                          f"{w.get('why')} ({w.get('event')}, {_when(w.get('at'), short=True)})",
                          _RECEIPT_HINT))
    return _View("status", "Status report", str(data.get("as_of", "")), not lines, ps.sorted(), lines, [],
                 _deadlines(data.get("deadlines")), [], filtered=filtered, transfers=list(data.get("transfers", ())),
                 names=ps.names)


def run_partner_counts(data: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """What the run did per partner, as the morning report's per-partner table counts it (the same
    code fills both): party (or "unknown sender") → {column: n} for the table's columns and `failed`,
    only the non-zero ones. `laxchange run`'s text prints these, so the text and the page agree."""
    out: dict[str, dict[str, int]] = {}
    for p in _run_view(data).partners:
        n = {attr: len(getattr(p, attr)) for attr, _ in Partner.RUN_COLUMNS} | {"failed": p.failed}
        if any(n.values()):
            out[p.party] = {k: v for k, v in n.items() if v}
    return out


def _render(view: _View) -> str:
    return environment().get_template("report.html.j2").render(view.context())


def render_run_report_html(data: Mapping[str, Any]) -> str:
    """The nightly run's report (`RunReport.to_dict()`, what `laxchange run --json` prints) as one HTML page."""
    return _render(_run_view(data))


def render_status_html(data: Mapping[str, Any], *, filtered: bool = False) -> str:
    """The ledger's status (`exchange.status.ledger_status`, what `laxchange status --json` prints) as one
    HTML page; `filtered` says the transfers were selected by the command's options (the page says so)."""
    return _render(_status_view(data, filtered=filtered))

