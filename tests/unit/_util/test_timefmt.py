"""timefmt.fmt writes exactly what strftime writes, for any instant in any zone (it formats the
fields itself for speed)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from laxchange._util import timefmt


def _reference(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


@settings(max_examples=300, deadline=None)
@given(t=st.datetimes(min_value=dt.datetime(2, 1, 1), max_value=dt.datetime(9998, 12, 31),
                      timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30)),
                                                 dt.timezone(dt.timedelta(hours=-8))])))
def test_fmt_is_strftime(t: dt.datetime) -> None:
    assert timefmt.fmt(t) == _reference(t)


def test_fmt_round_trips_and_drops_microseconds() -> None:
    t = dt.datetime(2026, 11, 24, 18, 50, 7, 999_999, tzinfo=dt.UTC)
    assert timefmt.fmt(t) == "2026-11-24T18:50:07Z"
    assert timefmt.parse(timefmt.fmt(t)) == t.replace(microsecond=0)
    assert timefmt.fmt(dt.datetime(2026, 11, 24, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))) \
        == "2026-11-23T23:00:00Z"
