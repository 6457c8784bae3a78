"""The statutory clocks of one child on its readable PEP page (`Deadline` rows, issue 14 #1).

`laxchange.deadlines` computes every clock of every record a home knows of; the page shows those
of its own record. `ChildClocks` is what `import` and the nightly run hand to the renderer: the
home's facts gathered once per import, each imported record added as it is drawn (its folder is
not filed yet at that moment), and only that record's clocks evaluated. A clock that cannot be
computed (a damaged config.json, a bad term-dates file) leaves the page without the section
rather than failing the import: the import's own report and `laxchange deadlines` say why.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from laxchange import deadlines
from laxchange.errors import LaxError
from laxchange.exchange.clocks import home_sources
from laxchange.exchange.party import Party
from laxchange.render.html import Deadline

__all__ = ["ChildClocks", "page_deadlines"]

_STATUS = {"overdue": "overdue", "due-soon": "due soon", "open": "open", "met": "met"}


def _row(d: deadlines.Deadline) -> Deadline:
    due = d.due.at.date() if isinstance(d.due.at, dt.datetime) else d.due.at
    status = _STATUS.get(d.state, d.state) + (" (late)" if d.state == "met" and d.late else "")
    return Deadline(what=d.rule.title, due=due, source=d.rule.source, status=status, approximate=d.approximate)


def page_deadlines(found: list[deadlines.Deadline]) -> list[Deadline]:
    """The page's rows for these clocks, soonest first."""
    return sorted((_row(d) for d in found), key=lambda r: r.due)


class ChildClocks:
    """`record -> the page's deadlines for it` (None: not computed), for a party's home."""

    def __init__(self, party: Party) -> None:
        self.party = party
        self._ready: tuple[deadlines.Sources, deadlines.Settings, deadlines.Policy, deadlines.Calendar] | None = None
        self._failed = False

    def __call__(self, record: dict[str, Any]) -> list[Deadline] | None:
        if self._failed:
            return None
        try:
            if self._ready is None:
                settings = deadlines.Settings.from_home(self.party.home)
                me = self.party.keystore.ring().party
                sources = home_sources(self.party.home, self.party.ledger, me=me, settings=settings)
                self._ready = (sources, settings, *settings.load())
            sources, settings, policy, calendar = self._ready
            sources.add_document(record, origin="being imported", at=self.party.clock.now())
            ref = str(record.get("record_id", ""))
            found = deadlines.evaluate(policy, [h for h in sources.histories() if h.ref == ref], calendar,
                                       now=self.party.clock.now(), window=settings.window, me=sources.me)
        except LaxError:
            self._failed = True
            return None
        return page_deadlines(found)
