"""Synthetic, obviously fictional records and messages, deterministic for a seed.

Names come from invented word lists, phone numbers from Ofcom's range reserved for drama
(01632 960xxx), e-mail domains end in `.example`, school URNs in the 9xxxxx range and every
record carries `local_child_id` "SYNTH-…". Codes (LA, SSDA903, SEN) are real so that records
exercise the real validation. Never put real data here.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Callable
from typing import Any

from laxchange._util import timefmt
from laxchange._util.timefmt import weekdays
from laxchange.errors import UsageError
from laxchange.models import codes, messages, record
from laxchange.models.common import schema_id
from laxchange.validate.identifiers import make_uln, make_upn

DEFAULT_AS_OF = dt.date(2026, 10, 1)

_GIVEN = ["Ada", "Bramble", "Corin", "Delphine", "Ezra", "Fen", "Juniper", "Kit", "Lark", "Marlowe",
          "Nell", "Orrin", "Pip", "Quill", "Rowan", "Sorrel", "Tamsin", "Umber", "Wren", "Yarrow"]
_FAMILY = ["Fictional", "Sampleton", "Testwell", "Makebelieve", "Brackenfold", "Quillmere", "Notreal",
           "Inventia", "Storybrook", "Pretendwick", "Dummersby", "Fablehurst"]
_ADULT_GIVEN = ["Alex", "Sam", "Jordan", "Morgan", "Casey", "Robin", "Jamie", "Taylor", "Drew", "Jo"]
_SCHOOL_A = ["Hazel", "Kestrel", "Willow", "Larkspur", "Foxglove", "Heron", "Bluebell", "Moorhen"]
_SCHOOL_B = {"primary": "Primary School", "secondary": "Academy", "special": "Special School",
             "all-through": "All-Through School", "alternative-provision": "Learning Centre"}
_SUBJECTS_KS2 = ["Reading", "Mathematics", "Grammar, punctuation and spelling"]
_SUBJECTS_KS4 = ["English language", "Mathematics", "Combined science", "History", "Art and design"]
_INTERESTS = ["football", "drawing", "swimming", "coding club", "drama", "guitar", "cooking", "scouts",
              "dance", "gaming", "reading graphic novels", "cycling"]
_ASPIRATIONS = ["to become a vet", "to work with computers", "to be a chef", "to play for a football team",
                "to go to college to study art", "to be a nurse", "to design games"]
_REASONS = ["placement move to a new foster home", "school could not meet needs", "planned transition to secondary",
            "moved into kinship care", "managed move agreed with the virtual school"]
_PLACEMENT_TYPES = ["U4", "U6", "U1", "U3", "K2", "R1", "H5"]
_LEGAL_STATUS = ["C2", "C1", "V2", "E1"]
_NEEDS = ["SEMH", "SLCN", "MLD", "SPLD", "ASD"]


def _hex(rng: random.Random, nbytes: int = 16) -> str:
    return rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()


def _contact(rng: random.Random, role: str, org: str) -> dict[str, Any]:
    given = rng.choice(_ADULT_GIVEN)
    family = rng.choice(_FAMILY)
    slug = re.sub(r"[^a-z0-9]+", "-", org.lower()).strip("-")[:30].strip("-")
    return {
        "name": f"{given} {family}",
        "role": role,
        "organisation": org,
        "email": f"{given.lower()}.{family.lower()}@{slug}.example",
        "phone": f"01632 960{rng.randrange(0, 1000):03d}",
    }


def _la_name(code: str) -> str:
    return codes.la_codes()[code].description


def _date(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    span = max((end - start).days, 0)
    return start + dt.timedelta(days=rng.randrange(span + 1))


#: The schema versions each generator can write; the last is the default.
VERSIONS: dict[str, tuple[str, ...]] = {
    "education-record": ("1.0.0", record.VERSION),
    "placement-notification": ("1.0.0", messages.VERSION),
    "pep-transfer": ("1.0.0", messages.VERSION),
    "exclusion-notice": ("1.0.0", messages.VERSION),
    "receipt": ("1.0.0", messages.RECEIPT_VERSION),
}
_RECORD_VERSION = {"1.0.0": "1.0.0", "1.1.0": record.VERSION}  # message version -> the record version it embeds


def _is_v10(version: str) -> bool:
    return version == "1.0.0"


def education_record(seed: int, *, as_of: dt.date = DEFAULT_AS_OF, version: str = record.VERSION) -> dict[str, Any]:
    """A complete, schema-valid and domain-valid fictional education record.

    Version 1.0.0 is byte for byte what laxchange wrote before 1.1.0 existed (the 1.1.0 facts come
    from a separate random stream, so they do not shift the rest of the record); 1.1.0 adds them
    for about two children in three and leaves them out for the others.
    """
    rng = random.Random(f"education-record:{seed}")
    las = codes.active_la_codes()
    placing, host = rng.sample(las, 2)
    age_years = rng.randrange(5, 16)
    dob = as_of - dt.timedelta(days=int(age_years * 365.25) + rng.randrange(0, 365))
    phase = "primary" if age_years < 11 else rng.choice(["secondary", "secondary", "special", "all-through"])
    school_name = f"{rng.choice(_SCHOOL_A)} {rng.choice(['Lane', 'Vale', 'Park', 'Green'])} {_SCHOOL_B[phase]}"
    urn = f"{rng.randrange(900000, 1000000)}"
    estab = f"{rng.randrange(2000, 7000):04d}"
    period_start = _date(rng, max(dob + dt.timedelta(days=365), as_of - dt.timedelta(days=5 * 365)),
                         as_of - dt.timedelta(days=120))
    placement_start = _date(rng, period_start, as_of - dt.timedelta(days=30))
    school_start = _date(rng, placement_start, as_of - dt.timedelta(days=14))
    pep_date = _date(rng, as_of - dt.timedelta(days=60), as_of - dt.timedelta(days=1))
    year_allocated = (dob.year + 4) % 100
    upn = make_upn(placing, estab, year_allocated, rng.randrange(1, 1000))
    uln = None
    while uln is None:
        uln = make_uln(rng.randrange(100_000_000, 1_000_000_000))
    given, family = rng.choice(_GIVEN), rng.choice(_FAMILY)
    vs_org = f"{_la_name(placing)} Virtual School"
    child: dict[str, Any] = {
        "legal_name": {"given": given, "family": family},
        "date_of_birth": dob.isoformat(),
        "gender": rng.choice(["male", "female"]),
        "home_la": placing,
        "local_child_id": f"SYNTH-{rng.randrange(10**6):06d}",
    }
    # A separate stream decides the rare no-UPN case, so it does not shift the rest of the record.
    upn_known = random.Random(f"upn-known:{seed}").random() >= 0.05
    rng.random()
    if upn_known:
        child["upn"] = upn
        if age_years >= 13:
            child["uln"] = uln
    else:
        child["upn_unknown_reason"] = rng.choice(["UN2", "UN3", "UN5"])
    if rng.random() < 0.3:
        child["preferred_name"] = rng.choice(_GIVEN)

    chronology = []
    t = dob + dt.timedelta(days=4 * 365 + 200)
    for _ in range(rng.randrange(1, 4)):
        if t + dt.timedelta(days=200) < school_start:
            end = _date(rng, t + dt.timedelta(days=200), school_start - dt.timedelta(days=1))
        else:
            end = school_start - dt.timedelta(days=1)
        if end <= t:
            break
        chronology.append({
            "setting_name": f"{rng.choice(_SCHOOL_A)} {rng.choice(['Hill', 'Brook', 'Field'])} School",
            "urn": f"{rng.randrange(900000, 1000000)}",
            "start": t.isoformat(), "end": end.isoformat(),
            "reason_for_change": rng.choice(_REASONS),
        })
        t = end + dt.timedelta(days=1)
    chronology.append({"setting_name": school_name, "urn": urn, "start": school_start.isoformat(),
                       "reason_for_change": "current school in the new placement"})

    def target(horizon_days: int) -> dict[str, Any]:
        return {
            "description": rng.choice(["Read a short novel independently each half term",
                                       "Use number bonds to 100 fluently", "Attend every lesson on time",
                                       "Join one after-school club", "Complete homework with carer support"]),
            "measure": rng.choice(["reading log reviewed at PEP", "teacher assessment", "attendance above 95%",
                                   "club register", "homework tracker"]),
            "owner": rng.choice(["Designated Teacher", "class teacher", "carer", "virtual school adviser"]),
            "due": (pep_date + dt.timedelta(days=horizon_days + rng.randrange(0, 30))).isoformat(),
            "status": rng.choice(["not-started", "in-progress"]),
        }

    provision = rng.choice(["N", "K", "K", "E"])
    sen: dict[str, Any] = {"provision": provision}
    if provision != "N":
        needs = rng.sample(_NEEDS, rng.randrange(1, 3))
        sen["need_types"] = needs
        sen["primary_need"] = needs[0]
    if provision == "E":
        issued = _date(rng, dob + dt.timedelta(days=3 * 365), as_of - dt.timedelta(days=60))
        last_review = max(issued, as_of - dt.timedelta(days=rng.randrange(30, 300)))
        sen["ehcp"] = {
            "maintaining_la": placing,
            "request_date": (issued - dt.timedelta(days=rng.randrange(60, 140))).isoformat(),
            "issued_date": issued.isoformat(),
            "last_annual_review": last_review.isoformat(),
            "annual_review_due": (last_review + dt.timedelta(days=365)).isoformat(),
        }

    attainment = []
    if age_years >= 11:
        for subject in _SUBJECTS_KS2[:2]:
            attainment.append({"stage": "KS2", "subject": subject, "kind": "scaled-score",
                               "value": str(rng.randrange(88, 117)),
                               "date": dt.date(dob.year + 11, 7, 5).isoformat()})
    if age_years >= 7:
        attainment.append({"stage": "PHONICS", "subject": "Phonics screening check", "kind": "phonics-mark",
                           "value": str(rng.randrange(20, 41)), "date": dt.date(dob.year + 6, 6, 14).isoformat()})
    if age_years >= 15 and rng.random() < 0.5:
        for subject in rng.sample(_SUBJECTS_KS4, 2):
            attainment.append({"stage": "KS4", "subject": subject, "kind": "teacher-assessment",
                               "value": rng.choice(["4", "5", "6", "3"]),
                               "date": (as_of - dt.timedelta(days=20)).isoformat()})
    attainment = [a for a in attainment if a["date"] < as_of.isoformat()]

    start, end = max(school_start, as_of - dt.timedelta(days=90)), as_of - dt.timedelta(days=1)
    possible = rng.randrange(60, 120) * 2
    authorised = rng.randrange(0, 12)
    unauthorised = rng.randrange(0, 8)
    if not _is_v10(version):  # 1.0.0 stays byte for byte; later samples keep to what the period can hold:
        # twice its weekdays (a morning and an afternoon), less a few for bank holidays and INSET days
        # (absences scaled with it, so a child's attendance rate is what it was)
        drawn, possible = possible, max(0, 2 * weekdays(start, end) - possible % 8)
        authorised = authorised * possible // drawn
        unauthorised = unauthorised * possible // drawn
    attendance = [{
        "start": start.isoformat(),
        "end": end.isoformat(),
        "sessions_possible": possible,
        "sessions_attended": possible - authorised - unauthorised,
        "authorised_absence": authorised,
        "unauthorised_absence": unauthorised,
    }]
    exclusions = []
    if rng.random() < 0.15:
        exclusions.append({"kind": "suspension",
                           "start_date": _date(rng, school_start, as_of - dt.timedelta(days=2)).isoformat(),
                           "sessions": rng.randrange(1, 6) * 2, "reason_code": "PD",
                           "reason_description": "persistent disruptive behaviour", "school_urn": urn})

    doc: dict[str, Any] = {
        "schema": schema_id("education-record", version),
        "record_id": _hex(rng),
        "as_of": as_of.isoformat(),
        "child": child,
        "placement": {
            "legal_status": rng.choice(_LEGAL_STATUS),
            "category_of_need": rng.choice(["N1", "N1", "N2", "N4", "N7"]),
            "period_of_care_start": period_start.isoformat(),
            "placement_type": rng.choice(_PLACEMENT_TYPES),
            "placement_provider": rng.choice(["PR1", "PR4"]),
            "placement_start": placement_start.isoformat(),
            "reason_for_change": rng.choice(["CARPL", "CHILD", "LAREQ"]),
            "placing_la": placing,
            "host_la": host,
        },
        "school": {
            "urn": urn,
            "laestab": f"{host}{estab}",
            "name": school_name,
            "la_code": host,
            "phase": phase,
            "start_date": school_start.isoformat(),
            "ofsted_rating": rng.choice(["outstanding", "good", "good", "requires-improvement"]),
            "designated_teacher": _contact(rng, "Designated Teacher", school_name),
        },
        "pep": {
            "pep_date": pep_date.isoformat(),
            "next_review_due": (pep_date + dt.timedelta(days=rng.randrange(70, 120))).isoformat(),
            "chronology": chronology,
            "current_arrangements": f"Full-time place in Year {age_years - 4} with daily check-ins with a key adult.",
            "planned_changes": rng.choice(["None planned.", "Phased increase in mainstream lessons next term."]),
            "short_term_targets": [target(60) for _ in range(rng.randrange(2, 4))],
            "long_term_targets": [target(300) for _ in range(rng.randrange(1, 3))],
            "aspirations": f"{given} would like {rng.choice(_ASPIRATIONS)}.",
            "leisure_interests": rng.sample(_INTERESTS, rng.randrange(1, 4)),
            "child_voice": f"{given} says the new school is 'alright' and wants to keep doing "
                           f"{rng.choice(_INTERESTS)}.",
            "pupil_premium_plus": {
                "academic_year": f"{as_of.year if as_of.month >= 9 else as_of.year - 1}/"
                                 f"{(as_of.year + (1 if as_of.month >= 9 else 0)) % 100:02d}",
                "allocation_gbp": 2630.0,
                "planned_use": "1:1 tutoring in maths and a key adult mentoring session each week",
                "spent_to_date_gbp": float(rng.randrange(0, 1200)),
            },
            "actions": [{"description": "Share the PEP with the new Designated Teacher",
                         "owner": "virtual school adviser",
                         "by": (pep_date + dt.timedelta(days=2)).isoformat()}],
            "vsh_contact": _contact(rng, "Virtual School Head", vs_org),
        },
        "sen": sen,
        "attainment": attainment,
        "attendance": attendance,
        "exclusions": exclusions,
        "contacts": {
            "social_worker": _contact(rng, "Social worker", f"{_la_name(placing)} Children's Services"),
            "iro": _contact(rng, "Independent Reviewing Officer", f"{_la_name(placing)} Children's Services"),
            "carer": _contact(rng, "Foster carer", "Fictional Fostering Agency"),
        },
    }
    if _is_v10(version):
        return doc
    _add_v11_facts(doc, seed, as_of, given)
    return doc


def _add_v11_facts(doc: dict[str, Any], seed: int, as_of: dt.date, given: str) -> None:
    """The education-record 1.1.0 members, for some children (a separate stream: 1.0.0 output is unchanged)."""
    rng = random.Random(f"education-record-1.1:{seed}")
    ppp = doc["pep"]["pupil_premium_plus"]
    ppp["allocation_pence"] = round(ppp["allocation_gbp"] * 100)
    ppp["spent_to_date_pence"] = round(ppp["spent_to_date_gbp"] * 100)
    if rng.random() >= 0.65:
        return  # about one child in three: a record with only the 1.0.0 facts (and exact money)
    pep, placement, contacts = doc["pep"], doc["placement"], doc["contacts"]
    pep_date = dt.date.fromisoformat(pep["pep_date"])
    placing = placement["placing_la"]
    doc["cohort"] = "looked-after"
    placement["emergency_placement"] = rng.random() < 0.3
    mother = f"{rng.choice(_ADULT_GIVEN)} {doc['child']['legal_name']['family']}"
    doc["parental_responsibility"] = [
        {"holder": mother, "relationship": "birth mother"},
        {"holder": f"{_la_name(placing)} Council", "relationship": "local authority (care order)",
         "notes": "shared parental responsibility under a care order"},
    ]
    doc["contact_arrangements"] = [{
        "with_whom": mother, "relationship": "birth mother",
        "arrangement": rng.choice(["supervised contact at a family centre every other Saturday",
                                   "fortnightly supervised video call", "monthly supervised visit"]),
        "school_involvement": "none: contact is not at school",
        "restrictions": "must not collect the child from school; tell the carer and the social worker if she tries",
    }]
    residential: dict[str, Any] = {"decision": "residential trips", "carer_may_decide": rng.random() < 0.5}
    if not residential["carer_may_decide"]:
        residential["otherwise"] = "social worker"
    doc["care_arrangements"] = {
        "summary": f"{given} lives with foster carers under a care order; the carers attend parents' evenings.",
        "delegated_authority": [
            {"decision": "day school trips", "carer_may_decide": True},
            residential,
            {"decision": "photographs in school publications", "carer_may_decide": False,
             "otherwise": "social worker"},
        ],
    }
    pep["developmental_needs"] = ["building trusted relationships with adults (attachment)",
                                  rng.choice(["managing change and transitions", "regulating emotions in class"])]
    pep["educational_needs"] = [rng.choice(["reading fluency", "number and place value", "extended writing"])]
    pep["achievements"] = [
        {"description": f"{given} {rng.choice(['joined the school choir', 'won a sports-day race', 'read a novel'])}",
         "kind": "other", "date": (pep_date - dt.timedelta(days=rng.randrange(5, 40))).isoformat()},
        {"description": "moved up a reading band", "kind": "academic"},
    ]
    pep["disruption_before_care"] = rng.choice([
        "Missed most of a school year before entering care; two school moves.",
        "Attendance about 70% in the year before care; no school moves."])
    if doc["sen"]["provision"] == "K":
        pep["incorporated_plans"] = [{"kind": "SEN Support Plan", "date": pep["pep_date"]}]
    pep["named_person"] = dict(doc["school"]["designated_teacher"], role="Designated Teacher (PEP lead)")
    pep["communication"] = "The Designated Teacher contacts the carer weekly and the social worker after each review."
    pep["confidentiality"] = {
        "staff_who_may_know": ["Designated Teacher", "class teacher", "head teacher"],
        "child_wishes": f"{given} does not want classmates told they are in care.",
    }
    review = dt.date.fromisoformat(pep["next_review_due"])
    pep["next_meeting"] = (review - dt.timedelta(days=rng.randrange(0, 14))).isoformat()
    sent = min(pep_date + dt.timedelta(days=rng.randrange(1, 6)), as_of)
    pep["distribution"] = [{"recipient": r, "date": sent.isoformat()}
                           for r in ("child", "carer", "iro", "social-worker")]
    state = rng.choice(["complete", "quality-assured"])
    status: dict[str, Any] = {"state": state, "completed_on": sent.isoformat()}
    if state == "quality-assured":
        status.update(quality_assured_on=min(sent + dt.timedelta(days=rng.randrange(1, 10)), as_of).isoformat(),
                      quality_assured_by=contacts["social_worker"]["organisation"].replace(
                          "Children's Services", "Virtual School"),
                      rag=rng.choice(["green", "green", "amber"]))
    pep["status"] = status


def pep_transfer(seed: int, *, as_of: dt.date = DEFAULT_AS_OF, version: str = messages.VERSION) -> dict[str, Any]:
    rec = education_record(seed, as_of=as_of, version=_RECORD_VERSION[version])
    rng = random.Random(f"pep-transfer:{seed}")
    placing = rec["placement"]["placing_la"]
    return {
        "schema": schema_id("pep-transfer", version),
        "transfer_reason": "new-placement",
        "sent_by": _contact(rng, "Virtual School Head", f"{_la_name(placing)} Virtual School"),
        "message": "PEP and education record for the new placement; please confirm receipt.",
        "record": rec,
        "attachments": [],
    }


def placement_notification(seed: int, *, as_of: dt.date = DEFAULT_AS_OF,
                           version: str = messages.VERSION) -> dict[str, Any]:
    rec = education_record(seed, as_of=as_of, version=_RECORD_VERSION[version])
    rng = random.Random(f"placement-notification:{seed}")
    p = rec["placement"]
    recipients = [f"LA:{p['host_la']}"] + ([f"URN:{rec['school']['urn']}"] if rec.get("school") else [])
    return {
        "schema": schema_id("placement-notification", version),
        "notification_id": _hex(rng),
        "reason": "new-placement",
        "placing_la": p["placing_la"],
        "host_la": p["host_la"],
        "placement_start": p["placement_start"],
        "notified_by": _contact(rng, "Virtual School Head", f"{_la_name(p['placing_la'])} Virtual School"),
        "recipients": recipients,
        "respond_by": (as_of + dt.timedelta(days=2)).isoformat(),
        "record": rec,
    }


def exclusion_notice(seed: int, *, as_of: dt.date = DEFAULT_AS_OF, version: str = messages.VERSION) -> dict[str, Any]:
    rec = education_record(seed, as_of=as_of, version="1.0.0")  # only identity and school are used
    rng = random.Random(f"exclusion-notice:{seed}")
    school = rec["school"]
    child = rec["child"]
    start = as_of - dt.timedelta(days=rng.randrange(1, 10))
    out: dict[str, Any] = {
        "schema": schema_id("exclusion-notice", version),
        "school_urn": school["urn"],
        "school_name": school["name"],
        "responsible_la": rec["placement"]["placing_la"],
        "child": {"given_name": child["legal_name"]["given"], "family_name": child["legal_name"]["family"],
                  "date_of_birth": child["date_of_birth"], "local_child_id": child["local_child_id"]},
        "exclusion": {"kind": "suspension", "start_date": start.isoformat(), "sessions": 4,
                      "reason_code": "PD", "reason_description": "persistent disruptive behaviour",
                      "school_urn": school["urn"]},
        "reported_by": school["designated_teacher"],
        "notified_parents_carers": True,
        "reintegration_meeting": (start + dt.timedelta(days=3)).isoformat(),
    }
    if "upn" in child:
        out["child"]["upn"] = child["upn"]
    if not _is_v10(version):
        _add_v11_notice_facts(out, seed, rec)
    return out


def _add_v11_notice_facts(out: dict[str, Any], seed: int, rec: dict[str, Any]) -> None:
    """exclusion-notice 1.1.0: the cohort for some children; a child with a social worker names them and the DSL."""
    rng = random.Random(f"exclusion-notice-1.1:{seed}")
    pick = rng.random()
    if pick < 0.4:
        return
    cohort = "looked-after" if pick < 0.7 else rng.choice(["child-in-need", "child-protection",
                                                           "previously-looked-after"])
    out["cohort"] = cohort
    if cohort in ("child-in-need", "child-protection"):
        out["social_worker"] = rec["contacts"]["social_worker"]
        out["designated_safeguarding_lead"] = _contact(rng, "Designated Safeguarding Lead", out["school_name"])


def receipt(seed: int, *, as_of: dt.date = DEFAULT_AS_OF, version: str = messages.RECEIPT_VERSION) -> dict[str, Any]:
    rng = random.Random(f"receipt:{seed}")
    at = dt.datetime.combine(as_of, dt.time(9, 30), tzinfo=dt.UTC)
    return {
        "schema": schema_id("receipt", version),
        "in_reply_to": _hex(rng),
        "payload_sha256": _hex(rng, 32),
        "status": "accepted",
        "received_at": timefmt.fmt(at),
        "processed_at": timefmt.fmt(at + dt.timedelta(minutes=2)),
    }


GENERATORS: dict[str, Callable[..., dict[str, Any]]] = {
    "education-record": education_record,
    "placement-notification": placement_notification,
    "pep-transfer": pep_transfer,
    "exclusion-notice": exclusion_notice,
    "receipt": receipt,
}


def generate(kind: str, seed: int, count: int = 1, *, as_of: dt.date = DEFAULT_AS_OF,
             version: str | None = None) -> list[dict[str, Any]]:
    """`count` documents of `kind` at schema `version` (default: the newest), the i-th from seed + i."""
    gen = GENERATORS[kind]
    version = version or VERSIONS[kind][-1]
    if version not in VERSIONS[kind]:
        raise UsageError(f"laxchange cannot write sample {kind} documents at schema version {version}",
                         code="sample.schema-version", hint=f"use one of: {', '.join(VERSIONS[kind])}")
    return [gen(seed + i, as_of=as_of, version=version) for i in range(count)]


if set(GENERATORS) != {"education-record", "placement-notification", "pep-transfer", "exclusion-notice", "receipt"}:
    raise RuntimeError("samples.GENERATORS must have one generator per message type")
if set(VERSIONS) != set(GENERATORS):
    raise RuntimeError("samples.VERSIONS must list the versions of every generator")
