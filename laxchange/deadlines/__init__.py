"""The statutory clock (issue 13; docs/deadlines.md): every deadline of the guidance, per child.

A policy (`policy.json`, tightened or extended by a council's own file) says which clocks exist;
the calendar counts calendar, working and school days (English bank holidays, the council's term
dates); the facts (record versions, exclusion notices, ledger events) say when each clock started
and whether it was met. Everything is keyed by the record's pseudonymous reference.

`compute` evaluates it all; `report` is the nightly run's section; `to_ics` the calendar file.
The exchange layer (`laxchange.exchange.clocks`) gathers the facts of a home.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from laxchange._util import timefmt
from laxchange.deadlines.calendar import ENGLAND, Calendar, Due, Unit, load_term_dates
from laxchange.deadlines.clocks import DEFAULT_WINDOW, STATES, Deadline, Met, Start, due_within, evaluate, state_of
from laxchange.deadlines.errors import DeadlinesConfigError, PolicyError, TermDatesError
from laxchange.deadlines.facts import (
    Fact,
    History,
    LedgerEvent,
    Notice,
    RecordFacts,
    Sources,
    Version,
    ledger_events,
    read_document,
)
from laxchange.deadlines.ics import to_ics
from laxchange.deadlines.policy import SATISFIERS, STARTS, Policy, Rule, default_policy, load_policy
from laxchange.deadlines.settings import Settings

__all__ = [
    "DEFAULT_WINDOW", "ENGLAND", "SATISFIERS", "STARTS", "STATES", "Calendar", "Deadline", "DeadlinesConfigError",
    "Due", "Fact", "History", "LedgerEvent", "Met", "Notice", "Policy", "PolicyError", "RecordFacts", "Result", "Rule",
    "Settings", "Sources", "Start", "TermDatesError", "Unit", "Version", "compute", "default_policy", "due_within",
    "evaluate", "ledger_events", "load_policy", "load_term_dates", "read_document", "report", "state_of", "to_ics",
]


@dataclass
class Result:
    """Every clock of every record we know of, at `now`, and what could not be read."""

    deadlines: list[Deadline]
    policy: Policy
    calendar: Calendar
    settings: Settings
    now: dt.datetime
    warnings: list[str] = field(default_factory=list)

    @property
    def approximate(self) -> bool:
        """Some date shown counts school days without term dates for them (working days instead)."""
        return any(d.approximate for d in self.deadlines)

    def select(self, *, record: str | None = None, overdue: bool = False,
               within: dt.timedelta | None = None) -> list[Deadline]:
        """The clocks of one record, only the overdue ones, or only those not met and due within `within`
        (overdue included: they are due too)."""
        out = [d for d in self.deadlines if record is None or d.record_ref == record]
        if overdue:
            out = [d for d in out if d.state == "overdue"]
        if within is not None:
            out = [d for d in out if d.met is None and due_within(d.due, self.now, within)]
        return out

    def counts(self) -> dict[str, int]:
        return {s: sum(d.state == s for d in self.deadlines) for s in STATES}

    def to_dict(self, deadlines: list[Deadline] | None = None) -> dict[str, Any]:
        shown = self.deadlines if deadlines is None else deadlines
        return {"at": timefmt.fmt(self.now),
                "deadlines": [d.to_item() for d in shown], "counts": self.counts(),
                "approximate": self.approximate, "term_dates": self.calendar.terms is not None,
                "settings": self.settings.to_dict(), "warnings": list(self.warnings)}


def compute(sources: Sources, settings: Settings, *, now: dt.datetime) -> Result:
    """Load the policy and calendar `settings` name and evaluate every record of `sources` at `now`."""
    policy, calendar = settings.load()
    deadlines = evaluate(policy, sources.histories(), calendar, now=now, window=settings.window, me=sources.me)
    return Result(deadlines, policy, calendar, settings, now, list(sources.warnings))


def report(result: Result) -> dict[str, Any]:
    """The nightly run report's section (RunReport.to_dict()["deadlines"]; the morning report reads it):

    {"overdue": [item...], "due_soon": [item...], "met": [item...], "approximate": bool}, with
    `met` the clocks met within the due-soon window before now (news since about the last week),
    each item as `Deadline.to_item()`, and `approximate` true when a date listed counts school days
    without term dates for them. Only `overdue` makes `run` exit 10 (docs/operations.md).
    """
    since = (result.now - result.settings.window).astimezone(ENGLAND).date()
    sections: dict[str, list[Deadline]] = {
        "overdue": [d for d in result.deadlines if d.state == "overdue"],
        "due_soon": [d for d in result.deadlines if d.state == "due-soon"],
        "met": [d for d in result.deadlines if d.met is not None and d.met.day() >= since],
    }
    out: dict[str, Any] = {k: [d.to_item() for d in v] for k, v in sections.items()}
    out["approximate"] = any(d.approximate for v in sections.values() for d in v)
    return out
