"""The VSH's job and the Designated Teacher's: notify a placement, report an exclusion.

`notify_placement` turns one education record into one package per recipient: a
`placement-notification` for the host council's virtual school and a `pep-transfer` (with any
attachments, e.g. a signed PEP PDF) for the placement school's Designated Teacher. Each message
carries the record only as that recipient's **data-minimisation profile** (`PROFILES`, the one
place the rules live; docs/minimisation.md shows them and a test proves the two agree) lets it.
A recipient the record does not name (a school that is not the placement school, a council that
is not the host council) is refused before anything is packed.

`notify_placements` is council IT's form: many placements at once (`Placement`s, or the lines
of a JSON Lines file, `read_placements`), each checked on its own, every package written and
fsynced together and then queued in one ledger transaction (`_commit`).

`notify_exclusion` is the school's side: an `exclusion-notice` to the responsible VSH.

Packages wait in the home's outbox as `<transfer id>.lax` (never a name with personal data in
it), queued in the ledger with the purpose and a pseudonymous reference (the record's random
`record_id`) in the audit entry, and are sent at once unless `send=False` (then the nightly run
sends them).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import mimetypes
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import Any

from laxchange import package
from laxchange._util import jsonio, timefmt
from laxchange._util.fs import digest_stream, fsync_dir, open_regular, private_dirs, write_new_files
from laxchange._util.jsonio import copy_tree
from laxchange._util.workers import ordered_map
from laxchange.errors import InvalidData, LaxError, UsageError
from laxchange.exchange.party import Party, log_queued
from laxchange.ledger.states import Outbound
from laxchange.models import messages
from laxchange.models.record import EducationRecord
from laxchange.models.wrap import wrap_record
from laxchange.trust.keystore import check_party
from laxchange.validate import validate_document

__all__ = [
    "BATCH_CHUNK", "PLACEMENT_KEYS", "PROFILES", "REASONS", "WITHHELD", "BatchItem", "BatchResult", "Notified",
    "NotifyResult", "Placement", "Profile", "Rule", "Treatment", "apply_profile", "build_exclusion_notice",
    "build_placement_messages", "check_recipients", "notify_exclusion", "notify_placement", "notify_placements",
    "profile_for", "profile_table", "read_placements", "record_fields",
]

#: The reasons a placement notification (and its PEP transfer) can give.
REASONS: tuple[str, ...] = tuple(r.value for r in messages.NotificationReason)

#: What a required field the recipient may not see holds instead (the schema needs a value there).
WITHHELD = ("[withheld: not shared with this recipient under laxchange's data-minimisation profile; "
            "ask the placing virtual school]")

MAX_PURPOSE = 500


class Treatment(str, Enum):
    """What a profile does with one field of the record."""

    shared = "shared"            # copied as it is
    omitted = "omitted"          # left out (optional fields only)
    withheld = "withheld"        # required by the schema: kept, its content replaced by WITHHELD
    current = "current"          # the chronology: the current school's entry only, without the reason

    @property
    def label(self) -> str:
        return {"shared": "yes", "omitted": "no", "withheld": "withheld (the schema requires it: a marker instead)",
                "current": "current school only"}[self.value]


@dataclass(frozen=True)
class Rule:
    path: str
    treatment: Treatment
    why: str


@dataclass(frozen=True)
class Profile:
    """Which fields of the record one recipient role gets, and why."""

    role: str
    title: str
    message_type: str
    recipient_prefix: str  # "LA:" or "URN:"
    rules: tuple[Rule, ...]

    def rule(self, path: str) -> Rule | None:
        return self._by_path.get(path)

    @cached_property
    def _by_path(self) -> dict[str, Rule]:
        """The first rule for each path (`rule` is asked for every field of every record notified)."""
        out: dict[str, Rule] = {}
        for r in self.rules:
            out.setdefault(r.path, r)
        return out

    def shared_paths(self) -> list[str]:
        return [r.path for r in self.rules if r.treatment is not Treatment.omitted]


#: Record sections whose fields the profiles decide one by one; every other section is all or nothing.
SPLIT: tuple[str, ...] = ("child", "placement", "pep", "sen", "contacts")

_S, _O, _W, _C = Treatment.shared, Treatment.omitted, Treatment.withheld, Treatment.current

_ID = "identifies the child (with the date of birth and UPN) so the recipient can match its own records"
_HOST = "host-virtual-school"
_DT = "designated-teacher"

# Each row: path, host virtual school's treatment and why, Designated Teacher's treatment and why.
# The host virtual school supports the placing VSH (school place, admissions, local services) but
# the placing council keeps the duty to promote the child's education and owns the PEP (statutory
# guidance "Promoting the education of looked-after children", DfE 2018); the Designated Teacher
# uses the PEP day to day in school (statutory guidance "The designated teacher for looked-after
# children", DfE 2018). UK GDPR Art. 5(1)(c): adequate, relevant and limited to what is necessary.
_TABLE: tuple[tuple[str, Treatment, str, Treatment, str], ...] = (
    ("record_id", _S, "random id of the record, no personal data; lets both sides refer to what was sent",
     _S, "random id of the record, no personal data; lets both sides refer to what was sent"),
    ("as_of", _S, "the date the record describes", _S, "the date the record describes"),
    ("child.legal_name", _S, _ID, _S, _ID),
    ("child.preferred_name", _O, "not needed to match the child or support the placement",
     _S, "staff use the name the child prefers"),
    ("child.date_of_birth", _S, _ID, _S, _ID),
    ("child.gender", _S, "required by the schema; needed for school admissions", _S, "school admission and census"),
    ("child.upn", _S, "the national pupil identifier: matches school records and admissions",
     _S, "the school's MIS and census key the child by UPN"),
    ("child.upn_unknown_reason", _S, "why there is no UPN (given instead of it)",
     _S, "why there is no UPN, so the school can allocate one"),
    ("child.former_upns", _O, "history not needed by the host authority",
     _S, "lets the school trace the child's earlier records (CTF)"),
    ("child.uln", _O, "post-14 learner number: not needed by the host authority",
     _S, "post-14 qualifications and exam entries"),
    ("child.home_la", _S, "which council is responsible", _S, "which council is responsible"),
    ("child.local_child_id", _S, "the placing council's case reference, to quote back",
     _S, "the placing council's case reference, to quote back"),
    ("child.first_language", _O, "not needed by the host authority", _S, "teaching and support in school"),
    ("placement.legal_status", _S, "required by the schema; the host authority's duties depend on it",
     _S, "required by the schema; says who holds parental responsibility"),
    ("placement.category_of_need", _O, "social-care information about why the child is in care: not needed",
     _O, "social-care information about why the child is in care: the school does not need it"),
    ("placement.period_of_care_start", _S, "required by the schema", _S, "required by the schema"),
    ("placement.placement_type", _S, "required by the schema; the kind of placement in the host area",
     _S, "required by the schema; the kind of home the child lives in"),
    ("placement.placement_provider", _O, "not needed", _O, "not needed"),
    ("placement.placement_start", _S, "when the child arrived in the host area",
     _S, "when the child arrived in the new placement"),
    ("placement.reason_for_change", _O, "social-care reason for the move: not needed",
     _O, "social-care reason for the move: not needed"),
    ("placement.placing_la", _S, "the council responsible for the child", _S, "the council responsible for the child"),
    ("placement.host_la", _S, "the council notified", _S, "the council the school is in"),
    ("school", _S, "which school in its area the child attends, and its Designated Teacher",
     _S, "the school's own details, as the placing council holds them"),
    ("pep.pep_date", _S, "when the current PEP was made", _S, "when the current PEP was made"),
    ("pep.next_review_due", _S, "so the host authority can help with or attend the review",
     _S, "the Designated Teacher contributes to every PEP review"),
    ("pep.chronology", _C, "the school the child attends now; the education history stays with the placing council",
     _S, "the education history helps the school plan support and transition"),
    ("pep.current_arrangements", _W, "the PEP's content is for the school and the placing council",
     _S, "the PEP: what the school is asked to provide"),
    ("pep.planned_changes", _O, "the PEP's content is for the school and the placing council",
     _S, "the PEP: changes the school is part of"),
    ("pep.short_term_targets", _W, "the PEP's content is for the school and the placing council",
     _S, "the PEP: targets the school works towards"),
    ("pep.long_term_targets", _O, "the PEP's content is for the school and the placing council",
     _S, "the PEP: targets the school works towards"),
    ("pep.aspirations", _W, "the PEP's content is for the school and the placing council",
     _S, "the PEP: the child's aspirations"),
    ("pep.leisure_interests", _O, "not needed", _S, "the PEP: clubs and activities the school can support"),
    ("pep.child_voice", _W, "the child's own words go only to those working with them day to day",
     _S, "the PEP: the child's views, which the school must take into account"),
    ("pep.pupil_premium_plus", _O, "Pupil Premium Plus is managed by the placing council's VSH",
     _S, "the school agrees the use of Pupil Premium Plus with the VSH"),
    ("pep.actions", _O, "the PEP's content is for the school and the placing council",
     _S, "the PEP: actions, several of them the school's"),
    ("pep.vsh_contact", _S, "whom to contact at the placing council", _S, "whom to contact at the placing council"),
    ("sen.provision", _S, "required; whether SEN support or an EHC plan is in place (admissions, local SEND services)",
     _S, "the school must meet the child's special educational needs"),
    ("sen.need_types", _O, "health-related detail not needed by the host authority",
     _S, "the school plans support for these needs"),
    ("sen.primary_need", _O, "health-related detail not needed by the host authority",
     _S, "the school plans support for these needs"),
    ("sen.ehcp", _S, "which council maintains the EHC plan and its review dates (SEND Code of Practice)",
     _S, "the school takes part in the EHC plan's annual review"),
    ("attainment", _O, "not needed by the host authority", _S, "the school's starting point for teaching"),
    ("attendance", _O, "not needed by the host authority", _S, "the school's starting point for attendance support"),
    ("exclusions", _O, "not needed by the host authority", _S, "the school plans support to avoid exclusion"),
    # education-record 1.1.0 (issue 11): what a school must be told (seed 000 §1), the PEP's own content
    # (§2, §3.2, §5.3, §9) and the facts the statutory clocks need (DESIGN.md §10)
    ("cohort", _S, "which duties apply: looked after, previously looked after, child in need or protection",
     _S, "which duties apply: looked after, previously looked after, child in need or protection"),
    ("parental_responsibility", _O, "not needed by the host authority",
     _S, "the school must be told who holds parental responsibility"),
    ("contact_arrangements", _O, "not needed by the host authority",
     _S, "the school must be told the contact arrangements it has to respect (e.g. who may collect the child)"),
    ("care_arrangements", _O, "not needed by the host authority",
     _S, "delegated authority: what the carer may decide and sign (e.g. a school trip form)"),
    ("placement.emergency_placement", _S, "an emergency placement starts the 10-day PEP clock",
     _S, "an emergency placement starts the 10-day PEP clock"),
    ("no_school_place", _S, "the host authority helps find a school place (20 working days)",
     _S, "the interim provision the child has until a place is found"),
    ("extended_absences", _O, "not needed by the host authority", _S, "the school's attendance support"),
    ("pep.developmental_needs", _O, "the PEP's content is for the school and the placing council",
     _S, "the PEP: developmental needs (including attachment) the school supports"),
    ("pep.educational_needs", _O, "the PEP's content is for the school and the placing council",
     _S, "the PEP: educational needs the school meets"),
    ("pep.achievements", _O, "the PEP's content is for the school and the placing council",
     _S, "the PEP: the child's achievements, academic or otherwise"),
    ("pep.disruption_before_care", _O, "the PEP's content is for the school and the placing council",
     _S, "the PEP: context the school needs to plan support"),
    ("pep.incorporated_plans", _O, "the PEP's content is for the school and the placing council",
     _S, "the PEP: the SEN Support Plan or other school plan it includes"),
    ("pep.named_person", _S, "who manages the PEP day to day: whom to contact",
     _S, "who manages the PEP day to day: whom to contact"),
    ("pep.communication", _S, "who contacts whom about the PEP", _S, "who contacts whom about the PEP"),
    ("pep.confidentiality", _S, "the agreed limits on who may know: they bind every recipient",
     _S, "the agreed limits on which staff may know, and the child's wishes"),
    ("pep.next_meeting", _S, "so the host authority can attend or help with the meeting",
     _S, "the Designated Teacher attends the next PEP meeting"),
    ("pep.distribution", _O, "not needed by the host authority", _S, "who else already holds the PEP"),
    ("pep.status", _O, "the PEP's own state and quality assurance are for the placing council and the school",
     _S, "whether the PEP is a draft or complete and quality-assured"),
    ("contacts.social_worker", _S, "required; the social-care contact for the placement",
     _S, "required; the school works with the child's social worker"),
    ("contacts.iro", _O, "not needed", _S, "the Designated Teacher contributes to care reviews the IRO chairs"),
    ("contacts.carer", _O, "the carer's details are not needed by the host authority",
     _S, "the school's day-to-day contact at home"),
    ("contacts.others", _O, "not needed", _S, "others working with the child"),
)

PROFILES: Mapping[str, Profile] = {
    _HOST: Profile(_HOST, "Host council's virtual school (placement-notification)", "placement-notification", "LA:",
                   tuple(Rule(p, t, w) for p, t, w, _t, _w in _TABLE)),
    _DT: Profile(_DT, "Placement school's Designated Teacher (pep-transfer)", "pep-transfer", "URN:",
                 tuple(Rule(p, t, w) for p, _t, _w, t, w in _TABLE)),
}


def profile_for(recipient: str) -> Profile:
    """The profile of a recipient: a council gets the host virtual school's, a school the Designated Teacher's."""
    return PROFILES[_HOST if recipient.startswith("LA:") else _DT]


def record_fields() -> list[str]:
    """Every field of the education record model at the profiles' grain (`SPLIT` sections field by field)."""
    out: list[str] = []
    for name, info in EducationRecord.model_fields.items():
        key = info.alias or name
        if key == "schema":
            continue
        if key in SPLIT:
            model = info.annotation
            fields = getattr(model, "model_fields", {})
            out.extend(f"{key}.{sub.alias or sub_name}" for sub_name, sub in fields.items())
        else:
            out.append(key)
    return out


def profile_table(profile: Profile) -> str:
    """The profile as the Markdown table docs/minimisation.md shows (a test compares them)."""
    rows = ["| field | shared | why |", "|---|---|---|"]
    rows += [f"| `{r.path}` | {r.treatment.label} | {r.why} |" for r in profile.rules]
    return "\n".join(rows)


def _withheld(path: str, record: dict[str, Any]) -> Any:
    if path == "pep.short_term_targets":  # at least one target is required: one marker target
        return [{"description": WITHHELD, "measure": WITHHELD, "owner": "placing virtual school",
                 "due": record["pep"]["next_review_due"], "status": "not-started"}]
    return WITHHELD


def _current_only(chronology: list[dict[str, Any]], record: dict[str, Any]) -> list[dict[str, Any]]:
    urn = (record.get("school") or {}).get("urn")
    now = [e for e in chronology if urn and e.get("urn") == urn] or chronology[-1:]
    return [{k: copy_tree(v) for k, v in e.items() if k != "reason_for_change"} for e in now]


def apply_profile(record: dict[str, Any], profile: Profile) -> dict[str, Any]:
    """A copy of `record` with only what `profile` lets its recipient see. Unknown fields are left out.
    It shares no list or object with `record` (so `build_placement_messages` hands it on uncopied)."""

    def treat(path: str, value: Any) -> tuple[bool, Any]:
        rule = profile.rule(path)
        if rule is None or rule.treatment is Treatment.omitted:
            return False, None
        if rule.treatment is Treatment.withheld:
            return True, _withheld(path, record)
        if rule.treatment is Treatment.current:
            return True, _current_only(value, record)
        return True, copy_tree(value)

    out: dict[str, Any] = {}
    for key, value in record.items():
        if key == "schema":
            out[key] = value
        elif key in SPLIT and isinstance(value, dict):
            section = {}
            for sub, sub_value in value.items():
                keep, new = treat(f"{key}.{sub}", sub_value)
                if keep:
                    section[sub] = new
            out[key] = section
        else:
            keep, new = treat(key, value)
            if keep:
                out[key] = new
    return out


# -- checks ---------------------------------------------------------------------------------------

def check_recipients(record: dict[str, Any], to: Sequence[str]) -> list[str]:
    """The recipients, each checked against the record (exit 1, naming the field, if misdirected)."""
    if not to:
        raise UsageError("name at least one recipient with --to", code="notify.no-recipient",
                         hint="the host council's virtual school (--to LA:NNN) and/or the school (--to URN:NNNNNN)")
    out: list[str] = []
    for party in to:
        check_party(party)
        if party in out:
            continue
        if party.startswith("URN:"):
            school = record.get("school") or {}
            if "urn" not in school:
                raise InvalidData(f"{party} cannot be checked: the record names no placement school (school.urn)",
                                  code="notify.misdirected",
                                  hint="add the placement school to the record, or leave out the school recipient")
            if party != f"URN:{school['urn']}":
                raise InvalidData(f"{party} is not the record's placement school (school.urn is {school['urn']}): "
                                  "refusing a misdirected PEP", code="notify.misdirected",
                                  hint=f"send to --to URN:{school['urn']}, or correct school.urn in the record")
        else:
            host = record["placement"]["host_la"]
            if party != f"LA:{host}":
                raise InvalidData(f"{party} is not the record's host council (placement.host_la is {host}): "
                                  "refusing a misdirected notification", code="notify.misdirected",
                                  hint=f"send to --to LA:{host}, or correct placement.host_la in the record")
        out.append(party)
    return out


def _child_identifiers(record: dict[str, Any]) -> list[str]:
    child = record.get("child") or {}
    name = child.get("legal_name") or {}
    words = [name.get("given"), name.get("middle"), name.get("family"), child.get("preferred_name")]
    ids = [child.get("upn"), child.get("uln"), child.get("date_of_birth"), child.get("local_child_id"),
           *child.get("former_upns", [])]  # not record_id: random, it is in the audit log as record_ref
    return [w for w in words + ids if isinstance(w, str) and len(w) >= 2]


_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?"
          r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?(?![a-z])")
_DASHES = re.compile("[\u2010-\u2015\u2212\ufe58\ufe63\uff0d]")
_DAY, _YEAR, _SEP = r"[0-9]{1,2}", r"[0-9]{2,4}", r"[-/. ]?"
#: What a purpose never needs and a child's details often are, whoever's they are (`check_purpose`,
#: on the text NFKC-normalised with every dash made "-"): a day's date in any usual spelling, a
#: date-of-birth marker, a UPN's shape, a long number (a school's URN or LAESTAB, named so, aside).
_PERSONAL_SHAPES = (
    ("a date", re.compile(rf"(?<![0-9])(?:[0-9]{{4}}[-/.][0-9]{{1,2}}[-/.][0-9]{{1,2}}"
                          rf"|{_DAY}[-/.]{_DAY}[-/.]{_YEAR}"
                          rf"|{_DAY}(?:st|nd|rd|th)?{_SEP}(?:of\s+)?{_MONTH}{_SEP}{_YEAR}"
                          rf"|{_DAY}(?:st|nd|rd|th)\s+(?:of\s+)?{_MONTH}"
                          rf"|[0-9]{{4}}{_SEP}{_MONTH}{_SEP}{_DAY}"
                          rf"|(?<![a-z]){_MONTH}\s*{_DAY}(?:st|nd|rd|th)?,?\s*[0-9]{{4}})(?![0-9])", re.IGNORECASE)),
    ("a date of birth", re.compile(r"\b(?:dob|d\.o\.b\.?|date\s+of\s+birth|birth\s*date|born)\b", re.IGNORECASE)),
    ("a UPN", re.compile(r"\b[A-Z][0-9]{11}[0-9A-Z]\b", re.IGNORECASE)),
    ("a number of six digits or more (a ULN, a local id)",
     re.compile(r"(?<!urn )(?<!urn:)(?<!urn: )(?<!laestab )(?<![0-9])[0-9]{6,}", re.IGNORECASE)),
)


def _names_word(text: str, word: str) -> bool:
    """Does `text` hold `word`, ignoring case, not inside a run of ASCII letters and digits?

    A regular expression says it for any text, but one compiled per child (its names differ) costs
    more than the rest of the check; for ASCII text and word, where ignoring case is just
    lower-casing, a search of the lower-cased text says the same."""
    if not (text.isascii() and word.isascii()):
        return re.search(rf"(?<![A-Za-z0-9]){re.escape(word)}(?![A-Za-z0-9])", text, re.IGNORECASE) is not None
    hay, needle = text.lower(), word.lower()
    at = hay.find(needle)
    while at >= 0:
        end = at + len(needle)
        if (at == 0 or not hay[at - 1].isalnum()) and (end == len(hay) or not hay[end].isalnum()):
            return True
        at = hay.find(needle, at + 1)
    return False


def check_purpose(purpose: str, record: dict[str, Any] | None) -> str:
    """The purpose / lawful basis as it goes into the audit log: it must not identify the child."""
    text = " ".join(purpose.split())
    if not text:
        raise UsageError("--purpose is empty", code="notify.purpose",
                         hint='say why this is shared, e.g. --purpose "new placement: statutory duty to share the PEP"')
    if len(text) > MAX_PURPOSE:
        raise UsageError(f"--purpose is {len(text)} characters; at most {MAX_PURPOSE}", code="notify.purpose",
                         hint="keep it to the purpose and lawful basis; the details belong in the record")
    for word in _child_identifiers(record or {}):
        if _names_word(text, word):
            raise UsageError("--purpose names the child (a name, UPN, ULN, local id or date of birth): it goes into "
                             "the audit log, which holds no personal data", code="notify.purpose",
                             hint="describe the purpose without the child's details; the record identifies the child")
    plain = _DASHES.sub("-", unicodedata.normalize("NFKC", text))  # "２０１２‐０４‐０６" is a date too
    for what, shape in _PERSONAL_SHAPES:
        if shape.search(plain):
            raise UsageError(f"--purpose holds {what}: it goes into the audit log, which holds no personal data, and "
                             "a purpose needs none", code="notify.purpose",
                             hint='say why and on what basis, e.g. --purpose "new placement: statutory duty to share '
                                  'the PEP (Children Act 1989)"; the record identifies the child')
    return text


def _record(record: Any, source: str) -> dict[str, Any]:
    report = validate_document(record, expected_type="education-record", source=source)
    if not report.ok:
        first = report.errors[0]
        raise InvalidData(f"{source} is not a valid education record: {first.path}: {first.message}",
                          code="record.invalid", hint=first.hint or f"run `laxchange validate {source}`",
                          details={"errors": [e.to_dict() for e in report.errors]})
    if not isinstance(record, dict):  # validate_document refuses anything else; this tells the type checker
        raise InvalidData(f"{source} is not a JSON object", code="record.invalid")
    return record


# -- building the messages ------------------------------------------------------------------------

@dataclass(frozen=True)
class AttachmentFile:
    """An attachment: the file, its real name, and the name it carries inside the package."""

    path: Path
    wire_name: str

    @property
    def original(self) -> str:
        return self.path.name


def _attachments(paths: Sequence[str | os.PathLike[str]]) -> list[AttachmentFile]:
    files = [Path(p) for p in paths]
    seen: dict[str, Path] = {}
    for f in files:
        if f.name.lower() in seen:
            raise UsageError(f"two attachments are named {f.name!r} ({seen[f.name.lower()]} and {f})",
                             code="attachment.name", hint="rename one of them: the receiver keeps them side by side")
        seen[f.name.lower()] = f
    names = package.wire_attachment_names([f.name for f in files])
    return [AttachmentFile(f, n) for f, n in zip(files, names, strict=True)]


_MESSAGE_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ -]{0,99}")


def _describe(att: AttachmentFile, sha256: str, size: int) -> dict[str, Any]:
    """The PEP transfer's entry for an attachment: its real name where the schema allows it, else the
    package's name with the real one in `description` (both inside the signed statement)."""
    media = mimetypes.guess_type(att.original)[0] or "application/octet-stream"
    if not re.fullmatch(r"[a-z]+/[a-z0-9.+-]+", media):
        media = "application/octet-stream"
    entry: dict[str, Any] = {"filename": att.original, "media_type": media, "size": size, "sha256": sha256}
    if not _MESSAGE_FILENAME.fullmatch(att.original):
        entry["filename"] = att.wire_name[:100]
        entry["description"] = f"original file name: {att.original}"[:200]
    return entry


def build_placement_messages(record: dict[str, Any], recipients: Sequence[str], *, reason: str, purpose: str,
                             notification_id: str, message: str | None = None, respond_by: dt.date | None = None,
                             attachments: Sequence[dict[str, Any]] = ()) -> dict[str, dict[str, Any]]:
    """One message per recipient, each carrying the record through that recipient's profile.

    The headers come from `models.wrap.wrap_record` (the one copy of record-to-message wrapping,
    shared with `pack --type`); the sender is the placing council, whose VSH is the contact.
    """
    sender = f"LA:{record['placement']['placing_la']}"
    text = f"Purpose: {purpose}" + (f"\n\n{message}" if message else "")
    out: dict[str, dict[str, Any]] = {}
    for party in recipients:
        profile = profile_for(party)
        doc = wrap_record(apply_profile(record, profile), profile.message_type, sender=sender, recipient=party,
                          reason=reason, message=text, recipients=recipients, notification_id=notification_id,
                          owned=True)
        if profile.message_type == "placement-notification":
            if respond_by is not None:
                doc["respond_by"] = respond_by.isoformat()
        else:
            doc["attachments"] = list(attachments)
        out[party] = doc
    return out


# -- queueing and sending -------------------------------------------------------------------------

@dataclass
class Notified:
    """One package made for one recipient: where it waits, and whether it has gone."""

    recipient: str
    role: str
    message_type: str
    transfer_id: str
    path: Path
    state: str
    error: LaxError | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"recipient": self.recipient, "role": self.role, "message_type": self.message_type,
                               "transfer_id": self.transfer_id, "package": str(self.path), "state": self.state}
        if self.error is not None:
            out["error"] = self.error.to_dict()
        return out


@dataclass
class NotifyResult:
    packages: list[Notified] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(p.error is None for p in self.packages)

    def first_error(self) -> LaxError | None:
        return next((p.error for p in self.packages if p.error is not None), None)

    def to_dict(self) -> dict[str, Any]:
        return {"packages": [p.to_dict() for p in self.packages], "warnings": list(self.warnings)}


@dataclass
class _Packed:
    """A package made but not yet queued: its bytes (None: already in the outbox, packed to a file
    because it has attachments), what the ledger row will say, and what the caller is told."""

    notified: Notified
    manifest: package.Manifest
    data: bytes | None
    audit: dict[str, Any]


def _pack(party: Party, doc: dict[str, Any], *, message_type: str, recipient: str, role: str,
          audit: dict[str, Any], attachments: Sequence[AttachmentFile] = (), expires_in: dt.timedelta) -> _Packed:
    """Pack `doc` for the outbox as `<transfer id>.lax`, not yet queued (`_commit` does that).

    `doc` was validated by the caller against `message_type` with the same clock, so `package.pack`
    does not validate it again. Without attachments the package is packed in memory (`_commit`
    writes it); with them it is packed to a temporary file (it may be large), renamed under its
    name and the outbox fsynced here, as before: a rare, single placement's path."""
    outbox = party.home.outbox  # made where a file is written into it (here with attachments, else `_outbox`)
    common: dict[str, Any] = {"message_type": message_type, "recipient": recipient, "keystore": party.keystore,
                              "directory": party.directory, "clock": party.clock, "expires_in": expires_in,
                              "checkpoint": party.checkpoint_for(recipient, doc), "validate": False}
    data: bytes | None = None
    if not attachments:
        buf = io.BytesIO()
        m = package.pack(doc, out=buf, **common).manifest
        data = buf.getvalue()
    else:
        private_dirs(outbox)
        tmp = outbox / f".packing-{os.urandom(8).hex()}"
        try:
            m = package.pack(doc, out=tmp, attachments=[a.path for a in attachments],
                             attachment_names=[a.wire_name for a in attachments], **common).manifest
            os.replace(tmp, outbox / f"{m.transfer_id}.lax")
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(outbox)
    path = outbox / f"{m.transfer_id}.lax"
    return _Packed(Notified(recipient, role, message_type, m.transfer_id, path, str(Outbound.QUEUED)), m, data,
                   audit)


def _outbox(party: Party) -> Path:
    """The outbox, made if need be: once a group of packages written, not once a package packed."""
    outbox = party.home.outbox
    private_dirs(outbox)
    return outbox


def _commit(party: Party, packed: Sequence[_Packed], *,
            before_commit: Callable[[Sequence[Path]], None] | None = None) -> None:
    """Queue `packed`: every package durable in the outbox, then ONE ledger transaction for all of them.

    The packages packed in memory are written under their own names, each complete or not at all
    (`write_new_files(shared=True, folder_too=True)`: a temporary name, fsynced, linked, the outbox folder
    fsynced; a `<transfer id>.lax` is still published by its `queued` row, not by its name; the
    nightly run reads none without one). Only then are the rows committed, in one transaction
    (`Ledger.batch`): one commit for the batch. A failure before the commit removes the packages
    written (nothing partial); a crash there leaves them without a row, never sent, and the next
    nightly run removes them (`run`'s housekeeping, `sweep_unqueued`). `before_commit` is called
    with the packages' paths once they are durable, before the commit (a test's seam for a crash
    there)."""
    if not packed:
        return
    in_memory = {p.notified.path.name: p.data for p in packed if p.data is not None}
    paths = [p.notified.path for p in packed]
    if in_memory:
        write_new_files(_outbox(party), in_memory, folder_too=True, shared=True)
    try:
        if before_commit is not None:
            before_commit(paths)
        with party.ledger.batch():
            for p in packed:
                m = p.manifest
                party.ledger.advance("out", m.transfer_id, m.recipient, Outbound.QUEUED, created=m.created,
                                     expires=m.expires, payload_sha256=m.payload_sha256, audit=p.audit,
                                     message_type=p.notified.message_type, record_ref=p.audit.get("record_ref"))
    except BaseException:
        if not _committed(party, packed):
            for path in paths:
                path.unlink(missing_ok=True)
        raise
    for p in packed:
        log_queued(p.manifest, p.notified.message_type, p.audit.get("record_ref"))


def _committed(party: Party, packed: Sequence[_Packed]) -> bool:
    """Did the commit that queues `packed` happen, although something was raised after it? Then
    their files must stay (`Party.knows_queued`, asked of the first: the commit is all or none)."""
    return bool(packed) and party.knows_queued(packed[0].manifest)


def _queue(party: Party, doc: dict[str, Any], *, message_type: str, recipient: str, role: str,
           audit: dict[str, Any], attachments: Sequence[AttachmentFile] = (), expires_in: dt.timedelta) -> Notified:
    """Pack `doc` into the outbox and record it as queued (with `audit`): `_pack`, then `_commit`."""
    p = _pack(party, doc, message_type=message_type, recipient=recipient, role=role, audit=audit,
              attachments=attachments, expires_in=expires_in)
    _commit(party, [p])
    return p.notified


def _queued_note(n: int) -> str:
    return (f"{'all ' if n > 1 else ''}{n} package{'s' if n != 1 else ''} of this notification "
            f"{'were' if n != 1 else 'was'} queued before the interrupt; the next `laxchange run` sends "
            "any not sent yet. Do not submit it again: that would notify the placements twice "
            "(`laxchange status` shows what is queued and sent)")


@contextlib.contextmanager
def _queued_already(packages: Sequence[Notified]) -> Iterator[None]:
    """Sending what was just queued: an interrupt (Ctrl-C, a service stop) says that everything is
    queued and will be sent, so that nobody submits the placements again and notifies them twice."""
    try:
        yield
    except KeyboardInterrupt as exc:
        exc.add_note(_queued_note(len(packages)))
        raise


def _send(party: Party, packages: Sequence[Notified]) -> None:
    """Send each package to its recipient; one recipient's failure never stops the others."""
    with _queued_already(packages):
        for p in packages:
            try:
                result = party.send(p.recipient, [p.path])
            except LaxError as exc:
                p.error = exc
                continue
            if result.ok:
                p.state = str(Outbound.SENT)
            else:
                p.error = result.first_error()


def _attachment_digest(att: AttachmentFile) -> tuple[str, int]:
    with open_regular(att.path, what="attachment", follow_symlinks=False, error=UsageError) as fh:
        return digest_stream(fh)


@dataclass
class _Prepared:
    """One placement checked and its messages built and validated: nothing packed yet."""

    rec: dict[str, Any]
    purpose: str
    reason: str
    docs: dict[str, dict[str, Any]]
    attachments: list[AttachmentFile]
    warnings: list[str]


def _prepare(party: Party, record: Any, *, to: Sequence[str], reason: str, purpose: str,
             attachments: Sequence[str | os.PathLike[str]] = (), message: str | None = None,
             respond_by: dt.date | None = None, source: str = "record") -> _Prepared:
    """Every check of one placement, and its messages: a misdirected recipient, an unknown partner,
    an unreadable attachment or an invalid message raises here, before anything is packed."""
    rec = _record(record, source)
    if reason not in REASONS:
        raise UsageError(f"unknown reason {reason!r}", code="notify.reason", hint=f"use one of: {', '.join(REASONS)}")
    recipients = check_recipients(rec, to)
    purpose = check_purpose(purpose, rec)
    today = party.clock.now().astimezone(timefmt.ENGLAND).date()
    if respond_by is not None and respond_by < today:  # the host would be asked to have answered already
        raise UsageError(f"--respond-by {respond_by.isoformat()} has passed (today is {today.isoformat()} in England)",
                         code="notify.respond-by", hint="give a date from today on, or leave --respond-by out")
    warnings: list[str] = []
    me = party.keystore.ring().party
    placing = rec["placement"]["placing_la"]
    if me != f"LA:{placing}":  # the host would be told, under our signature, of another council's child
        raise InvalidData(f"we are {me}, but the record's placing council is LA:{placing} (placement.placing_la): "
                          "a placement is notified by the placing council's VSH, and the host and the school would "
                          f"take it as LA:{placing}'s", code="notify.not-placing-council",
                          hint=f"correct placement.placing_la if the child is ours ({me}), or ask LA:{placing}'s "
                               "virtual school to send it")
    atts = _attachments(attachments)
    if atts and not any(r.startswith("URN:") for r in recipients):
        raise UsageError("attachments go with the PEP to the school, and no school is among the recipients",
                         code="notify.attachments-without-school",
                         hint="add --to URN:NNNNNN (the record's school.urn), or leave out --attach")
    described = []
    for a in atts:
        digest, size = _attachment_digest(a)
        described.append(_describe(a, digest, size))
    docs = build_placement_messages(rec, recipients, reason=reason, purpose=purpose,
                                    notification_id=os.urandom(16).hex(), message=message, respond_by=respond_by,
                                    attachments=described)
    for recipient, doc in docs.items():  # everything checked before the first package is made
        party.directory.get(recipient)
        mtype = profile_for(recipient).message_type
        report = validate_document(doc, expected_type=mtype, source=f"{mtype} for {recipient}", clock=party.clock)
        if not report.ok:
            first = report.errors[0]
            raise InvalidData(f"the {mtype} for {recipient} is not valid: {first.path}: {first.message}",
                              code="record.invalid", hint=first.hint or "check the record with `laxchange validate`",
                              details={"errors": [e.to_dict() for e in report.errors]})
    return _Prepared(rec, purpose, reason, docs, atts, warnings)


def _pack_placement(party: Party, prep: _Prepared, expires_in: dt.timedelta) -> list[_Packed]:
    """One package per recipient of a prepared placement, packed, not yet queued."""
    out: list[_Packed] = []
    try:
        for recipient, doc in prep.docs.items():
            profile = profile_for(recipient)
            audit = {"record_ref": prep.rec["record_id"], "purpose": prep.purpose, "reason": prep.reason,
                     "profile": profile.role}
            atts = prep.attachments if profile.message_type == "pep-transfer" else ()
            out.append(_pack(party, doc, message_type=profile.message_type, recipient=recipient, role=profile.role,
                             audit=audit, attachments=atts, expires_in=expires_in))
    except BaseException:
        for p in out:  # one packed to a file (attachments) is in the outbox already
            if p.data is None:
                p.notified.path.unlink(missing_ok=True)
        raise
    return out


#: How far back a placement notified again is noticed (`_repeats`): a VSH re-running a notification,
#: or council IT exporting a placement twice, does it within days.
REPEAT_WINDOW = dt.timedelta(days=30)


def _repeats(party: Party) -> Callable[[str, str, str], str | None]:
    """A warning for record `ref` notified to `recipient` for the same `reason` as the latest transfer
    of that record to that recipient within REPEAT_WINDOW, else None. A different reason (the
    placement ended, after it began) is news, not a repeat; so is a package not sent by a
    notification (no reason in its audit entry). Read from the ledger (the record's random
    `record_id`, transfer ids and the audit entry's reason: no personal data), once, on first use;
    a transfer's audit entry only when the pair matches. A rejected or expired transfer does not
    count: sending again is the remedy."""
    earlier: dict[tuple[str, str], tuple[str, str, str]] | None = None
    reasons: dict[str, str | None] = {}

    def warn(ref: str, recipient: str, reason: str) -> str | None:
        nonlocal earlier
        if earlier is None:
            earlier = party.ledger.notified_records(party.clock.now() - REPEAT_WINDOW)
        found = earlier.get((ref, recipient))
        if found is None:
            return None
        tid, state, at = found
        if tid not in reasons:
            queued = party.ledger.audit_entries(["out.queued"], transfer_ids=[tid])
            reasons[tid] = next((str(e["data"]["reason"]) for e in queued if e["data"].get("reason")), None)
        if reasons[tid] != reason:
            return None
        return (f"record {ref} was notified to {recipient} for {reason} already on {at[:10]} (transfer {tid}, "
                f"{state}): this notifies it again; if that is a mistake, tell {recipient} to disregard one")
    return warn


def notify_placement(party: Party, record: Any, *, to: Sequence[str], reason: str, purpose: str,
                     attachments: Sequence[str | os.PathLike[str]] = (), send: bool = True,
                     message: str | None = None, respond_by: dt.date | None = None,
                     expires_in: dt.timedelta = package.DEFAULT_EXPIRES_IN, source: str = "record") -> NotifyResult:
    """The VSH's job: tell the host virtual school and the school's Designated Teacher of a placement.

    One package per recipient, each through its profile (`PROFILES`), queued in the ledger with
    the purpose and the record's `record_id` in the audit entry, and sent now unless `send` is
    false. Attachments go with the PEP transfer to the school only. Everything is checked before
    anything is packed: a misdirected recipient, an unknown partner, an unreadable attachment or
    an invalid message leaves no package and no ledger entry. When it returns, every package is
    durable in the outbox and then queued, all in one ledger commit (`_commit`), or none is.
    """
    prep = _prepare(party, record, to=to, reason=reason, purpose=purpose, attachments=attachments, message=message,
                    respond_by=respond_by, source=source)
    result = NotifyResult(warnings=list(prep.warnings))
    repeat = _repeats(party)
    result.warnings += [w for w in (repeat(prep.rec["record_id"], r, prep.reason) for r in prep.docs) if w]
    packed = _pack_placement(party, prep, expires_in)
    _commit(party, packed)
    result.packages = [p.notified for p in packed]
    if send:
        _send(party, result.packages)
    return result


# -- many placements at once (council IT: a case-management system's export) ------------------------

#: How many placements' packages a batch holds in memory before writing them to the outbox (the
#: ledger still commits once, at the end: a batch is queued whole or not at all).
BATCH_CHUNK = 500

#: The keys a line of a placements file (JSON Lines) may have.
PLACEMENT_KEYS: tuple[str, ...] = ("record", "record_file", "to", "reason", "purpose", "message", "respond_by")


@dataclass(frozen=True)
class Placement:
    """One placement of a batch: what `notify_placement` takes for one record (no attachments).

    `line` is where it came from (the line of a placements file, else its place in the batch),
    named in its error."""

    record: Any
    to: Sequence[str]
    reason: str
    purpose: str
    message: str | None = None
    respond_by: dt.date | None = None
    line: int | None = None
    source: str = "record"


@dataclass
class BatchItem:
    """What became of one placement of a batch: its packages (queued, or sent), or its error."""

    line: int
    record_ref: str | None = None
    packages: list[Notified] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: LaxError | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"line": self.line, "record_ref": self.record_ref,
                               "packages": [p.to_dict() for p in self.packages], "warnings": list(self.warnings)}
        if self.error is not None:
            out["error"] = self.error.to_dict()
        return out


@dataclass
class BatchResult:
    """A batch: every placement's item, in the order given. Refused placements have an error and no
    package; the others were queued together (and sent, unless `send=False`)."""

    items: list[BatchItem] = field(default_factory=list)

    @property
    def refused(self) -> list[BatchItem]:
        return [i for i in self.items if i.error is not None]

    @property
    def packages(self) -> list[Notified]:
        return [p for i in self.items for p in i.packages]

    @property
    def ok(self) -> bool:
        """Every placement queued and every package that was to be sent, sent."""
        return not self.refused and all(p.error is None for p in self.packages)

    def to_dict(self) -> dict[str, Any]:
        return {"placements": len(self.items), "queued": len(self.items) - len(self.refused),
                "refused": len(self.refused), "packages": len(self.packages),
                "items": [i.to_dict() for i in self.items]}


def _line_error(exc: LaxError, line: int) -> LaxError:
    return exc.annotated(prefix=f"line {line}: ", line=line)


@dataclass
class _Made:
    """One placement of a batch as a worker left it: its checks' error, or the record and recipients
    it checked and its packages (in memory) or the error packing them."""

    error: LaxError | None = None
    record_ref: str = ""
    reason: str = ""
    recipients: tuple[str, ...] = ()
    warnings: list[str] = field(default_factory=list)
    packed: list[_Packed] = field(default_factory=list)
    pack_error: LaxError | None = None


def _make(state: tuple[Party, dt.timedelta], placement: Placement) -> _Made:
    """Check one placement and pack its messages in memory: no file, no ledger (it may run in a
    worker process, `ordered_map`); the caller decides what is kept, in the batch's order."""
    party, expires_in = state
    try:
        prep = _prepare(party, placement.record, to=placement.to, reason=placement.reason,
                        purpose=placement.purpose, message=placement.message, respond_by=placement.respond_by,
                        source=placement.source)
    except LaxError as exc:
        return _Made(error=exc)
    made = _Made(record_ref=prep.rec["record_id"], reason=prep.reason, recipients=tuple(prep.docs),
                 warnings=prep.warnings)
    try:
        made.packed = _pack_placement(party, prep, expires_in)  # no attachments in a batch: all in memory
    except LaxError as exc:
        made.pack_error = exc
    return made


def notify_placements(party: Party, placements: Iterable[Placement | LaxError], *, send: bool = True,
                      expires_in: dt.timedelta = package.DEFAULT_EXPIRES_IN,
                      before_commit: Callable[[Sequence[Path]], None] | None = None, jobs: int = 1) -> BatchResult:
    """Council IT's job: notify many placements at once, e.g. from a case-management system.

    Each placement is checked on its own, as `notify_placement` checks one: a bad one (invalid
    record, misdirected, unknown partner, the child named in the purpose, the same record to the
    same recipient twice in the batch) gets its own error naming its line and no package, and does
    not stop the others. A `LaxError` in `placements` (a line a file reader could not read) is
    reported at its place the same way. Every other placement's packages are written to the outbox
    (fsynced with the folder, a group per `BATCH_CHUNK`), then queued in ONE ledger transaction:
    when this returns they are all durable and queued, or (it raises) none is queued and the
    packages written are removed. A crash between leaves packages without a row, never sent, that
    the next nightly run removes. Then each recipient's packages are sent in one go unless `send`
    is false. `before_commit`: called with the packages' paths once durable, before the commit.

    `jobs` > 1 checks and packs the placements in that many forked worker processes
    (`_util.workers`; packing is CPU-bound Python, one core a process); writing, the commit and
    the results are the same, in the same order. A worker that dies fails the whole batch
    (`worker.lost`, nothing queued)."""
    result = BatchResult()
    packed: list[_Packed] = []
    written: list[Path] = []
    seen: dict[tuple[str, str], int] = {}
    pending: list[_Packed] = []
    read: list[BatchItem] = []  # what the workers' results belong to, in the batch's order
    repeat = _repeats(party)

    def work() -> Iterator[Placement]:
        for n, placement in enumerate(placements, 1):
            if isinstance(placement, LaxError):
                read.append(BatchItem(line=int(placement.details.get("line", n)), error=placement))
                continue
            read.append(BatchItem(line=placement.line if placement.line is not None else n))
            yield placement

    try:
        # the workers pack the next group while this process writes and fsyncs one (`_write_pending`)
        for made in ordered_map(_make, work(), state=(party, expires_in), jobs=jobs, chunk=64, in_flight=BATCH_CHUNK):
            while read[0].error is not None:  # lines the reader refused, before this one
                result.items.append(read.pop(0))
            item = read.pop(0)
            result.items.append(item)
            try:
                if made.error is not None:
                    raise made.error
                item.record_ref = made.record_ref
                for recipient in made.recipients:
                    earlier = seen.get((made.record_ref, recipient))
                    if earlier is not None:
                        raise UsageError(f"record {made.record_ref} is notified to {recipient} on line "
                                         f"{earlier} of this batch already", code="notify.duplicate",
                                         hint="give each placement once; this line was left out")
                if made.pack_error is not None:
                    raise made.pack_error
                item.packages = [p.notified for p in made.packed]
            except LaxError as exc:
                item.error = _line_error(exc, item.line)
                continue
            item.warnings = made.warnings + [w for w in (repeat(made.record_ref, r, made.reason)
                                                          for r in made.recipients) if w]
            for recipient in made.recipients:
                seen[(made.record_ref, recipient)] = item.line
            packed += made.packed
            pending += made.packed
            if len(pending) >= BATCH_CHUNK:
                written += _write_pending(party, pending)
                pending = []
        result.items += read  # lines the reader refused, after the last placement
        written += _write_pending(party, pending)
        pending = []
        _commit(party, packed, before_commit=before_commit)
    except BaseException as exc:
        committed = _committed(party, packed)  # raised after the commit: it stands, and so do its files
        if not committed:
            for path in (*written, *(p.notified.path for p in (*packed, *pending) if p.data is None)):
                path.unlink(missing_ok=True)
        if isinstance(exc, KeyboardInterrupt):
            exc.add_note(_queued_note(len(packed)) if committed else
                         "nothing of this batch was queued (the packages made so far were removed): submit it again")
        raise
    if send:
        _send_many(party, result.packages)
    return result


def _write_pending(party: Party, pending: list[_Packed]) -> list[Path]:
    """Write packages packed in memory to the outbox, each complete and durable with the folder
    (`write_new_files`), and let go of their bytes (`_commit` then writes nothing again)."""
    files = {p.notified.path.name: p.data for p in pending if p.data is not None}
    if files:
        write_new_files(_outbox(party), files, folder_too=True, shared=True)
    for p in pending:
        p.data = None
    return [p.notified.path for p in pending if p.notified.path.name in files]


def _send_many(party: Party, packages: Sequence[Notified]) -> None:
    """Send each recipient's packages in one go; one recipient's failure never stops the others."""
    by_recipient: dict[str, list[Notified]] = {}
    for p in packages:
        by_recipient.setdefault(p.recipient, []).append(p)
    with _queued_already(packages):
        for recipient, mine in by_recipient.items():
            try:
                result = party.send(recipient, [p.path for p in mine])
            except LaxError as exc:
                for p in mine:
                    p.error = exc
                continue
            errors = {f.local or f.name: f.error for f in result.files}
            for p in mine:
                err = errors.get(p.path.name, result.error)
                if err is None and p.path.name in errors:
                    p.state = str(Outbound.SENT)
                else:
                    p.error = err or result.first_error()


def read_placements(path: str | os.PathLike[str]) -> Iterator[Placement | LaxError]:
    """The placements of a JSON Lines file, one object a line (keys: `PLACEMENT_KEYS`; docs/integrators.md),
    read as they are needed. A line that cannot be read comes as its error (naming the line), not
    raised: it is one placement refused. `record_file` is read relative to the file's folder."""
    p = Path(path)
    with open_regular(p, what="placements file", error=UsageError) as fh:
        for n, raw in enumerate(fh, 1):
            text = raw.decode("utf-8", errors="replace").strip()
            if not text:
                continue
            try:
                obj = jsonio.loads_strict(text, source=p.name)
            except LaxError as exc:  # "at line 1 column C" of the line's own text: say the column only
                what = exc.message.partition(": ")[2].rpartition(" at line ")[0] or exc.message
                col = exc.details.get("column")
                yield _line_error(InvalidData(f"not valid JSON: {what}" + (f" (column {col})" if col else ""),
                                              code=exc.code, hint=exc.hint), n)
                continue
            try:
                yield _placement_from(obj, line=n, folder=p.parent, source=f"{p.name} line {n}")
            except LaxError as exc:
                yield _line_error(exc, n)


def _placement_from(obj: Any, *, line: int, folder: Path, source: str) -> Placement:
    if not isinstance(obj, dict):
        raise UsageError("not a JSON object", code="notify.batch-line",
                         hint=f"each line is one placement: an object with {', '.join(PLACEMENT_KEYS)}")
    unknown = sorted(set(obj) - set(PLACEMENT_KEYS))
    if unknown:
        raise UsageError(f"unknown key {unknown[0]!r}", code="notify.batch-line",
                         hint=f"the keys are: {', '.join(PLACEMENT_KEYS)} (attachments: use notify-placement --attach)")
    if ("record" in obj) == ("record_file" in obj):
        raise UsageError("give the record as `record` (the object) or `record_file` (a path), one of them",
                         code="notify.batch-line")
    for key in ("reason", "purpose"):
        if not isinstance(obj.get(key), str):
            raise UsageError(f"`{key}` is missing or not a string", code="notify.batch-line",
                             hint=f"reasons: {', '.join(REASONS)}" if key == "reason" else
                             "the purpose and lawful basis of the share, without the child's details")
    to = obj.get("to")
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or not to or not all(isinstance(t, str) for t in to):
        raise UsageError("`to` is missing: a recipient (LA:NNN or URN:NNNNNN) or a list of them",
                         code="notify.batch-line")
    message = obj.get("message")
    if message is not None and not isinstance(message, str):
        raise UsageError("`message` is not a string", code="notify.batch-line")
    respond_by = None
    if obj.get("respond_by") is not None:
        try:
            respond_by = dt.date.fromisoformat(str(obj["respond_by"]))
        except ValueError:
            raise UsageError(f"`respond_by` {obj['respond_by']!r} is not a date (YYYY-MM-DD)",
                             code="notify.batch-line") from None
    if "record_file" in obj:
        if not isinstance(obj["record_file"], str):
            raise UsageError("`record_file` is not a string", code="notify.batch-line")
        record_path = folder / obj["record_file"]
        record, source = package.read_record(record_path), str(record_path)
    else:
        record = obj["record"]
    return Placement(record, to, obj["reason"], obj["purpose"], message, respond_by, line, source)


# -- exclusion notices ----------------------------------------------------------------------------

#: The exclusion's facts a caller gives (options or a small JSON file), with their types.
EXCLUSION_FACTS: Mapping[str, type] = {
    "kind": str, "start_date": str, "sessions": int, "reason_code": str, "reason_description": str,
    "reintegration_meeting": str, "notified_parents_carers": bool,
}


def child_from_record(record: dict[str, Any]) -> dict[str, Any]:
    """The exclusion notice's minimum identification of the child, from the record."""
    child = record["child"]
    out: dict[str, Any] = {"given_name": child["legal_name"]["given"], "family_name": child["legal_name"]["family"],
                           "date_of_birth": child["date_of_birth"]}
    for key in ("upn", "local_child_id"):
        if child.get(key):
            out[key] = child[key]
    return out


def build_exclusion_notice(*, school_urn: str, school_name: str, responsible_la: str, child: dict[str, Any],
                           facts: Mapping[str, Any], reported_by: dict[str, Any]) -> dict[str, Any]:
    """An `exclusion-notice` from the school's facts (see EXCLUSION_FACTS)."""
    unknown = sorted(set(facts) - set(EXCLUSION_FACTS))
    if unknown:
        raise UsageError(f"unknown exclusion fact {unknown[0]!r}", code="exclusion.facts",
                         hint=f"the facts are: {', '.join(EXCLUSION_FACTS)}")
    for key, kind in EXCLUSION_FACTS.items():
        if key in facts and facts[key] is not None and (not isinstance(facts[key], kind)
                                                         or (kind is int and isinstance(facts[key], bool))):
            raise UsageError(f"exclusion fact {key!r} must be a {kind.__name__}", code="exclusion.facts")
    missing = [k for k in ("kind", "start_date", "reason_code", "notified_parents_carers") if facts.get(k) is None]
    if missing:
        raise UsageError(f"the exclusion's {missing[0]} is missing", code="exclusion.facts",
                         hint="give --kind, --start, --reason-code and --parents-carers-notified/--not-notified "
                              "(or the same keys in --facts FILE)")
    exclusion: dict[str, Any] = {"kind": facts["kind"], "start_date": facts["start_date"]}
    for key in ("sessions", "reason_code", "reason_description"):
        if facts.get(key) is not None:
            exclusion[key] = facts[key]
    exclusion["school_urn"] = school_urn
    doc: dict[str, Any] = {
        "schema": messages.EXCLUSION_NOTICE_ID, "school_urn": school_urn, "school_name": school_name,
        "responsible_la": responsible_la, "child": child, "exclusion": exclusion, "reported_by": reported_by,
        "notified_parents_carers": facts["notified_parents_carers"],
    }
    if facts.get("reintegration_meeting"):
        doc["reintegration_meeting"] = facts["reintegration_meeting"]
    return doc


def notify_exclusion(party: Party, *, facts: Mapping[str, Any], record: Any = None,
                     child: dict[str, Any] | None = None, responsible_la: str | None = None, to: str | None = None,
                     reported_by: dict[str, Any] | None = None, purpose: str, send: bool = True,
                     expires_in: dt.timedelta = package.DEFAULT_EXPIRES_IN, source: str = "record") -> NotifyResult:
    """The Designated Teacher's job: tell the responsible VSH of a suspension or permanent exclusion.

    The child comes from `record` (an education record, or a message carrying one) or from
    `child` (given_name, family_name, date_of_birth, upn and/or local_child_id). The recipient is
    `to`, else the record's responsible (placing) council; a recipient that is not the record's
    responsible council is sent to, with a warning.
    """
    result = NotifyResult()
    me = party.keystore.ring()
    if not me.party.startswith("URN:"):
        raise UsageError(f"we are {me.party}: an exclusion notice is sent by the school", code="exclusion.not-a-school",
                         hint="run notify-exclusion in the school's home (a URN:NNNNNN party)")
    urn = me.party[4:]
    rec: dict[str, Any] | None = None
    if record is not None:
        inner = record.get("record") if isinstance(record, dict) and "record" in record else record
        rec = _record(inner, source)
    if rec is not None:
        ident = child_from_record(rec)
        if child:
            ident.update(child)
        record_la = rec["placement"]["placing_la"]
    elif child:
        ident, record_la = dict(child), None
    else:
        raise UsageError("say who the child is: give an education RECORD, or --given-name, --family-name and "
                         "--date-of-birth", code="exclusion.no-child")
    responsible = responsible_la or record_la or (to[3:] if to and to.startswith("LA:") else None)
    if responsible is None:
        raise UsageError("no responsible council: give --to LA:NNN (the child's responsible VSH)",
                         code="exclusion.no-recipient")
    recipient = check_party(to or f"LA:{responsible}")
    if not recipient.startswith("LA:"):
        raise UsageError(f"{recipient} is not a council: an exclusion notice goes to the responsible VSH (LA:NNN)",
                         code="exclusion.no-recipient")
    if record_la is not None and recipient != f"LA:{record_la}":
        result.warnings.append(f"{recipient} is not the record's responsible council "
                               f"(placement.placing_la is {record_la}): the responsible VSH is LA:{record_la}")
    elif record_la is None and responsible_la and recipient != f"LA:{responsible_la}":
        result.warnings.append(f"{recipient} is not the responsible council given (LA:{responsible_la})")
    school = (rec or {}).get("school") or {}
    ours = school.get("urn") == urn
    if rec is not None and not ours:
        result.warnings.append(f"the record's placement school is {school.get('urn', 'not given')} (school.urn), "
                               f"not us ({me.party})")
    contact = reported_by or (school.get("designated_teacher") if ours else None)
    if contact is None:
        raise UsageError("who reports the exclusion? give --contact-name and --contact-email or --contact-phone",
                         code="exclusion.no-contact",
                         hint="the Designated Teacher's contact goes to the VSH with the notice")
    purpose = check_purpose(purpose, rec or {"child": {"legal_name": {"given": ident.get("given_name"),
                                                                      "family": ident.get("family_name")},
                                                       "upn": ident.get("upn"),
                                                       "date_of_birth": ident.get("date_of_birth")}})
    doc = build_exclusion_notice(school_urn=urn, school_name=str(school["name"]) if ours else me.name,
                                 responsible_la=responsible, child=ident, facts=facts, reported_by=contact)
    report = validate_document(doc, expected_type="exclusion-notice", source="exclusion notice", clock=party.clock)
    if not report.ok:
        first = report.errors[0]
        raise InvalidData(f"the exclusion notice is not valid: {first.path}: {first.message}", code="record.invalid",
                          hint=first.hint or "check the exclusion's facts",
                          details={"errors": [e.to_dict() for e in report.errors]})
    party.directory.get(recipient)
    audit: dict[str, Any] = {"purpose": purpose}
    if rec is not None:
        audit["record_ref"] = rec["record_id"]
    result.packages.append(_queue(party, doc, message_type="exclusion-notice", recipient=recipient,
                                  role="responsible-virtual-school", audit=audit, expires_in=expires_in))
    if send:
        _send(party, result.packages)
    return result
