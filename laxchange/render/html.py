"""The readable PEP: an education record as one self-contained, printable, accessible HTML page.

Templates are jinja2 files shipped in the package (`laxchange/render/templates/`). Every value
from a record is escaped: the environment is built with `autoescape=True` (not
`select_autoescape`, which keys on file extensions and would leave a `.j2` template unescaped)
and `StrictUndefined`, so a misspelt field fails loudly instead of printing nothing. The page
loads nothing from anywhere (no scripts, fonts, images or style sheets from outside) and says so
in its Content-Security-Policy, which allows only its own inline style sheet, by hash.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from pydantic import ValidationError

from laxchange import __version__
from laxchange.clock import Clock
from laxchange.errors import InternalError, InvalidData, UsageError
from laxchange.models import codes, schemastore
from laxchange.models.record import NAME as RECORD_NAME
from laxchange.models.record import EducationRecord
from laxchange.render.chart import attainment_panels
from laxchange.validate import validate_document

__all__ = ["MESSAGES_WITH_RECORD", "Deadline", "record_of", "render_record_html", "suggested_name"]

#: Message types that carry an education record in their `record` field.
MESSAGES_WITH_RECORD = ("pep-transfer", "placement-notification")

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


@dataclass(frozen=True)
class Deadline:
    """One deadline for this child, as the page shows it (the hook for the deadlines module).

    `render_record_html(..., deadlines=[...])` shows a "Deadlines for this child" section only
    when deadlines are given; with `None` (nothing computed) the page has no such section, and an
    empty list says that none are open. `source` cites the rule (e.g. "statutory guidance §5.3");
    `approximate` marks a school-day deadline computed without the council's term dates.
    """

    what: str
    due: dt.date
    source: str
    status: str | None = None
    approximate: bool = False


def _longdate(value: dt.date | None) -> str:
    if value is None:
        return "not recorded"
    return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"


def _gbp(value: float | None) -> str:
    return "not recorded" if value is None else f"£{value:,.2f}"


def _words(value: str | None) -> str:
    """`in-progress` → `in progress`; `requires-improvement` → `requires improvement`."""
    return "" if value is None else value.replace("-", " ").replace("_", " ")


#: describe(kind, code) for the code lists a record uses
_CODE_LISTS: dict[str, Callable[[], dict[str, codes.Code]]] = {
    "la": codes.la_codes,
    "legal_status": lambda: codes.ssda903("legal_status"),
    "category_of_need": lambda: codes.ssda903("category_of_need"),
    "placement_type": lambda: codes.ssda903("placement_type"),
    "placement_provider": lambda: codes.ssda903("placement_provider"),
    "reason_placement_change": lambda: codes.ssda903("reason_placement_change"),
    "upn_unknown": lambda: codes.ssda903("upn_unknown_reasons"),
    "sen_provision": lambda: codes.sen("sen_provision"),
    "sen_type": lambda: codes.sen("sen_type"),
}


def _describe(kind: str, code: str | None) -> str:
    """"C2: Full care order" for a code the reference list knows, else the code itself."""
    if code is None:
        return "not recorded"
    entry = _CODE_LISTS[kind]().get(code)
    return f"{code}: {entry.description}" if entry else code


@cache
def environment() -> Environment:
    """The one jinja2 environment for every page (PEP, morning report): autoescape forced, strict."""
    env = Environment(
        loader=PackageLoader("laxchange.render", "templates"),
        autoescape=True,  # always, whatever the template's name (select_autoescape would skip .j2)
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["longdate"] = _longdate
    env.filters["gbp"] = _gbp
    env.filters["words"] = _words
    env.globals["describe"] = _describe
    return env


@cache
def style(*names: str) -> tuple[Markup, str]:
    """A page's style sheet: `templates/base.css` then each of `names` (our own packaged files, so
    trusted as markup), and the CSP hash that allows exactly it."""
    files = resources.files("laxchange.render").joinpath("templates")
    parts = [files.joinpath(n).read_text(encoding="utf-8") for n in ("base.css", *names)]
    for name, part in zip(("base.css", *names), parts, strict=True):
        if "</" in part:
            raise InternalError(f"templates/{name} must not contain '</'")
    css = "\n".join(parts)
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
    return Markup(css), f"'sha256-{digest}'"  # noqa: S704 - our own packaged style sheets, checked above


def csp(css_hash: str) -> str:
    """The Content-Security-Policy of every page: nothing from anywhere, only its own inline style sheet."""
    return f"default-src 'none'; style-src {css_hash}; base-uri 'none'; form-action 'none'"


def record_of(document: Any, *, source: str = "<input>", clock: Clock | None = None) -> dict[str, Any]:
    """The education record in `document` (a record, or a message that carries one), validated.

    Raises InvalidData (exit 1) when the document fails validation, UsageError
    (`render.no-record`, exit 2) for a message that carries no record (a receipt, an exclusion notice).
    """
    name, _version = schemastore.identify(document, source)
    if name != RECORD_NAME and name not in MESSAGES_WITH_RECORD:
        raise UsageError(f"{source} is a {name}, which carries no education record", code="render.no-record",
                         hint="render an education-record, or a pep-transfer or placement-notification that "
                              "carries one")
    report = validate_document(document, source=source, clock=clock)
    if not report.ok:
        first = report.errors[0]
        raise InvalidData(f"{source} is not a valid {name}: {first.path}: {first.message}", code="record.invalid",
                          hint=first.hint or f"run `laxchange validate {source}` for every finding",
                          details={"errors": [e.to_dict() for e in report.errors]})
    rec = document if name == RECORD_NAME else document["record"]
    if not isinstance(rec, dict):  # the schema says so; kept for type checkers
        raise InvalidData(f"{source}: the record is not an object", code="record.invalid")
    return rec


def suggested_name(record: dict[str, Any]) -> str:
    """A file name for the page that carries no personal data: the record's random id only."""
    return f"pep-{record['record_id']}.html"


def _contacts(r: dict[str, Any]) -> list[tuple[str, dict[str, Any] | None]]:
    school = r.get("school")
    c = r["contacts"]
    rows: list[tuple[str, dict[str, Any] | None]] = [
        ("Virtual School Head", r["pep"]["vsh_contact"]),
        ("Designated Teacher", school["designated_teacher"] if school else None),
        ("Social worker", c["social_worker"]),
        ("Independent Reviewing Officer (IRO)", c["iro"]),
        ("Carer", c["carer"]),
    ]
    rows.extend((o["role"], o) for o in c["others"])
    return rows


def _age(dob: dt.date, on: dt.date) -> int:
    return on.year - dob.year - ((on.month, on.day) < (dob.month, dob.day))


def _attendance(periods: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for p in periods:
        possible = p["sessions_possible"]
        rate = f"{100 * p['sessions_attended'] / possible:.1f}%" if possible else "n/a"
        rows.append({**p, "rate": rate})
    return rows


def render_record_html(record: dict[str, Any], *, deadlines: Sequence[Deadline] | None = None,
                       clock: Clock | None = None, source: str = "record") -> str:
    """The education record as one self-contained HTML page (UTF-8 text).

    `record` is an education-record document; it is validated first (InvalidData if it fails).
    `deadlines` (the hook for the deadlines module): when given, the page lists them; `None`
    leaves the section out. The output depends only on its inputs (no time stamp), so the same
    record renders to the same bytes.
    """
    name, _version = schemastore.identify(record, source)
    if name != RECORD_NAME:
        raise UsageError(f"{source} is a {name}, not an education-record", code="render.no-record",
                         hint="pass the record itself; `record_of(document)` takes it out of a message")
    record = record_of(record, source=source, clock=clock)
    try:
        model = EducationRecord.model_validate(record)
    except ValidationError as exc:  # the JSON Schema accepted it, so the models disagree: a bug
        raise InternalError(f"the validated record does not fit the model: {exc.errors()[:1]}") from exc
    r = model.model_dump(mode="python", by_alias=True)
    child = r["child"]
    legal = child["legal_name"]
    legal_name = " ".join(n for n in (legal["given"], legal["middle"], legal["family"]) if n)
    css, css_hash = style("pep.css")
    ppp = r["pep"]["pupil_premium_plus"]
    context = {
        "r": r,
        "legal_name": legal_name,
        "known_as": child["preferred_name"] or legal["given"],
        "age": _age(child["date_of_birth"], r["as_of"]),
        "contacts": _contacts(r),
        "ppp_left": (ppp["allocation_gbp"] - ppp["spent_to_date_gbp"])
        if ppp and ppp["spent_to_date_gbp"] is not None else None,
        "attendance": _attendance(r["attendance"]),
        "attainment": sorted(r["attainment"], key=lambda a: (a["date"], a["stage"], a["subject"])),
        "panels": attainment_panels(r["attainment"]),
        "deadlines": None if deadlines is None else sorted(deadlines, key=lambda d: d.due),
        "css": css,
        "csp": csp(css_hash),
        "generator": f"laxchange {__version__}",
    }
    return environment().get_template("pep.html.j2").render(context)
