"""The readable PEP as HTML: escaping, strictness, no outside resources, the sections people need."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from jinja2 import StrictUndefined

from laxchange import samples
from laxchange.errors import InvalidData, UsageError
from laxchange.render import Deadline, record_of, render_record_html, suggested_name
from laxchange.render import html as render_html
from laxchange.render.chart import attainment_panels
from tests.support.htmlparse import parse
from tests.support.records import HOSTILE_NAME, HOSTILE_SUBJECT, HOSTILE_VOICE, hostile_record, rich_record


def test_the_environment_always_escapes_and_is_strict() -> None:
    env = render_html.environment()
    assert env.autoescape is True  # forced: select_autoescape would not escape a .j2 template
    assert env.undefined is StrictUndefined
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"


def test_hostile_text_is_text_not_markup() -> None:
    html = render_record_html(hostile_record())
    page = parse(html)
    tags = [t for t, _ in page.tags]
    assert "script" not in tags and "img" not in tags and "iframe" not in tags
    assert not any(k.startswith("on") for _, attrs in page.tags for k in attrs), "an event handler attribute"
    text = "".join(page.text)
    assert HOSTILE_NAME in text and HOSTILE_VOICE in text and HOSTILE_SUBJECT in text
    assert "<td>{{ 7*7 }} {% raw %}</td>" in html  # template syntax in data is not evaluated


def test_nothing_is_loaded_from_anywhere() -> None:
    html = render_record_html(rich_record())
    page = parse(html)
    for tag, attrs in page.tags:
        assert "src" not in attrs, tag
        assert tag != "link" and tag != "script" and tag != "iframe"
        href = attrs.get("href")
        assert href is None or href.startswith("mailto:"), href
    assert "url(" not in html and "@import" not in html
    csp = next(a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert csp is not None and csp.startswith("default-src 'none'; style-src 'sha256-")


def test_the_page_has_the_sections_and_fields_people_need() -> None:
    rec = rich_record()
    html = render_record_html(rec)
    page = parse(html)
    assert page.tags[0] == ("html", {"lang": "en-GB"})
    text = " ".join(page.text)
    headings = [t for t, _ in page.tags if t in ("h1", "h2")]
    assert headings[0] == "h1" and headings.count("h1") == 1
    for needed in ("Child and placement", "Contacts", "The plan", "Pupil Premium Plus", "Special educational needs",
                   "Attainment", "Attendance and exclusions", "Virtual School Head", "Designated Teacher",
                   "Social worker", "Independent Reviewing Officer", "Educational psychologist",
                   rec["pep"]["vsh_contact"]["name"], rec["pep"]["vsh_contact"]["email"],
                   rec["school"]["designated_teacher"]["name"], rec["contacts"]["social_worker"]["name"],
                   rec["contacts"]["iro"]["name"], rec["pep"]["child_voice"], "£2,630.00",
                   rec["pep"]["short_term_targets"][0]["description"], rec["pep"]["actions"][0]["owner"],
                   "E: Education health and care (EHC) plan", "persistent disruptive behaviour"):
        assert needed in text, needed
    ths = [a for t, a in page.tags if t == "th"]
    assert ths and all(a.get("scope") in ("col", "row") for a in ths)
    assert sum(1 for t, _ in page.tags if t == "caption") >= 8


def test_dates_are_written_out_in_british_english() -> None:
    rec = rich_record()
    html = render_record_html(rec)
    due = dt.date.fromisoformat(rec["pep"]["next_review_due"])
    assert f'<strong id="next-review">{due.day} {due:%B} {due.year}</strong>' in html


def test_attainment_chart_is_svg_with_a_table_alternative() -> None:
    html = render_record_html(rich_record())
    page = parse(html)
    svgs = [a for t, a in page.tags if t == "svg" and a.get("role") == "img"]
    assert [s["id"] for s in svgs] == ["chart-1", "chart-2", "chart-3"]  # scaled scores, phonics, GCSE
    assert all(s["aria-labelledby"] == f"{s['id']}-title {s['id']}-desc" for s in svgs)
    assert sum(1 for t, _ in page.tags if t == "polyline") == 2  # two GCSE subjects, two dates each
    assert 'id="attainment"' in html and "Attainment results" in html


def test_chart_geometry_scales_each_kind_on_its_own_range() -> None:
    results = [{"kind": "scaled-score", "subject": "Reading", "value": v, "date": dt.date(2020 + i, 7, 1)}
               for i, v in enumerate(["80", "120", "100"])]
    results.append({"kind": "teacher-assessment", "subject": "Writing", "value": "EXS", "date": dt.date(2021, 7, 1)})
    (panel,) = attainment_panels(results)
    (series,) = panel.series
    ys = [p.y for p in series.points]
    assert ys[0] == panel.bottom and ys[1] == panel.top and ys[2] == (panel.top + panel.bottom) / 2
    xs = [p.x for p in series.points]
    assert xs == sorted(xs)
    assert attainment_panels([]) == []


def test_deadlines_hook_shows_only_what_it_is_given() -> None:
    rec = rich_record()
    assert "Deadlines for this child" not in render_record_html(rec)
    assert "no open deadlines" in render_record_html(rec, deadlines=[])
    html = render_record_html(rec, deadlines=[
        Deadline("New PEP after joining a new school", dt.date(2026, 11, 20), "statutory guidance §5.3",
                 status="open", approximate=True)])
    assert "Deadlines for this child" in html and "20 November 2026" in html and "approximate" in html


def test_same_record_same_bytes() -> None:
    assert render_record_html(rich_record()) == render_record_html(rich_record())


def test_an_invalid_record_is_refused_with_its_path() -> None:
    rec = rich_record()
    del rec["pep"]["vsh_contact"]
    with pytest.raises(InvalidData) as e:
        render_record_html(rec)
    assert e.value.code == "record.invalid" and "vsh_contact" in e.value.message


def test_messages_carry_the_record_and_receipts_do_not() -> None:
    msg = samples.pep_transfer(4)
    assert record_of(msg) == msg["record"]
    with pytest.raises(UsageError) as e:
        record_of(samples.receipt(1))
    assert e.value.code == "render.no-record"
    with pytest.raises(UsageError):
        render_record_html(msg)  # the record itself, not the message


def test_the_suggested_file_name_holds_no_personal_data() -> None:
    rec = hostile_record()
    name = suggested_name(rec)
    assert name == f"pep-{rec['record_id']}.html"
    assert re.fullmatch(r"pep-[0-9a-f]{32}\.html", name)
