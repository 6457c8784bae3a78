"""`deadlines --ics FILE`: the clocks as an iCalendar file a VSH team can subscribe to.

One all-day event per clock not yet met (a clock in hours is a timed event), on its due date,
named by the rule and the record's pseudonymous reference only (never a name or UPN). The UID
is derived from the rule, the record and the facts that started the clock, so a calendar that
re-reads the file each night updates its events in place, and one that is met drops out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import icalendar

from laxchange.deadlines.clocks import Deadline

__all__ = ["PRODID", "to_ics"]

PRODID = "-//laxchange//statutory deadlines//EN"


def to_ics(deadlines: Iterable[Deadline], *, now: dt.datetime, name: str) -> bytes:
    """The calendar of every clock in `deadlines` that is not met."""
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    for d in deadlines:
        if d.met is not None:
            continue
        ev = icalendar.Event()
        ev.add("uid", d.uid)
        ev.add("dtstamp", now.astimezone(dt.UTC))
        if isinstance(d.due.at, dt.datetime):
            ev.add("dtstart", d.due.at.astimezone(dt.UTC))
            ev.add("dtend", d.due.at.astimezone(dt.UTC) + dt.timedelta(minutes=30))
        else:
            ev.add("dtstart", d.due.at)
            ev.add("dtend", d.due.at + dt.timedelta(days=1))
        flag = "OVERDUE: " if d.state == "overdue" else ""
        ev.add("summary", f"{flag}{d.rule.title} (record {d.record_ref[:8]})")
        ev.add("description", "\n".join([
            f"rule: {d.rule.id} ({d.rule.length_text()}; {d.rule.source})",
            f"record: {d.record_ref}",
            f"started: {d.start.what}",
            f"state: {d.state}" + (" (approximate: no term dates for these days)" if d.approximate else ""),
            "look it up: laxchange deadlines --record " + d.record_ref,
        ]))
        ev.add("categories", ["laxchange", d.rule.id])
        ev.add("transp", "TRANSPARENT")
        cal.add_component(ev)
    data: bytes = cal.to_ical()
    return data
