"""Domain rules: what a JSON Schema cannot say.

Check letters and check digits, code lists (DfE LA codes, SSDA903, SEN), date order (nothing
before the child's birth, a PEP review after the PEP), and warnings for what the statutory
guidance discourages (an inadequate school, a PEP older than a term, persistent absence).
Rules run only on structurally valid documents, so they may index fields without guarding
their shape. Every rule id is listed in RULES and documented in docs/validation.md.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from laxchange.clock import Clock
from laxchange.models import codes
from laxchange.validate.identifiers import is_temporary_upn, uln_problem, upn_problem
from laxchange.validate.report import Finding

#: A term is about 13 weeks; a PEP should be reviewed every term (statutory guidance).
TERM_DAYS = 120
#: DfE defines a persistent absentee as missing 10% or more of possible sessions.
PERSISTENT_ABSENCE = 0.10
#: An EHCP is reviewed at least every 12 months (SEND Code of Practice 9.166).
EHCP_REVIEW_DAYS = 366
#: Clock skew tolerated before a timestamp counts as "in the future".
SKEW = dt.timedelta(minutes=5)

RULES: dict[str, str] = {
    "upn.check-letter": "the UPN's check letter matches its digits (DfE algorithm, mod 23)",
    "upn.temporary": "warning: a temporary UPN is in use; the permanent UPN should follow",
    "upn.la-code": "warning: digits 2-4 of a permanent UPN are not a known LA code",
    "uln.check-digit": "the ULN's check digit matches its first nine digits",
    "la.code": "an LA code exists in the DfE list",
    "la.defunct": "warning: an LA code belongs to a council that no longer exists",
    "code.legal-status": "SSDA903 legal status code exists",
    "code.placement-type": "SSDA903 placement type code exists",
    "code.placement-provider": "SSDA903 placement provider code exists",
    "code.category-of-need": "SSDA903 category of need code exists",
    "code.reason-placement-change": "SSDA903 reason for placement change code exists",
    "code.upn-unknown-reason": "SSDA903 UPN unknown reason (UN1-UN5) exists",
    "code.sen-need": "SEN type of need code exists (school census / SEN2)",
    "school.laestab-la": "the LAESTAB's first three digits are the school's LA code",
    "school.ofsted-inadequate": "warning: the placement school is rated inadequate",
    "date.before-birth": "no date in the record is before the child's date of birth",
    "date.range-order": "a period does not end before it starts",
    "record.as-of-future": "the record's as_of date is not in the future",
    "placement.dates-order": "the period of care starts on or before the placement",
    "placement.same-la": "warning: placing and host LA are the same (not an out-of-authority placement)",
    "pep.date-after-as-of": "the PEP is not dated after the record's as_of date",
    "pep.review-date-order": "the next PEP review is after the PEP date",
    "pep.review-interval": "warning: the next review is more than a term after the PEP",
    "pep.stale": "warning: the PEP is older than a term",
    "pep.review-overdue": "warning: the next PEP review date has passed",
    "pep.chronology-order": "the education history is in date order",
    "pep.chronology-reason": "warning: a change of setting has no reason recorded",
    "pep.target-overdue": "warning: an open target was due before the PEP date",
    "pp-plus.academic-year": "the academic year is two consecutive years (2025/26)",
    "pp-plus.overspent": "Pupil Premium Plus spent does not exceed the allocation",
    "sen.provision-needs": "no types of need are recorded for a child with no SEN (N)",
    "sen.need-missing": "warning: SEN support or an EHCP with no type of need recorded",
    "sen.primary-need": "the primary need is one of the recorded types of need",
    "sen.ehcp-provision": "EHCP details are given only with provision E",
    "ehcp.dates-order": "EHCP request, issue, last review and next review dates are in order",
    "ehcp.review-interval": "warning: the next annual review is more than 12 months after the last",
    "ehcp.review-overdue": "warning: the EHCP annual review date has passed",
    "attendance.sum": "sessions attended plus absences equal sessions possible",
    "attendance.persistent-absence": "warning: attendance below 90% (persistent absence)",
    "attainment.range": "an assessment value is in range for its kind",
    "exclusion.sessions": "warning: a suspension without its length in sessions",
    "exclusion.school": "the exclusion's school is the notifying school",
    "exclusion.reintegration-order": "a reintegration meeting is not before the exclusion starts",
    "notification.record-mismatch": "a notification agrees with the record it carries",
    "attachment.duplicate-name": "attachment file names are unique",
    "party.la-code": "a party id LA:NNN names an existing LA",
    "receipt.time-order": "a receipt is processed after it is received",
    "receipt.time-future": "a receipt's times are not in the future",
    "receipt.reason-missing": "a rejection carries a reason code",
    "receipt.stage-status": "an applied receipt accepts the transfer",
}

_DATE_KEYS = frozenset({
    "period_of_care_start", "placement_start", "start_date", "start", "end", "pep_date", "next_review_due",
    "due", "by", "request_date", "issued_date", "last_annual_review", "annual_review_due", "date",
    "respond_by", "reintegration_meeting",
})
_GCSE = frozenset("123456789") | {"U"}


def _earliest_date(node: Any, skip_key: str | None) -> str:
    """The smallest YYYY-MM-DD value of any date field under `node` ("9999-12-31" if none)."""
    earliest = "9999-12-31"
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if isinstance(value, str):
                    if key in _DATE_KEYS and len(value) == 10 and value < earliest and key != skip_key:
                        earliest = value
                elif isinstance(value, (dict, list)):
                    stack.append(value)
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, (dict, list)))
    return earliest


def _d(value: str) -> dt.date:
    return dt.date.fromisoformat(value)


@dataclass
class _Ctx:
    clock: Clock
    findings: list[Finding] = field(default_factory=list)

    def error(self, path: str, rule: str, message: str, hint: str) -> None:
        self.findings.append(Finding("error", path, rule, message, hint))

    def warn(self, path: str, rule: str, message: str, hint: str) -> None:
        self.findings.append(Finding("warning", path, rule, message, hint))

    # -- shared checks -------------------------------------------------------------------
    def upn(self, path: str, upn: str) -> None:
        problem = upn_problem(upn)
        if problem:
            self.error(path, "upn.check-letter", f"{upn} is not a valid UPN: {problem}",
                       "copy the UPN again from the school's MIS; a mistyped digit changes the check letter")
            return
        if is_temporary_upn(upn):
            self.warn(path, "upn.temporary", "a temporary UPN is in use",
                      "replace it with the permanent UPN once the school has it")
        elif upn[1:4] not in codes.la_codes():
            self.warn(path, "upn.la-code", f"digits 2-4 of the UPN ({upn[1:4]}) are not a known LA code",
                      "check the UPN with the issuing school")

    def la(self, path: str, code: str) -> None:
        known = codes.la_codes().get(code)
        if known is None:
            self.error(path, "la.code", f"{code} is not a DfE local authority code",
                       "use the 3-digit code from the DfE list (`laxchange schema show common` lists the source)")
        elif known.status != "active":
            self.warn(path, "la.defunct", f"{code} ({known.description}) is no longer an active LA",
                      "use the code of the council that now covers the area")

    def code(self, path: str, rule: str, value: str, table: dict[str, codes.Code], what: str) -> None:
        if value not in table:
            sample = ", ".join(sorted(table)[:12])
            self.error(path, rule, f"{value!r} is not a {what} code",
                       f"use one of: {sample}{'…' if len(table) > 12 else ''}")

    def dates_after_birth(self, node: Any, path: str, dob: dt.date, skip: str) -> None:
        """Every date field under `node` is on or after the date of birth.

        A fast pass finds the earliest date without building paths (ISO dates order as strings);
        only when one is too early does the slow pass find where, so valid records stay cheap.
        """
        if _earliest_date(node, skip_key="date_of_birth" if skip else None) >= dob.isoformat():
            return
        self._dates_after_birth(node, path, dob, skip)

    def _dates_after_birth(self, node: Any, path: str, dob: dt.date, skip: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                p = f"{path}.{key}"
                if p == skip:
                    continue
                if key in _DATE_KEYS and isinstance(value, str) and len(value) == 10:
                    if _d(value) < dob:
                        self.error(p, "date.before-birth", f"{value} is before the child's date of birth ({dob})",
                                   "check the year of this date and of the date of birth")
                else:
                    self._dates_after_birth(value, p, dob, skip)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                self._dates_after_birth(item, f"{path}[{i}]", dob, skip)

    def range_order(self, path: str, start: str | None, end: str | None, start_key: str = "start",
                    end_key: str = "end") -> None:
        if start and end and _d(end) < _d(start):
            self.error(f"{path}.{end_key}", "date.range-order", f"ends ({end}) before it starts ({start})",
                       f"check {start_key} and {end_key}")


# -- the education record ---------------------------------------------------------------------

def _record(c: _Ctx, r: dict[str, Any], p: str) -> None:
    child, placement, pep, sen = r["child"], r["placement"], r["pep"], r["sen"]
    as_of = _d(r["as_of"])
    dob = _d(child["date_of_birth"])

    if as_of > c.clock.today() + dt.timedelta(days=1):
        c.error(f"{p}.as_of", "record.as-of-future", f"as_of {as_of} is in the future",
                "as_of is the date the record was produced; check the system clock and the export")

    # identity
    if "upn" in child:
        c.upn(f"{p}.child.upn", child["upn"])
    if "upn_unknown_reason" in child:
        c.code(f"{p}.child.upn_unknown_reason", "code.upn-unknown-reason", child["upn_unknown_reason"],
               codes.ssda903("upn_unknown_reasons"), "SSDA903 UPN unknown reason")
    for i, former in enumerate(child.get("former_upns", [])):
        c.upn(f"{p}.child.former_upns[{i}]", former)
    if "uln" in child and (problem := uln_problem(child["uln"])):
        c.error(f"{p}.child.uln", "uln.check-digit", f"{child['uln']} is not a valid ULN: {problem}",
                "copy the ULN again from the Learner Records Service")
    c.la(f"{p}.child.home_la", child["home_la"])
    c.dates_after_birth(r, p, dob, skip=f"{p}.child.date_of_birth")

    # placement
    pp = f"{p}.placement"
    c.code(f"{pp}.legal_status", "code.legal-status", placement["legal_status"],
           codes.ssda903("legal_status"), "SSDA903 legal status")
    c.code(f"{pp}.placement_type", "code.placement-type", placement["placement_type"],
           codes.ssda903("placement_type"), "SSDA903 placement type")
    if "placement_provider" in placement:
        c.code(f"{pp}.placement_provider", "code.placement-provider", placement["placement_provider"],
               codes.ssda903("placement_provider"), "SSDA903 placement provider")
    if "category_of_need" in placement:
        c.code(f"{pp}.category_of_need", "code.category-of-need", placement["category_of_need"],
               codes.ssda903("category_of_need"), "SSDA903 category of need")
    if "reason_for_change" in placement:
        c.code(f"{pp}.reason_for_change", "code.reason-placement-change", placement["reason_for_change"],
               codes.ssda903("reason_placement_change"), "SSDA903 reason for placement change")
    c.la(f"{pp}.placing_la", placement["placing_la"])
    c.la(f"{pp}.host_la", placement["host_la"])
    if _d(placement["placement_start"]) < _d(placement["period_of_care_start"]):
        c.error(f"{pp}.placement_start", "placement.dates-order",
                f"placement starts ({placement['placement_start']}) before the period of care "
                f"({placement['period_of_care_start']})", "check both dates against the SSDA903 return")

    # school
    school = r.get("school")
    if school:
        sp = f"{p}.school"
        c.la(f"{sp}.la_code", school["la_code"])
        if "laestab" in school and school["laestab"][:3] != school["la_code"]:
            c.error(f"{sp}.laestab", "school.laestab-la",
                    f"LAESTAB {school['laestab']} starts with {school['laestab'][:3]}, "
                    f"not the school's LA {school['la_code']}",
                    "the DfE number is the LA code followed by the establishment number; check both")
        if school.get("ofsted_rating") == "inadequate":
            c.warn(f"{sp}.ofsted_rating", "school.ofsted-inadequate", "the placement school is rated inadequate",
                   "statutory guidance: a looked-after child should not be placed in a school rated "
                   "inadequate unless the VSH agrees it is in the child's interest; record why in the PEP")

    _pep(c, pep, f"{p}.pep", as_of)
    _sen(c, sen, f"{p}.sen", as_of)

    for i, a in enumerate(r.get("attainment", [])):
        _assessment(c, a, f"{p}.attainment[{i}]")
    for i, a in enumerate(r.get("attendance", [])):
        _attendance(c, a, f"{p}.attendance[{i}]")
    for i, e in enumerate(r.get("exclusions", [])):
        _exclusion(c, e, f"{p}.exclusions[{i}]")


def _pep(c: _Ctx, pep: dict[str, Any], p: str, as_of: dt.date) -> None:
    pep_date, review = _d(pep["pep_date"]), _d(pep["next_review_due"])
    if pep_date > as_of:
        c.error(f"{p}.pep_date", "pep.date-after-as-of",
                f"the PEP is dated {pep_date}, after the record's as_of {as_of}",
                "a record cannot hold a PEP from its future; check the PEP date")
    if review <= pep_date:
        c.error(f"{p}.next_review_due", "pep.review-date-order",
                f"next review {review} is not after the PEP date {pep_date}",
                "set the next review after the PEP meeting (PEPs are reviewed each term)")
    elif (review - pep_date).days > TERM_DAYS + 30:
        c.warn(f"{p}.next_review_due", "pep.review-interval",
               f"next review is {(review - pep_date).days} days after the PEP",
               "statutory guidance: review the PEP every term")
    if (as_of - pep_date).days > TERM_DAYS:
        c.warn(f"{p}.pep_date", "pep.stale", f"the PEP is {(as_of - pep_date).days} days old (older than a term)",
               "hold a PEP review before or soon after the move and send the updated PEP")
    if review < as_of:
        c.warn(f"{p}.next_review_due", "pep.review-overdue", f"the review due {review} has passed",
               "arrange the PEP review with the new school's Designated Teacher")

    previous: dt.date | None = None
    chronology = pep["chronology"]
    for i, entry in enumerate(chronology):
        ep = f"{p}.chronology[{i}]"
        c.range_order(ep, entry["start"], entry.get("end"))
        start = _d(entry["start"])
        if previous is not None and start < previous:
            c.error(f"{ep}.start", "pep.chronology-order", f"starts {start}, before the previous entry ({previous})",
                    "list the education history oldest first")
        previous = start
        if i < len(chronology) - 1 and not entry.get("reason_for_change"):
            c.warn(f"{ep}.reason_for_change", "pep.chronology-reason", "a change of setting has no reason recorded",
                   "the PEP chronology should say why each change of school happened")

    for key in ("short_term_targets", "long_term_targets"):
        for i, t in enumerate(pep.get(key, [])):
            if t.get("status", "not-started") in ("not-started", "in-progress") and _d(t["due"]) < pep_date:
                c.warn(f"{p}.{key}[{i}].due", "pep.target-overdue",
                       f"an open target was due {t['due']}, before this PEP ({pep_date})",
                       "review the target: mark it achieved or not achieved, or set a new date")

    ppp = pep.get("pupil_premium_plus")
    if ppp:
        year = ppp["academic_year"]
        first, second = int(year[:4]), int(year[5:])
        if (first + 1) % 100 != second:
            c.error(f"{p}.pupil_premium_plus.academic_year", "pp-plus.academic-year",
                    f"{year} is not an academic year", f"write it as {first}/{(first + 1) % 100:02d}")
        spent = ppp.get("spent_to_date_gbp")
        if spent is not None and spent > ppp["allocation_gbp"]:
            c.error(f"{p}.pupil_premium_plus.spent_to_date_gbp", "pp-plus.overspent",
                    f"spent £{spent:,.2f} of an allocation of £{ppp['allocation_gbp']:,.2f}",
                    "check both figures with the virtual school")


def _sen(c: _Ctx, sen: dict[str, Any], p: str, as_of: dt.date) -> None:
    needs = sen.get("need_types", [])
    table = codes.sen("sen_type")
    for i, need in enumerate(needs):
        c.code(f"{p}.need_types[{i}]", "code.sen-need", need, table, "SEN type of need")
    if "primary_need" in sen:
        c.code(f"{p}.primary_need", "code.sen-need", sen["primary_need"], table, "SEN type of need")
        if needs and sen["primary_need"] not in needs:
            c.error(f"{p}.primary_need", "sen.primary-need", f"{sen['primary_need']} is not among need_types",
                    "add it to need_types, or correct the primary need")
    provision = sen["provision"]
    if provision == "N" and (needs or "primary_need" in sen):
        c.error(f"{p}.need_types", "sen.provision-needs", "types of need are recorded but provision is N (no SEN)",
                "set provision to K (SEN support) or E (EHCP), or remove the needs")
    if provision in ("K", "E") and not needs:
        c.warn(f"{p}.need_types", "sen.need-missing", f"provision {provision} with no type of need recorded",
               "record the child's types of need so the new school can plan support")
    ehcp = sen.get("ehcp")
    if ehcp and provision != "E":
        c.error(f"{p}.ehcp", "sen.ehcp-provision", f"EHCP details are given but provision is {provision}",
                "set provision to E, or remove the EHCP details if the plan has ceased")
    if ehcp:
        ep = f"{p}.ehcp"
        c.la(f"{ep}.maintaining_la", ehcp["maintaining_la"])
        order = [(k, _d(ehcp[k])) for k in ("request_date", "issued_date", "last_annual_review") if ehcp.get(k)]
        for (k1, d1), (k2, d2) in itertools.pairwise(order):
            if d2 < d1:
                c.error(f"{ep}.{k2}", "ehcp.dates-order", f"{k2} {d2} is before {k1} {d1}",
                        "EHCP dates run request → issue → annual reviews")
        due = _d(ehcp["annual_review_due"])
        last_key, last = order[-1]
        if due <= last:
            c.error(f"{ep}.annual_review_due", "ehcp.dates-order",
                    f"annual review due {due} is not after {last_key} {last}",
                    "the next annual review follows the last review (or the issue date)")
        elif (due - last).days > EHCP_REVIEW_DAYS:
            c.warn(f"{ep}.annual_review_due", "ehcp.review-interval",
                   f"annual review due {(due - last).days} days after {last_key}",
                   "an EHCP must be reviewed at least every 12 months")
        if due < as_of:
            c.warn(f"{ep}.annual_review_due", "ehcp.review-overdue", f"the annual review due {due} has passed",
                   "ask the maintaining LA for the review outcome")


_INT = re.compile(r"^[0-9]{1,3}$")


def _assessment(c: _Ctx, a: dict[str, Any], p: str) -> None:
    kind, value = a["kind"], a["value"]
    bad: str | None = None
    if kind == "scaled-score":
        if not _INT.match(value) or not 80 <= int(value) <= 120:
            bad = "a KS2 scaled score is a whole number from 80 to 120"
    elif kind == "gcse-grade":
        if value not in _GCSE:
            bad = "a GCSE grade is 9 to 1, or U"
    elif kind == "phonics-mark" and (not _INT.match(value) or not 0 <= int(value) <= 40):
        bad = "a phonics screening mark is a whole number from 0 to 40"
    if bad:
        c.error(f"{p}.value", "attainment.range", f"{value!r} is out of range for {kind}", bad)


def _attendance(c: _Ctx, a: dict[str, Any], p: str) -> None:
    c.range_order(p, a["start"], a["end"])
    possible = a["sessions_possible"]
    total = a["sessions_attended"] + a["authorised_absence"] + a["unauthorised_absence"]
    if total != possible:
        c.error(f"{p}.sessions_possible", "attendance.sum",
                f"attended + authorised + unauthorised = {total}, but sessions_possible is {possible}",
                "copy all four figures from the same attendance report")
    elif possible and (possible - a["sessions_attended"]) / possible >= PERSISTENT_ABSENCE:
        pct = 100 * a["sessions_attended"] / possible
        c.warn(f"{p}.sessions_attended", "attendance.persistent-absence", f"attendance is {pct:.1f}%",
               "persistent absence (below 90%): plan support for attendance in the PEP")


def _exclusion(c: _Ctx, e: dict[str, Any], p: str) -> None:
    if e["kind"] == "suspension" and "sessions" not in e:
        c.warn(f"{p}.sessions", "exclusion.sessions", "a suspension without its length in sessions",
               "record how many sessions the suspension lasted")


# -- messages ---------------------------------------------------------------------------------

def _party(c: _Ctx, path: str, party: str) -> None:
    if party.startswith("LA:") and party[3:] not in codes.la_codes():
        c.error(path, "party.la-code", f"{party} names no DfE local authority", "use LA:NNN with a DfE LA code")


def _placement_notification(c: _Ctx, doc: dict[str, Any]) -> None:
    c.la("$.placing_la", doc["placing_la"])
    c.la("$.host_la", doc["host_la"])
    for i, party in enumerate(doc["recipients"]):
        _party(c, f"$.recipients[{i}]", party)
    placement = doc["record"]["placement"]
    for key in ("placing_la", "host_la", "placement_start"):
        if doc[key] != placement[key]:
            c.error(f"$.{key}", "notification.record-mismatch",
                    f"{doc[key]} differs from the record's placement.{key} ({placement[key]})",
                    "the notification and the record it carries must describe the same placement")
    if doc["placing_la"] == doc["host_la"]:
        c.warn("$.host_la", "placement.same-la", "placing and host LA are the same",
               "a placement notification is for out-of-authority placements; check the host LA")
    _record(c, doc["record"], "$.record")


def _pep_transfer(c: _Ctx, doc: dict[str, Any]) -> None:
    seen: dict[str, int] = {}
    for i, att in enumerate(doc.get("attachments", [])):
        name = att["filename"].lower()
        if name in seen:
            c.error(f"$.attachments[{i}].filename", "attachment.duplicate-name",
                    f"{att['filename']!r} is already attachments[{seen[name]}]", "give each attachment its own name")
        seen.setdefault(name, i)
    _record(c, doc["record"], "$.record")


def _exclusion_notice(c: _Ctx, doc: dict[str, Any]) -> None:
    child, exclusion = doc["child"], doc["exclusion"]
    c.la("$.responsible_la", doc["responsible_la"])
    if "upn" in child:
        c.upn("$.child.upn", child["upn"])
    dob = _d(child["date_of_birth"])
    c.dates_after_birth({"exclusion": exclusion, "reintegration_meeting": doc.get("reintegration_meeting")},
                        "$", dob, skip="")
    if exclusion.get("school_urn") and exclusion["school_urn"] != doc["school_urn"]:
        c.error("$.exclusion.school_urn", "exclusion.school",
                f"{exclusion['school_urn']} differs from the notifying school {doc['school_urn']}",
                "an exclusion notice comes from the school that excluded the child")
    meeting = doc.get("reintegration_meeting")
    if meeting and _d(meeting) < _d(exclusion["start_date"]):
        c.error("$.reintegration_meeting", "exclusion.reintegration-order",
                f"reintegration meeting {meeting} is before the exclusion starts ({exclusion['start_date']})",
                "check the meeting date")
    _exclusion(c, exclusion, "$.exclusion")


def _receipt(c: _Ctx, doc: dict[str, Any]) -> None:
    received = dt.datetime.fromisoformat(doc["received_at"].replace("Z", "+00:00"))
    now = c.clock.now()
    if received.tzinfo is not None and received > now + SKEW:
        c.error("$.received_at", "receipt.time-future", f"received_at {doc['received_at']} is in the future",
                "check the sender's clock")
    if doc.get("processed_at"):
        processed = dt.datetime.fromisoformat(doc["processed_at"].replace("Z", "+00:00"))
        if (processed.tzinfo is None) == (received.tzinfo is None) and processed < received:
            c.error("$.processed_at", "receipt.time-order", "processed before it was received",
                    "check processed_at and received_at")
    if doc["status"] == "rejected" and not doc.get("reason_code"):
        c.error("$.reason_code", "receipt.reason-missing", "a rejection without a reason code",
                "say why the transfer was rejected so the sender can fix it")
    if doc.get("stage") == "applied" and doc["status"] != "accepted":
        c.error("$.stage", "receipt.stage-status", "an applied receipt must have status accepted",
                "send a rejection as a delivered-stage receipt with status rejected and a reason code")


_CHECKS = {
    "education-record": lambda c, doc: _record(c, doc, "$"),
    "placement-notification": _placement_notification,
    "pep-transfer": _pep_transfer,
    "exclusion-notice": _exclusion_notice,
    "receipt": _receipt,
}


def check(doc: Any, name: str, version: str, *, clock: Clock) -> Iterator[Finding]:
    """All domain findings for a structurally valid document of schema `name`."""
    ctx = _Ctx(clock)
    rule = _CHECKS.get(name)
    if rule is not None:
        rule(ctx, doc)
    return iter(ctx.findings)
