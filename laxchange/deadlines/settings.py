"""Where the clocks' inputs are: config.json's "deadlines" section, or options that override it.

    "deadlines": {
        "records": "records",              the council's folder of education-record JSON files
        "term_dates": "term-dates.ics",    the council's term dates (.ics or .csv)
        "policy": "deadline-policy.json",  the council's local policy (tightens or adds rules)
        "due_soon_days": 7,                "due soon" means within this many days
        "run_exit_on_overdue": true        an overdue deadline makes `laxchange run` exit 10
    }

Relative paths are relative to the home. Every key is optional; without `term_dates`, school
days are counted as working days and marked approximate (docs/deadlines.md). Set
`run_exit_on_overdue` false where the clocks are watched elsewhere (the VSH team's calendar) and
the nightly run's exit code should speak of transfers only; overdue deadlines are still reported.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from laxchange.deadlines.calendar import Calendar, load_term_dates
from laxchange.deadlines.clocks import DEFAULT_WINDOW
from laxchange.deadlines.errors import DeadlinesConfigError
from laxchange.deadlines.policy import Policy, load_policy
from laxchange.home import Home, json_object, load_home_file

__all__ = ["CONFIG_KEYS", "SECTION", "Settings"]

SECTION = "deadlines"
CONFIG_KEYS = ("records", "term_dates", "policy", "due_soon_days", "run_exit_on_overdue")
MAX_WINDOW_DAYS = 366


@dataclass(frozen=True)
class Settings:
    """The files and window in force: each from an option, else config.json, else none (the default)."""

    records: Path | None = None
    term_dates: Path | None = None
    policy: Path | None = None
    window: dt.timedelta = DEFAULT_WINDOW
    run_exit_on_overdue: bool = True

    @classmethod
    def from_home(cls, home: Home, *, records: Path | None = None, term_dates: Path | None = None,
                  policy: Path | None = None, window: dt.timedelta | None = None) -> Settings:
        section = _section(home)
        where = f"{home.config_file}: {SECTION}"

        def path(key: str, given: Path | None) -> Path | None:
            if given is not None:
                return given
            value = section.get(key)
            if value is None:
                return None
            if not isinstance(value, str) or not value.strip():
                raise DeadlinesConfigError(f"{where}.{key} must be a path (a string)", code="config.invalid",
                                           hint=f"set it to a file or folder, relative to the home {home.root}")
            p = Path(value)
            return p if p.is_absolute() else home.root / p

        days = section.get("due_soon_days")
        if window is None and days is not None:
            if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= MAX_WINDOW_DAYS:
                raise DeadlinesConfigError(f"{where}.due_soon_days must be a whole number of days, 0 to "
                                           f"{MAX_WINDOW_DAYS}", code="config.invalid",
                                           hint="set it to e.g. 7, or remove it (default 7)")
            window = dt.timedelta(days=days)
        exit_on_overdue = section.get("run_exit_on_overdue", True)
        if not isinstance(exit_on_overdue, bool):
            raise DeadlinesConfigError(f"{where}.run_exit_on_overdue must be true or false", code="config.invalid",
                                       hint="set it to true (the default) or false")
        return cls(records=path("records", records), term_dates=path("term_dates", term_dates),
                   policy=path("policy", policy), window=window if window is not None else DEFAULT_WINDOW,
                   run_exit_on_overdue=exit_on_overdue)

    def load(self) -> tuple[Policy, Calendar]:
        """The policy in force and the calendar (with the term dates, if any): every file checked."""
        return load_policy(self.policy), Calendar(load_term_dates(self.term_dates) if self.term_dates else None)

    def to_dict(self) -> dict[str, Any]:
        return {"records": str(self.records) if self.records else None,
                "term_dates": str(self.term_dates) if self.term_dates else None,
                "policy": str(self.policy) if self.policy else None, "due_soon_days": self.window.days,
                "run_exit_on_overdue": self.run_exit_on_overdue}


def _section(home: Home) -> dict[str, Any]:
    if not home.config_file.is_file():
        return {}
    section = load_home_file(home.config_file, json_object, what="config").get(SECTION, {})
    if not isinstance(section, dict):
        raise DeadlinesConfigError(f"{home.config_file}: \"{SECTION}\" is not an object", code="config.invalid",
                                   hint=f'write e.g. "{SECTION}": {{"term_dates": "term-dates.ics"}}')
    unknown = sorted(set(section) - set(CONFIG_KEYS))
    if unknown:
        raise DeadlinesConfigError(f"{home.config_file}: {SECTION}.{unknown[0]} is not a setting",
                                   code="config.invalid", hint=f"the settings are: {', '.join(CONFIG_KEYS)}")
    return section
