"""The attainment chart: geometry only (numbers and plain strings), drawn as inline SVG by the template.

Kinds have different scales (`laxchange/models/record.py`), so each kind with a numeric scale
gets its own small panel: KS2 scaled scores 80–120, phonics screening marks 0–40, GCSE grades
9–1 (U drawn as 0). Teacher assessments and EYFS outcomes have no common numeric scale and are
shown in the results table only, which is also the chart's text alternative. Labels stay plain
strings here; the template escapes them like every other value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Panel", "Point", "Series", "attainment_panels"]

#: Panel size in SVG user units (the SVG scales to the page width).
WIDTH, HEIGHT = 640, 190
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 14, 34

#: Dark enough for 3:1 against white (WCAG 1.4.11, graphics), and told apart by marker shape too.
COLOURS = ("#0b5a8f", "#a84300", "#00704f", "#7f3a70", "#4d4d4d", "#5a4a00")
MARKERS = ("circle", "square", "triangle", "diamond")


@dataclass(frozen=True)
class Scale:
    kind: str
    title: str
    low: int
    high: int
    ticks: tuple[tuple[int, str], ...]

    def number(self, value: str) -> float | None:
        if self.kind == "gcse-grade" and value.upper() == "U":
            return 0.0
        try:
            n = float(int(value))
        except ValueError:
            return None
        return n if self.low <= n <= self.high else None


SCALES: tuple[Scale, ...] = (
    Scale("scaled-score", "KS2 scaled scores (80 to 120; 100 is the expected standard)", 80, 120,
          ((80, "80"), (90, "90"), (100, "100"), (110, "110"), (120, "120"))),
    Scale("phonics-mark", "Phonics screening check marks (0 to 40)", 0, 40,
          ((0, "0"), (10, "10"), (20, "20"), (30, "30"), (40, "40"))),
    Scale("gcse-grade", "GCSE grades (9 to 1; U drawn as 0)", 0, 9,
          ((0, "U"), (1, "1"), (3, "3"), (5, "5"), (7, "7"), (9, "9"))),
)


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    value: str
    date: dt.date


@dataclass(frozen=True)
class Series:
    subject: str
    colour: str
    marker: str
    points: tuple[Point, ...]
    #: value labels go left of the markers ("end") for the left-nudged series, so neighbours do not collide
    label_anchor: str = "start"

    @property
    def label_dx(self) -> int:
        return -8 if self.label_anchor == "end" else 8

    @property
    def polyline(self) -> str:
        """The `points` attribute of the line joining this subject's results in date order."""
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


@dataclass(frozen=True)
class Panel:
    kind: str
    title: str
    width: int
    height: int
    left: int
    top: int
    right: int
    bottom: int
    y_ticks: tuple[tuple[float, str], ...]
    x_ticks: tuple[tuple[float, str], ...]
    series: tuple[Series, ...]

    @property
    def description(self) -> str:
        n = sum(len(s.points) for s in self.series)
        subjects = ", ".join(s.subject for s in self.series)
        return (f"{n} result{'s' if n != 1 else ''} over time for {subjects}. "
                "Every result is also listed in the attainment table.")


def _date_x(dates: Sequence[dt.date], left: float, right: float) -> dict[dt.date, float]:
    distinct = sorted(set(dates))
    if len(distinct) == 1:
        return {distinct[0]: (left + right) / 2}
    first, last = distinct[0].toordinal(), distinct[-1].toordinal()
    pad = 24.0
    span = (right - left) - 2 * pad
    return {d: left + pad + span * (d.toordinal() - first) / (last - first) for d in distinct}


def _x_ticks(positions: Mapping[dt.date, float]) -> tuple[tuple[float, str], ...]:
    """A label under each distinct date, thinned so labels never overlap (at most about 6)."""
    ticks: list[tuple[float, str]] = []
    for d in sorted(positions):
        x = positions[d]
        if ticks and x - ticks[-1][0] < 80:
            continue
        ticks.append((x, d.strftime("%b %Y")))
    return tuple(ticks)


def attainment_panels(results: Sequence[Mapping[str, Any]]) -> list[Panel]:
    """One panel per kind with a numeric scale that has at least one result in range.

    `results` are the record's `attainment` entries with `date` as a `datetime.date`.
    """
    panels: list[Panel] = []
    plot_left, plot_right = float(LEFT), float(WIDTH - RIGHT)
    plot_top, plot_bottom = float(TOP), float(HEIGHT - BOTTOM)
    for scale in SCALES:
        rows = [(r, n) for r in results if r["kind"] == scale.kind
                and (n := scale.number(str(r["value"]))) is not None]
        if not rows:
            continue
        xs = _date_x([r["date"] for r, _ in rows], plot_left, plot_right)

        def y(n: float, scale: Scale = scale) -> float:
            return plot_bottom - (plot_bottom - plot_top) * (n - scale.low) / (scale.high - scale.low)

        subjects: list[str] = []
        for r, _ in rows:
            if r["subject"] not in subjects:
                subjects.append(r["subject"])
        count = len(subjects)
        series = []
        for i, subject in enumerate(subjects):
            nudge = (i - (count - 1) / 2) * 7  # results of several subjects on one date stay apart
            points = tuple(Point(xs[r["date"]] + nudge, y(n), str(r["value"]), r["date"])
                           for r, n in sorted(((r, n) for r, n in rows if r["subject"] == subject),
                                              key=lambda rn: rn[0]["date"]))
            series.append(Series(subject, COLOURS[i % len(COLOURS)], MARKERS[i % len(MARKERS)], points,
                                 "end" if nudge < 0 else "start"))
        panels.append(Panel(
            kind=scale.kind, title=scale.title, width=WIDTH, height=HEIGHT,
            left=LEFT, top=TOP, right=WIDTH - RIGHT, bottom=HEIGHT - BOTTOM,
            y_ticks=tuple((y(v), label) for v, label in scale.ticks),
            x_ticks=_x_ticks(xs), series=tuple(series)))
    return panels
