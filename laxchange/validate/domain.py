"""Domain rules: what a JSON Schema cannot say.

Check letters and check digits, code lists (DfE LA codes, SSDA903, SEN), date order (nothing
before the child's birth, a PEP review after the PEP), and warnings for what the statutory
guidance discourages (an inadequate school, a PEP older than a term, persistent absence).
Rules run only on structurally valid documents, so they may index fields without guarding
their shape. Every rule id is listed in RULES and documented in docs/validation.md.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from laxchange._util.timefmt import weekdays
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
    "attendance.possible": "no more sessions possible than twice the weekdays of the period (warning)",
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
    # education-record 1.1.0 and the messages embedding it
    "cohort.placement-duties": "placement duties (a placement notification, an emergency placement) are for a "
                               "child looked after",
    "pep.complete-named-person": "a complete or quality-assured PEP names its named person",
    "pep.complete-distribution": "a complete or quality-assured PEP says who it was distributed to",
    "pep.status-dates": "PEP completion and quality-assurance dates are in order, from the PEP date to as_of",
    "pep.status-rag": "a RAG rating comes with quality assurance",
    "pep.next-meeting-order": "the next PEP meeting is after the PEP date",
    "pep.next-meeting-late": "warning: the next PEP meeting is after the review is due",
    "pep.distribution-date": "the PEP is distributed on or after its date and not after as_of",
    "pp-plus.pence-mismatch": "Pupil Premium Plus pounds and pence agree to the penny",
    "no-place.dates": "a child has no school place since a date not after as_of",
    "no-place.school": "a child without a school place is not also attending the placement school",
    "absence.dates": "an absence of more than 10 days starts by as_of and fits its dates",
    "exclusion.permanent-dates": "governors' meeting and appeal dates belong to a permanent exclusion",
    "exclusion.dates-order": "exclusion meetings and appeal are not before the exclusion, appeal not before "
                             "the governors' meeting",
    "exclusion.reintegration-mismatch": "an exclusion notice gives one reintegration meeting date",
    "exclusion.cohort-contacts": "warning: a notice for a child with a social worker names the social worker "
                                 "and the designated safeguarding lead",
}

#: Cohorts (education-record 1.1.0 `cohort`) that are not children looked after; absent means looked after.
_NOT_LOOKED_AFTER = frozenset({"previously-looked-after", "child-in-need", "child-protection"})
#: Cohorts whose exclusion notices go to the social worker and the designated safeguarding lead (seed 003).
_WITH_SOCIAL_WORKER = frozenset({"child-in-need", "child-protection"})

_DATE_KEYS = frozenset({
    "period_of_care_start", "placement_start", "start_date", "start", "end", "pep_date", "next_review_due",
    "due", "by", "request_date", "issued_date", "last_annual_review", "annual_review_due", "date",
    "respond_by", "reintegration_meeting",
    # 1.1.0
    "since", "completed_on", "quality_assured_on", "next_meeting", "governors_meeting", "appeal_date",
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
    if placement.get("emergency_placement") and r.get("cohort") in _NOT_LOOKED_AFTER:
        c.error(f"{pp}.emergency_placement", "cohort.placement-duties",
                f"an emergency placement is recorded for a child whose cohort is {r['cohort']}",
                "an emergency placement makes the child looked after: set cohort to looked-after, "
                "or remove emergency_placement")

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
        _exclusion_dates(c, e, f"{p}.exclusions[{i}]")
    _no_school_place(c, r, p, as_of)
    for i, a in enumerate(r.get("extended_absences", [])):
        _extended_absence(c, a, f"{p}.extended_absences[{i}]", as_of)


def _no_school_place(c: _Ctx, r: dict[str, Any], p: str, as_of: dt.date) -> None:
    gap = r.get("no_school_place")
    if not gap:
        return
    since = _d(gap["since"])
    if since > as_of:
        c.error(f"{p}.no_school_place.since", "no-place.dates", f"no school place since {since}, after as_of {as_of}",
                "give the date the child was last on a school roll (or left it)")
    school = r.get("school")
    if school and since <= as_of and _d(school["start_date"]) <= as_of and _d(school["start_date"]) >= since:
        c.error(f"{p}.no_school_place", "no-place.school",
                f"the child has attended {school['name']} since {school['start_date']} but is recorded as having "
                f"no school place since {since}",
                "remove no_school_place once a place is taken up, or correct school.start_date")


def _extended_absence(c: _Ctx, a: dict[str, Any], p: str, as_of: dt.date) -> None:
    c.range_order(p, a["start"], a.get("end"))
    start = _d(a["start"])
    if start > as_of:
        c.error(f"{p}.start", "absence.dates", f"the absence starts {start}, after as_of {as_of}",
                "record an absence once it has begun")
        return
    end = _d(a["end"]) if a.get("end") else as_of
    if end >= start and a["school_days"] > (end - start).days + 1:
        c.error(f"{p}.school_days", "absence.dates",
                f"{a['school_days']} school days do not fit between {start} and {end}",
                "count school days absent within the absence's dates")


def _exclusion_dates(c: _Ctx, e: dict[str, Any], p: str) -> None:
    start = _d(e["start_date"])
    if e["kind"] != "permanent-exclusion":
        for key in ("governors_meeting", "appeal_date"):
            if e.get(key):
                c.error(f"{p}.{key}", "exclusion.permanent-dates", f"{key} is given for a {e['kind']}",
                        "governors' meetings and appeals (independent review) follow a permanent exclusion; "
                        "check the kind")
    if e.get("reintegration_meeting") and _d(e["reintegration_meeting"]) < start:
        c.error(f"{p}.reintegration_meeting", "exclusion.reintegration-order",
                f"reintegration meeting {e['reintegration_meeting']} is before the exclusion starts ({start})",
                "check the meeting date")
    for key in ("governors_meeting", "appeal_date"):
        if e.get(key) and _d(e[key]) < start:
            c.error(f"{p}.{key}", "exclusion.dates-order", f"{key} {e[key]} is before the exclusion starts ({start})",
                    "check the date")
    if e.get("governors_meeting") and e.get("appeal_date") and _d(e["appeal_date"]) < _d(e["governors_meeting"]):
        c.error(f"{p}.appeal_date", "exclusion.dates-order",
                f"the appeal {e['appeal_date']} is before the governors' meeting {e['governors_meeting']}",
                "an appeal (independent review) follows the governors' decision")


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
        _pp_plus_money(c, ppp, f"{p}.pupil_premium_plus")
    _pep_v11(c, pep, p, as_of)


def pence_from_gbp(value: float) -> int:
    """A 1.0.0 pounds float as pence: round half up to the nearest penny (docs/schemas.md)."""
    return int(decimal.Decimal(repr(value)).scaleb(2).quantize(decimal.Decimal(1), rounding=decimal.ROUND_HALF_UP))


def _pp_plus_money(c: _Ctx, ppp: dict[str, Any], p: str) -> None:
    """Pence win over the deprecated pound floats; where both are given they must agree."""
    amounts: dict[str, int | None] = {}
    for base in ("allocation", "spent_to_date"):
        gbp, pence = ppp.get(f"{base}_gbp"), ppp.get(f"{base}_pence")
        if gbp is not None and pence is not None and pence_from_gbp(gbp) != pence:
            c.error(f"{p}.{base}_pence", "pp-plus.pence-mismatch",
                    f"{base}_pence {pence} differs from {base}_gbp {gbp} (= {pence_from_gbp(gbp)} pence)",
                    f"the pence are authoritative: set {base}_gbp to {pence / 100:.2f}, or correct the pence")
        amounts[base] = pence if pence is not None else (pence_from_gbp(gbp) if gbp is not None else None)
    spent, allocation = amounts["spent_to_date"], amounts["allocation"]
    if spent is not None and allocation is not None and spent > allocation:
        key = "spent_to_date_pence" if "spent_to_date_pence" in ppp else "spent_to_date_gbp"
        c.error(f"{p}.{key}", "pp-plus.overspent",
                f"spent £{spent / 100:,.2f} of an allocation of £{allocation / 100:,.2f}",
                "check both figures with the virtual school")


def _pep_v11(c: _Ctx, pep: dict[str, Any], p: str, as_of: dt.date) -> None:
    """The PEP members added in education-record 1.1.0: status, named person, distribution, next meeting."""
    pep_date = _d(pep["pep_date"])
    if pep.get("next_meeting"):
        meeting = _d(pep["next_meeting"])
        if meeting <= pep_date:
            c.error(f"{p}.next_meeting", "pep.next-meeting-order",
                    f"the next PEP meeting {meeting} is not after the PEP date {pep_date}",
                    "give the date of the next meeting, after this PEP")
        elif meeting > _d(pep["next_review_due"]):
            c.warn(f"{p}.next_meeting", "pep.next-meeting-late",
                   f"the next PEP meeting {meeting} is after the review is due ({pep['next_review_due']})",
                   "book the meeting by the review date (PEPs are reviewed each term)")
    for i, d in enumerate(pep.get("distribution", [])):
        when = _d(d["date"])
        if when < pep_date or when > as_of:
            c.error(f"{p}.distribution[{i}].date", "pep.distribution-date",
                    f"distributed on {when}, outside the PEP date {pep_date} to as_of {as_of}",
                    "record the date the completed PEP was sent")
    status = pep.get("status")
    if not status:
        return
    sp = f"{p}.status"
    state = status["state"]
    if state in ("complete", "quality-assured"):
        if not pep.get("named_person"):
            c.error(f"{p}.named_person", "pep.complete-named-person", f"a {state} PEP does not name its named person",
                    "add pep.named_person: who manages the PEP day to day (name, role, e-mail or phone)")
        if not pep.get("distribution"):
            c.error(f"{p}.distribution", "pep.complete-distribution", f"a {state} PEP does not say who it was sent to",
                    "add pep.distribution: the child, parents, carers, IRO and others who received it, with dates")
    if state == "quality-assured" and not status.get("quality_assured_on"):
        c.error(f"{sp}.quality_assured_on", "pep.status-dates", "a quality-assured PEP without the date of its "
                "quality assurance", "add status.quality_assured_on (and quality_assured_by)")
    if status.get("rag") and state != "quality-assured":
        c.error(f"{sp}.rag", "pep.status-rag", f"a RAG rating on a {state} PEP",
                "the virtual school rates a PEP when it quality-assures it: set state quality-assured, or drop rag")
    previous: tuple[str, dt.date] = ("pep_date", pep_date)
    for key in ("completed_on", "quality_assured_on"):
        if not status.get(key):
            continue
        when = _d(status[key])
        if when < previous[1]:
            c.error(f"{sp}.{key}", "pep.status-dates", f"{key} {when} is before {previous[0]} {previous[1]}",
                    "a PEP is completed after its meeting and quality-assured after completion")
        elif when > as_of:
            c.error(f"{sp}.{key}", "pep.status-dates", f"{key} {when} is after the record's as_of {as_of}",
                    "a record cannot report a step from its future; check the date")
        previous = (key, when)


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
    most = 2 * weekdays(_d(a["start"]), _d(a["end"]))  # a morning and an afternoon a school day, at most
    if a["start"] and a["end"] and possible > most:
        c.warn(f"{p}.sessions_possible", "attendance.possible",
               f"{possible} sessions possible from {a['start']} to {a['end']}, which has {most // 2} weekdays: "
               f"at most {most}", "check the period's dates and figures against the school's attendance report")
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
    if doc["record"].get("cohort") in _NOT_LOOKED_AFTER:
        c.error("$.record.cohort", "cohort.placement-duties",
                f"a placement notification for a child whose cohort is {doc['record']['cohort']}",
                "placement notifications (and the Designated Teacher's 48-hour duty) are for children looked "
                "after; send a pep-transfer for a previously looked-after child or a child with a social worker")
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
    _exclusion_dates(c, exclusion, "$.exclusion")
    inner = exclusion.get("reintegration_meeting")
    if meeting and inner and inner != meeting:
        c.error("$.exclusion.reintegration_meeting", "exclusion.reintegration-mismatch",
                f"exclusion.reintegration_meeting {inner} differs from reintegration_meeting {meeting}",
                "give the date once (the notice's reintegration_meeting), or make them agree")
    if doc.get("cohort") in _WITH_SOCIAL_WORKER:
        missing = [k for k in ("social_worker", "designated_safeguarding_lead") if not doc.get(k)]
        if missing:
            c.warn(f"$.{missing[0]}", "exclusion.cohort-contacts",
                   f"a notice for a child with cohort {doc['cohort']} without {' or '.join(missing)}",
                   "exclusion notices for children with a social worker go to the social worker and the "
                   "designated safeguarding lead: name them so the notice can be routed")


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
