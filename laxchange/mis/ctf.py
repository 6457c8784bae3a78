"""A partial Common Transfer File (CTF) for one looked-after pupil, from an education record.

Every English school MIS imports the DfE's CTF (XML, no namespace): the current version and the
one before. This writes a `partial` CTF (DocumentQualifier), not a whole school record: the
looked-after block, SEN provision and needs, the social worker and the VSH as contacts,
attendance year data and key-stage results. docs/ctf.md maps each record field to its element,
says which public source each name, order and value was checked against, and that the file is
not yet validated against the DfE XSD (which is not available here).

The tree is built with the standard library's ElementTree, which escapes every text; characters
XML 1.0 cannot carry at all (control characters) are refused with the record path, not dropped.
What the record holds that the CTF does not carry (exclusions, the PEP itself, results without a
confirmed CTF code...) is listed in `Ctf.omitted`, by path and reason only: no personal data.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import xml.etree.ElementTree as ET  # building and writing our own tree only; nothing is parsed here
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from laxchange._util import fs
from laxchange._util.timefmt import ENGLAND
from laxchange.clock import Clock
from laxchange.errors import InvalidData, UsageError

__all__ = ["CTF_VERSIONS", "CURRENT_VERSION", "SUPPLIER_ID", "Ctf", "academic_year", "build_ctf", "ctf_file_name",
           "write_ctf"]

#: The versions written: the current one first, then the preceding one (an MIS accepts both).
CTF_VERSIONS = ("25", "24")
CURRENT_VERSION = CTF_VERSIONS[0]
#: Header/SupplierID: who made the file.
SUPPLIER_ID = "laxchange"
#: Header/DateTime is local time in England, as an MIS shows it (DfE's own MTC export writes local time).
#: A new academic year starts on 1 August for Header/SourceSchool/AcademicYear (docs/ctf.md).
_YEAR_STARTS = (8, 1)
#: Characters XML 1.0 cannot carry even escaped (ElementTree would write them and make the file unreadable).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

#: The pupil's sex element: `Sex` since CTF 25, `Gender` before (the only difference laxchange knows of).
_SEX_ELEMENT = {"25": "Sex", "24": "Gender"}
#: record child.gender -> Pupil/Sex (Gender before CTF 25). "U" for other/not-known is not checked (docs/ctf.md).
_SEX = {"male": "M", "female": "F", "other": "U", "not-known": "U"}
#: Assessment subject names (lower case) -> CTF subject codes; only MAT is confirmed (docs/ctf.md).
_SUBJECTS = {"mathematics": "MAT", "maths": "MAT", "reading": "REA", "writing": "WRI",
             "grammar, punctuation and spelling": "GPS", "science": "SCI", "english": "ENG"}
#: Assessment kind -> StageAssessment/Method: TT a test, TA a teacher assessment.
_METHODS = {"scaled-score": "TT", "teacher-assessment": "TA"}
_STAGES = ("KS1", "KS2", "KS3", "KS4", "KS5")
#: Contacts/Contact/Relationship for the two professionals (not checked against the code set: docs/ctf.md).
_RELATIONSHIP_SOCIAL_WORKER = "SWR"
_RELATIONSHIP_OTHER = "OTH"
_TELEPHONE_WORK = "W"


@dataclass(frozen=True)
class Ctf:
    """A CTF file's bytes and what it left out. Ids and record paths only: safe to print and log."""

    xml: bytes
    version: str
    record_id: str
    school_urn: str
    suggested_name: str
    omitted: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def academic_year(day: dt.date) -> int:
    """The year an academic year starts in: 2026 for any day from 1 August 2026 to 31 July 2027."""
    return day.year if (day.month, day.day) >= _YEAR_STARTS else day.year - 1


def ctf_file_name(source_laestab: str, dest_laestab: str, sequence: int = 1) -> str:
    """The usual name of a CTF file, `LLLEEEE_CTF_LLLEEEE_NNN.xml` (source, destination, a sequence number)."""
    return f"{source_laestab}_CTF_{dest_laestab}_{sequence:03d}.xml"


class _Builder:
    """Adds elements in the order the caller makes them, checking every text on the way in."""

    def __init__(self) -> None:
        self.omitted: list[str] = []
        self.notes: list[str] = []

    def sub(self, parent: ET.Element, tag: str, text: object = None, *, where: str = "") -> ET.Element:
        el = ET.SubElement(parent, tag)
        if text is not None:
            value = str(text)
            bad = _NOT_XML.search(value)
            if bad:
                raise InvalidData(
                    f"{where or tag}: the character U+{ord(bad.group(0)):04X} cannot be written in XML",
                    code="ctf.invalid-character", details={"path": where, "element": tag},
                    hint="correct the record (a control character has no place in it) and export again")
            el.text = value
        return el


def _school_numbers(record: Mapping[str, Any], laestab: str | None) -> tuple[Mapping[str, Any], str]:
    school = record.get("school")
    if not isinstance(school, Mapping):
        raise UsageError("the record names no school, so there is no school MIS to load a CTF into; nothing "
                         "was written", code="ctf.no-school",
                         hint="a CTF goes to the child's school: ask the sender for a record with the school's "
                              "details, or use --csv for the other figures")
    number = laestab or school.get("laestab")
    if not isinstance(number, str) or not re.fullmatch(r"[0-9]{7}", number):
        raise UsageError(f"the record's school (URN {school.get('urn')}) has no DfE number (LAESTAB), which "
                         "every CTF header needs; nothing was written", code="ctf.no-laestab",
                         hint="give the school's 7-digit DfE number with --laestab NNNNNNN (LA code then "
                              "establishment number)")
    return school, number


def build_ctf(record: Mapping[str, Any], *, clock: Clock, version: str = CURRENT_VERSION, laestab: str | None = None,
              sequence: int = 1) -> Ctf:
    """A partial CTF for the pupil of `record`, a validated education-record (1.0.0 or 1.1.0).

    The file goes to the record's school: SourceSchool and DestSchool are both that school (as
    DfE's own MTC service does for the CTFs it gives schools), SupplierID says laxchange made it.
    `laestab` gives the school's DfE number when the record lacks it. `clock` dates the header.
    """
    if version not in CTF_VERSIONS:
        raise UsageError(f"CTF version {version} is not one laxchange writes", code="ctf.version",
                         hint=f"choose one of {', '.join(CTF_VERSIONS)} (the current version and the one before)")
    school, number = _school_numbers(record, laestab)
    b = _Builder()
    root = ET.Element("CTfile")
    now = clock.now().astimezone(ENGLAND)
    _header(b, root, school, number, version, now)
    pupils = b.sub(root, "CTFpupilData")
    _pupil(b, b.sub(pupils, "Pupil"), record, school, number, version)
    b.omitted.extend(_not_in_ctf(record))
    ET.indent(root, space="  ")
    xml = ET.tostring(root, encoding="UTF-8", xml_declaration=True) + b"\n"
    return Ctf(xml=xml, version=version, record_id=str(record.get("record_id")), school_urn=str(school.get("urn")),
               suggested_name=ctf_file_name(number, number, sequence), omitted=b.omitted, notes=b.notes)


def _header(b: _Builder, root: ET.Element, school: Mapping[str, Any], number: str, version: str,
            now: dt.datetime) -> None:
    h = b.sub(root, "Header")
    b.sub(h, "DocumentName", "Common Transfer File")
    b.sub(h, "CTFversion", f"{version}.0")
    b.sub(h, "DateTime", now.strftime("%Y-%m-%dT%H:%M:%S"))
    b.sub(h, "DocumentQualifier", "partial")
    b.sub(h, "SupplierID", SUPPLIER_ID)
    src = b.sub(h, "SourceSchool")
    b.sub(src, "LEA", number[:3])
    b.sub(src, "Estab", number[3:])
    b.sub(src, "URN", school.get("urn"), where="$.school.urn")
    b.sub(src, "SchoolName", school.get("name"), where="$.school.name")
    b.sub(src, "AcademicYear", academic_year(now.date()))
    dest = b.sub(h, "DestSchool")
    b.sub(dest, "LEA", number[:3])
    b.sub(dest, "Estab", number[3:])
    b.sub(dest, "URN", school.get("urn"), where="$.school.urn")


def _pupil(b: _Builder, p: ET.Element, record: Mapping[str, Any], school: Mapping[str, Any], number: str,
           version: str) -> None:
    child = record["child"]
    name = child["legal_name"]
    if child.get("upn"):
        b.sub(p, "UPN", child["upn"], where="$.child.upn")
    else:
        b.omitted.append("$.child.upn_unknown_reason: the CTF carries a UPN only; the MIS will match the pupil "
                         "by name and date of birth")
    if child.get("uln"):
        b.sub(p, "UniqueLearnerNumber", child["uln"], where="$.child.uln")
    b.sub(p, "Surname", name["family"], where="$.child.legal_name.family")
    b.sub(p, "Forename", name["given"], where="$.child.legal_name.given")
    b.sub(p, "DOB", child["date_of_birth"], where="$.child.date_of_birth")
    b.sub(p, _SEX_ELEMENT[version], _SEX[child["gender"]], where="$.child.gender")
    if _SEX[child["gender"]] == "U":
        b.notes.append("$.child.gender: written as U (not known); check the pupil's record in the MIS")
    _basic_details(b, p, child)
    _looked_after(b, p, record)
    _sen(b, p, record.get("sen") or {})
    _contacts(b, p, record)
    _attendance(b, p, record, school, number)
    _assessments(b, p, record.get("attainment") or [])


def _basic_details(b: _Builder, p: ET.Element, child: Mapping[str, Any]) -> None:
    former = child.get("former_upns") or []
    items = [("FormerUPN", former[-1] if former else None, "$.child.former_upns"),
             ("PreferredForename", child.get("preferred_name"), "$.child.preferred_name"),
             ("MiddleNames", child["legal_name"].get("middle"), "$.child.legal_name.middle")]
    present = [(tag, value, where) for tag, value, where in items if value]
    if present:
        d = b.sub(p, "BasicDetails")
        for tag, value, where in present:
            b.sub(d, tag, value, where=where)
    if len(former) > 1:
        b.omitted.append("$.child.former_upns: only the latest former UPN is in the CTF")


def _looked_after(b: _Builder, p: ET.Element, record: Mapping[str, Any]) -> None:
    cohort = record.get("cohort") or "looked-after"
    la = b.sub(p, "LookedAfter")
    if cohort == "looked-after":
        b.sub(la, "InCare", "true")
        b.sub(la, "CareAuthority", record["placement"]["placing_la"], where="$.placement.placing_la")
    else:
        b.sub(la, "InCare", "false")
        b.notes.append(f"$.cohort: {cohort}, so InCare is false and no CareAuthority is given")


def _sen(b: _Builder, p: ET.Element, sen: Mapping[str, Any]) -> None:
    provision = sen.get("provision")
    if provision not in ("K", "E"):
        return  # N: no SEN, so nothing for the MIS's SEN history
    h = b.sub(p, "SENhistory")
    s = b.sub(h, "SEN")
    ehcp = sen.get("ehcp") or {}
    if provision == "E" and ehcp.get("issued_date"):
        b.sub(s, "StartDate", ehcp["issued_date"], where="$.sen.ehcp.issued_date")
    else:
        b.omitted.append("$.sen: the record has no start date for SEN support (SEN/StartDate)")
    b.sub(s, "SENprovision", provision, where="$.sen.provision")
    needs = list(sen.get("need_types") or [])
    primary = sen.get("primary_need")
    if primary in needs:
        needs.remove(primary)
        needs.insert(0, primary)
    if needs:
        n = b.sub(h, "SENneeds")
        for rank, need in enumerate(needs, start=1):
            item = b.sub(n, "SENneed")
            b.sub(item, "SENtype", need, where="$.sen.need_types")
            b.sub(item, "SENtypeRank", rank)


def _split_name(name: str) -> tuple[str | None, str]:
    """(forename, surname) from a contact's one-line name: the surname is the last word."""
    words = name.split()
    if len(words) < 2:
        return None, name.strip()
    return " ".join(words[:-1]), words[-1]


def _contacts(b: _Builder, p: ET.Element, record: Mapping[str, Any]) -> None:
    people = [(record["contacts"]["social_worker"], _RELATIONSHIP_SOCIAL_WORKER, "$.contacts.social_worker"),
              (record["pep"]["vsh_contact"], _RELATIONSHIP_OTHER, "$.pep.vsh_contact")]
    c = b.sub(p, "Contacts")
    for order, (person, relationship, where) in enumerate(people, start=1):
        contact = b.sub(c, "Contact")
        forename, surname = _split_name(person["name"])
        b.sub(contact, "Order", order)
        b.sub(contact, "Surname", surname, where=f"{where}.name")
        if forename:
            b.sub(contact, "Forename", forename, where=f"{where}.name")
        b.sub(contact, "Relationship", relationship)
        b.sub(contact, "Responsibility", "false")
        if person.get("phone"):
            phone = b.sub(b.sub(contact, "Phones"), "Phone")
            b.sub(phone, "TelephoneType", _TELEPHONE_WORK)
            b.sub(phone, "PhoneNo", person["phone"], where=f"{where}.phone")
        if person.get("email"):
            b.sub(contact, "Email", person["email"], where=f"{where}.email")


def _attendance(b: _Builder, p: ET.Element, record: Mapping[str, Any], school: Mapping[str, Any],
                number: str) -> None:
    """One YearData per academic year, summed over the record's periods at this school."""
    start_here = str(school.get("start_date") or "")
    years: dict[int, dict[str, Any]] = {}
    for i, period in enumerate(record.get("attendance") or []):
        if str(period["start"]) < start_here:
            b.omitted.append(f"$.attendance[{i}]: starts before the child joined this school, so the CTF cannot "
                             "say which school it was at")
            continue
        year = academic_year(dt.date.fromisoformat(str(period["start"])))
        y = years.setdefault(year, {"start": period["start"], "possible": 0, "authorised": 0, "attended": 0,
                                    "unauthorised": 0})
        y["start"] = min(str(y["start"]), str(period["start"]))
        y["possible"] += period["sessions_possible"]
        y["authorised"] += period["authorised_absence"]
        y["attended"] += period["sessions_attended"]
        y["unauthorised"] += period["unauthorised_absence"]
    if not years:
        return
    a = b.sub(p, "Attendance")
    for year in sorted(years):
        y = years[year]
        d = b.sub(a, "YearData")
        b.sub(d, "Year", year)
        b.sub(d, "LEA", number[:3])
        b.sub(d, "Estab", number[3:])
        b.sub(d, "SessionsPossible", y["possible"])
        b.sub(d, "SessionsAuthorised", y["authorised"])
        b.sub(d, "SessionsAttended", y["attended"])
        b.sub(d, "SessionsUnauthorised", y["unauthorised"])
        b.sub(d, "AttendanceStartDate", y["start"])


def _assessments(b: _Builder, p: ET.Element, results: Sequence[Mapping[str, Any]]) -> None:
    by_stage: dict[str, list[tuple[int, Mapping[str, Any], str, str]]] = {}
    for i, r in enumerate(results):
        where = f"$.attainment[{i}]"
        subject = _SUBJECTS.get(str(r["subject"]).strip().lower())
        method = _METHODS.get(str(r["kind"]))
        if r["stage"] not in _STAGES:
            b.omitted.append(f"{where}: stage {r['stage']} has no confirmed CTF stage code")
        elif method is None:
            b.omitted.append(f"{where}: a {r['kind']} result has no confirmed CTF method code")
        elif subject is None:
            b.omitted.append(f"{where}: the subject has no CTF subject code in laxchange's table (docs/ctf.md)")
        else:
            by_stage.setdefault(str(r["stage"]), []).append((i, r, subject, method))
    if not by_stage:
        return
    sa = b.sub(p, "StageAssessments")
    for stage in sorted(by_stage):
        ks = b.sub(sa, "KeyStage")
        b.sub(ks, "Stage", stage)
        for i, r, subject, method in by_stage[stage]:
            where = f"$.attainment[{i}]"
            item = b.sub(ks, "StageAssessment")
            b.sub(item, "Locale", "ENG")
            b.sub(item, "Year", str(r["date"])[:4], where=f"{where}.date")
            b.sub(item, "Subject", subject)
            b.sub(item, "Method", method)
            b.sub(item, "ResultStatus", "R")
            b.sub(item, "Result", r["value"], where=f"{where}.value")
            b.sub(item, "ResultDate", r["date"], where=f"{where}.date")


def _not_in_ctf(record: Mapping[str, Any]) -> list[str]:
    """What the CTF has no place for at all (docs/ctf.md, "Not in the CTF")."""
    out = [("$.pep: the PEP itself (targets, actions, the child's voice...) is not part of a CTF; use --csv or the "
           "readable PEP")]
    if record.get("exclusions"):
        out.append("$.exclusions: suspensions and exclusions are not carried by a CTF; use --csv")
    if record["pep"].get("chronology"):
        out.append("$.pep.chronology: the record's settings have URNs but no DfE numbers, so no SchoolHistory "
                   "is written")
    return out


def write_ctf(path: Path, ctf: Ctf, *, force: bool = False, inputs: Sequence[Path] = ()) -> None:
    """Write the file, mode 0600 (it holds personal data), complete or not at all; never over an
    input, and over an existing file only with `force`."""
    fs.check_output(path, inputs=inputs, overwrite=force, what="CTF file")
    try:
        if force and os.path.lexists(path):
            fs.write_atomic(path, ctf.xml, mode=0o600)
        else:
            fs.write_new_atomic(path, ctf.xml, mode=0o600)
    except FileExistsError:
        raise UsageError(f"CTF file {path} already exists; nothing was written", code="output.exists",
                         hint="choose another name, or pass --force to replace it") from None
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}", code="output.unwritable",
                         hint="check the folder exists and you may write to it") from None
