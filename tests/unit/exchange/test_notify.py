"""notify-placement / notify-exclusion: the minimisation profiles, the misdirection checks, the audit entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from laxchange import package, samples
from laxchange.errors import ConfigError, InvalidData, UsageError
from laxchange.exchange import Party, notify_exclusion, notify_placement
from laxchange.exchange.notify import (
    PROFILES,
    WITHHELD,
    Treatment,
    apply_profile,
    build_placement_messages,
    check_purpose,
    check_recipients,
    profile_for,
    profile_table,
    record_fields,
)
from laxchange.ledger.db import Ledger
from laxchange.validate import validate_document
from tests.support.parties import REPO, passphrase, placement_world
from tests.support.parties import Party as SupportParty

DOC = REPO / "docs" / "minimisation.md"
HOST, DT = PROFILES["host-virtual-school"], PROFILES["designated-teacher"]


# -- the profiles -------------------------------------------------------------------------------

def test_the_doc_tables_are_the_profiles() -> None:
    text = DOC.read_text()
    for profile in PROFILES.values():
        assert profile_table(profile) in text, (
            f"docs/minimisation.md's table for {profile.role} differs from PROFILES: paste "
            f"`laxchange.exchange.notify.profile_table(PROFILES[{profile.role!r}])`")


@pytest.mark.parametrize("role", sorted(PROFILES))
def test_every_field_of_the_record_is_decided_once(role: str) -> None:
    paths = [r.path for r in PROFILES[role].rules]
    assert len(paths) == len(set(paths))
    assert set(paths) == set(record_fields()), "a record field no profile has decided on (or a stale rule)"


@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize("role", sorted(PROFILES))
def test_a_profiled_record_is_still_a_valid_record(role: str, seed: int) -> None:
    rec = samples.education_record(seed)
    out = apply_profile(rec, PROFILES[role])
    report = validate_document(out, expected_type="education-record")
    assert report.ok, [e.to_dict() for e in report.errors]
    assert rec == samples.education_record(seed), "the input record is not changed"


def test_host_virtual_school_gets_no_pep_content_attainment_or_carer() -> None:
    rec = samples.education_record(3)
    out = apply_profile(rec, HOST)
    for section in ("attainment", "attendance", "exclusions"):
        assert section not in out
    assert set(out["contacts"]) == {"social_worker"}
    assert "category_of_need" not in out["placement"] and "reason_for_change" not in out["placement"]
    for key in ("child_voice", "aspirations", "current_arrangements"):
        assert out["pep"][key] == WITHHELD
    assert out["pep"]["short_term_targets"][0]["description"] == WITHHELD
    assert "pupil_premium_plus" not in out["pep"] and "actions" not in out["pep"]
    assert [e.get("urn") for e in out["pep"]["chronology"]] == [rec["school"]["urn"]]
    assert "reason_for_change" not in out["pep"]["chronology"][0]
    assert "preferred_name" not in out["child"] and "uln" not in out["child"]
    text = json.dumps(out)
    for target in rec["pep"]["short_term_targets"]:
        assert target["description"] not in text
    assert rec["pep"]["child_voice"] not in text


def test_designated_teacher_gets_the_pep_but_not_social_care_detail() -> None:
    rec = samples.education_record(3)
    out = apply_profile(rec, DT)
    assert out["pep"] == rec["pep"] and out["contacts"] == rec["contacts"] and out["sen"] == rec["sen"]
    assert out["attainment"] == rec["attainment"] and out["attendance"] == rec["attendance"]
    assert "category_of_need" not in out["placement"] and "placement_provider" not in out["placement"]


def test_a_field_no_profile_knows_is_left_out() -> None:
    rec = samples.education_record(3)
    rec["child"]["shoe_size"] = "5"
    rec["hobbies_extra"] = ["x"]
    for profile in PROFILES.values():
        out = apply_profile(rec, profile)
        assert "shoe_size" not in out["child"] and "hobbies_extra" not in out


def test_treatments_are_labelled_in_the_doc() -> None:
    text = DOC.read_text()
    for t in Treatment:
        assert t.label in text or t is Treatment.omitted


# -- misdirection ---------------------------------------------------------------------------------

def test_a_school_that_is_not_the_placement_school_is_refused() -> None:
    rec = samples.education_record(3)
    with pytest.raises(InvalidData) as e:
        check_recipients(rec, [f"LA:{rec['placement']['host_la']}", "URN:900001"])
    assert e.value.exit_code == 1 and e.value.code == "notify.misdirected"
    assert "school.urn" in e.value.message and rec["school"]["urn"] in e.value.message


def test_a_council_that_is_not_the_host_council_is_refused() -> None:
    rec = samples.education_record(3)
    placing = rec["placement"]["placing_la"]
    with pytest.raises(InvalidData) as e:
        check_recipients(rec, [f"LA:{placing}"])  # our own council: not the host
    assert e.value.code == "notify.misdirected" and "placement.host_la" in e.value.message


def test_a_school_recipient_for_a_record_without_a_school_is_refused() -> None:
    rec = samples.education_record(3)
    del rec["school"]
    with pytest.raises(InvalidData, match=r"school\.urn"):
        check_recipients(rec, ["URN:900001"])


def test_the_right_recipients_pass_once_each() -> None:
    rec = samples.education_record(3)
    to = [f"LA:{rec['placement']['host_la']}", f"URN:{rec['school']['urn']}"]
    assert check_recipients(rec, [*to, to[0]]) == to
    with pytest.raises(UsageError):
        check_recipients(rec, [])
    with pytest.raises(UsageError, match="LA:"):
        check_recipients(rec, ["la:919"])


def test_a_purpose_naming_the_child_is_refused() -> None:
    rec = samples.education_record(3)
    given = rec["child"]["legal_name"]["given"]
    with pytest.raises(UsageError) as e:
        check_purpose(f"new placement for {given.lower()}", rec)
    assert e.value.code == "notify.purpose"
    with pytest.raises(UsageError):
        check_purpose(f"re {rec['child']['upn']}", rec)
    with pytest.raises(UsageError):
        check_purpose("   ", rec)
    assert check_purpose("  statutory duty:\n share the PEP ", rec) == "statutory duty: share the PEP"


@pytest.mark.parametrize(("purpose", "names_child"), [
    ("pep for sam", True), ("PEP FOR SAM.", True), ("(Sam)", True), ("sam-2", True), ("sam", True),
    ("for samuel", False), ("for 2sam", False), ("for sam2", False), ("isams", False), ("sa m", False),
    ("for ſam", True),  # not ASCII: the regular expression's case rules (ſ is an s)
    ("für sam", True), ("für samuel", False), ("Ωsam", True),  # only ASCII letters and digits join a word
])
def test_a_purpose_names_the_child_only_as_a_whole_word(purpose: str, names_child: bool) -> None:
    rec = samples.education_record(3)
    rec["child"]["legal_name"]["given"] = "Sam"
    if names_child:
        with pytest.raises(UsageError, match="names the child"):
            check_purpose(purpose, rec)
    else:
        assert check_purpose(purpose, rec) == purpose


@pytest.mark.parametrize(("purpose", "refused_for"), [
    # the walk-through's, each let through before (only the ISO form of this child's date was caught)
    ("DOB 06/04/2012", "a date"), ("dob 6.4.12", "a date"), ("child born 6 April 2012", "a date"),
    ("a SYNTH-id", None), ("April 6th, 2012", "a date"), ("placed 6th of April", "a date"),
    ("date of birth to follow", "a date of birth"), ("d.o.b. as before", "a date of birth"),
    ("re A123456789012", "a UPN"), ("uln 1234567890", "a number of six digits"),
    # what a purpose does say
    ("new placement: statutory duty to share the PEP (Children Act 1989)", None),
    ("s.22 Children Act 1989; Education Act 1996 s.19", None), ("share within 48 hours, March review", None),
    ("DfE guidance of May 2018", None), ("stubborn non-attendance: PEP review", None),
    # review: what councils write, refused by the first version ("may", "dec", "jun" inside words; a URN)
    ("Key Stage 2 may need extra support", None), ("Year 6 decision on secondary transfer", None),
    ("Section 2 decision", None), ("term 1 junior school", None), ("Y10 jun mocks", None),
    ("new school URN 123456", None), ("LAESTAB 8871234", None),
    # review: dates the first version let through
    ("06-Apr-2012", "a date"), ("2012-Apr-06", "a date"), ("6Apr2012", "a date"),
    ("2012\u201004\u201006", "a date"), ("\uff12\uff10\uff11\uff12-04-06", "a date"),
])
def test_a_purpose_with_a_date_or_an_identifier_of_anyone_is_refused(purpose: str, refused_for: str | None) -> None:
    """It goes into the audit log, which cannot be edited: a date, a date-of-birth marker or an
    identifier's shape is refused whoever's it is, as the child's own names and ids are."""
    rec = samples.education_record(3)
    if refused_for is None:
        assert check_purpose(purpose, rec) == purpose
    else:
        with pytest.raises(UsageError, match=f"holds {refused_for}") as e:
            check_purpose(purpose, rec)
        assert e.value.code == "notify.purpose"


def test_a_purpose_with_the_childs_local_id_is_refused() -> None:
    """The council's own case id for the child identifies it as a UPN does."""
    rec = samples.education_record(3)
    with pytest.raises(UsageError, match="names the child"):
        check_purpose(f"child {rec['child']['local_child_id']}", rec)


def test_the_messages_carry_the_purpose_and_their_headers_from_the_record() -> None:
    rec = samples.education_record(3)
    to = [f"LA:{rec['placement']['host_la']}", f"URN:{rec['school']['urn']}"]
    docs = build_placement_messages(rec, to, reason="school-change", purpose="p", notification_id="a" * 32)
    note, pep = docs[to[0]], docs[to[1]]
    assert note["placing_la"] == rec["placement"]["placing_la"] and note["recipients"] == to
    assert note["notified_by"] == rec["pep"]["vsh_contact"] and note["message"] == "Purpose: p"
    assert pep["transfer_reason"] == "school-change" and pep["record"]["pep"] == rec["pep"]
    assert validate_document(note, expected_type="placement-notification").ok
    assert validate_document(pep, expected_type="pep-transfer").ok


# -- attachment names -----------------------------------------------------------------------------

def test_wire_names_obey_the_package_rule_and_never_clash() -> None:
    names = package.wire_attachment_names(["Signed PEP (autumn 2026).pdf", "signed pep autumn 2026.pdf",
                                           "Élodie's plan.docx", "...", "x" * 300 + ".pdf"])
    assert names[0] == "Signed_PEP_autumn_2026.pdf"
    assert names[1].lower() != names[0].lower() and names[1].endswith(".pdf")
    assert names[2] == "Elodie_s_plan.docx"
    assert names[3] == "attachment-4"
    assert len(names[4]) <= 128 and names[4].endswith(".pdf")
    assert all(package._ATTACHMENT_NAME.fullmatch(n) for n in names)
    assert package.wire_attachment_names(["plain.pdf"]) == ["plain.pdf"]


# -- the library call, over the local-folder transport ------------------------------------------

def _me(p: SupportParty) -> Party:
    return Party.from_home(p.home, passphrase=passphrase, clock=p.clock, keystore=p.store, directory=p.directory)


def test_notify_placement_queues_one_package_per_recipient_with_the_audit_entry(tmp_path: Path) -> None:
    vsh, hvs, school, rec = placement_world(tmp_path)
    att = tmp_path / "Signed PEP (autumn).pdf"
    att.write_bytes(b"%PDF-1.4 fictional")
    with _me(vsh) as me:
        result = notify_placement(me, rec, to=[hvs.party, school.party], reason="new-placement",
                                  purpose="statutory duty to share the PEP", attachments=[att], send=False)
    assert result.ok and [p.state for p in result.packages] == ["queued", "queued"]
    names = sorted(p.name for p in vsh.home.outbox.iterdir())
    assert names == sorted(f"{p.transfer_id}.lax" for p in result.packages), "outbox names are transfer ids only"
    with Ledger(vsh.home.ledger_db) as ledger:
        queued = [e["data"] for e in ledger.audit_entries() if e["event"] == "out.queued"]
    assert {q["party"]: q["message_type"] for q in queued} == {hvs.party: "placement-notification",
                                                               school.party: "pep-transfer"}
    for q in queued:
        assert q["record_ref"] == rec["record_id"] and q["purpose"] == "statutory duty to share the PEP"
        text = json.dumps(q)
        assert rec["child"]["legal_name"]["family"] not in text and rec["child"].get("upn", "-") not in text
    by = {p.recipient: p for p in result.packages}
    opened = school.open(by[school.party].path.read_bytes(), attachments_dir=tmp_path / "att")
    assert opened.document["attachments"][0]["description"] == "original file name: Signed PEP (autumn).pdf"
    assert opened.attachments[0]["name"] == "Signed_PEP_autumn.pdf"
    assert (tmp_path / "att" / "Signed_PEP_autumn.pdf").read_bytes() == b"%PDF-1.4 fictional"
    note = hvs.open(by[hvs.party].path.read_bytes())
    assert note.document["record"] == apply_profile(rec, HOST) and note.attachments == []


def test_a_misdirected_send_leaves_nothing_behind(tmp_path: Path) -> None:
    vsh, hvs, _school, rec = placement_world(tmp_path)
    with _me(vsh) as me, pytest.raises(InvalidData, match=r"school\.urn"):
        notify_placement(me, rec, to=[hvs.party, "URN:900001"], reason="new-placement", purpose="p", send=False)
    assert not vsh.home.outbox.exists() or not list(vsh.home.outbox.iterdir())
    assert not vsh.home.ledger_db.exists() or not Ledger(vsh.home.ledger_db).transfers()


def test_an_unknown_partner_is_refused_before_any_package_is_made(tmp_path: Path) -> None:
    vsh, hvs, school, rec = placement_world(tmp_path)
    (vsh.home.partners / f"URN_{rec['school']['urn']}.json").unlink()  # the school's card was never added
    with _me(vsh) as me, pytest.raises(ConfigError) as e:
        notify_placement(me, rec, to=[hvs.party, school.party], reason="new-placement", purpose="p", send=False)
    assert e.value.code == "partner.unknown"
    assert not vsh.home.outbox.exists() or not list(vsh.home.outbox.iterdir())


def test_notify_exclusion_warns_when_not_sent_to_the_responsible_council(tmp_path: Path) -> None:
    vsh, hvs, school, rec = placement_world(tmp_path)
    facts = {"kind": "suspension", "start_date": "2026-11-20", "sessions": 4, "reason_code": "PD",
             "notified_parents_carers": True}
    with _me(school) as me:
        result = notify_exclusion(me, facts=facts, record=rec, to=hvs.party, purpose="statutory duty", send=False)
    assert result.warnings and "placement.placing_la" in result.warnings[0]
    with _me(school) as me:
        ok = notify_exclusion(me, facts=facts, record=rec, purpose="statutory duty", send=False)
    assert ok.warnings == [] and ok.packages[0].recipient == vsh.party
    got = vsh.open(ok.packages[0].path.read_bytes())
    doc = got.document
    assert doc["child"]["date_of_birth"] == rec["child"]["date_of_birth"]
    assert doc["responsible_la"] == rec["placement"]["placing_la"]
    assert doc["reported_by"] == rec["school"]["designated_teacher"]
    with _me(school) as me, pytest.raises(UsageError, match=r"kind|missing"):
        notify_exclusion(me, facts={"start_date": "2026-11-20"}, record=rec, purpose="p", send=False)


def test_notify_exclusion_from_minimal_child_details(tmp_path: Path) -> None:
    vsh, _hvs, school, _rec = placement_world(tmp_path)
    facts = {"kind": "permanent-exclusion", "start_date": "2026-11-20", "reason_code": "PA",
             "notified_parents_carers": False}
    child = {"given_name": "Pip", "family_name": "Fictional", "date_of_birth": "2014-02-03"}
    contact = {"name": "Jo Testwell", "role": "Designated Teacher", "email": "jo@school.example"}
    with _me(school) as me:
        result = notify_exclusion(me, facts=facts, child=child, to=vsh.party, reported_by=contact,
                                  purpose="statutory duty", send=False)
    doc = vsh.open(result.packages[0].path.read_bytes()).document
    assert doc["child"] == child and doc["exclusion"]["school_urn"] == school.party[4:]
    with _me(school) as me, pytest.raises(UsageError):
        notify_exclusion(me, facts=facts, child=child, to=vsh.party, reported_by=contact,
                         purpose="about Pip Fictional", send=False)


def test_the_messages_share_no_list_or_object_with_the_record() -> None:
    """The profiled record goes into the message uncopied (`wrap_record(owned=True)`): it must be a
    copy of its own, so changing a message (or the record) never changes the other."""
    rec = samples.education_record(3)
    to = [f"LA:{rec['placement']['host_la']}", f"URN:{rec['school']['urn']}"]
    docs = build_placement_messages(rec, to, reason="school-change", purpose="p", notification_id="a" * 32)

    def containers(value: object) -> set[int]:
        out, todo = set(), [value]
        while todo:
            v = todo.pop()
            if isinstance(v, (dict, list)):
                out.add(id(v))
                todo.extend(v.values() if isinstance(v, dict) else v)
        return out

    mine = containers(rec)
    for party in to:
        assert not containers(docs[party]) & mine, party
        assert docs[party]["record"] == apply_profile(rec, profile_for(party))
    assert not containers(docs[to[0]]) & containers(docs[to[1]])
    docs[to[1]]["record"]["pep"]["chronology"][0]["urn"] = "999999"
    assert rec == samples.education_record(3)


def test_notifying_a_record_again_warns_naming_the_earlier_transfer(tmp_path: Path) -> None:
    """The same record to the same recipient within REPEAT_WINDOW: sent all the same (it may be a
    correction), with a warning naming the earlier transfer by its ids, never the child."""
    vsh, hvs, school, rec = placement_world(tmp_path)
    with _me(vsh) as me:
        first = notify_placement(me, rec, to=[school.party], reason="new-placement", purpose="p", send=False)
        assert first.warnings == []
        again = notify_placement(me, rec, to=[hvs.party, school.party], reason="new-placement", purpose="p",
                                 send=False)
    assert again.ok and len(again.packages) == 2, "warned, not refused"
    repeat = [w for w in again.warnings if "already" in w]
    assert repeat == [(f"record {rec['record_id']} was notified to {school.party} for new-placement already on "
                      f"{vsh.clock.now().date().isoformat()} (transfer {first.packages[0].transfer_id}, queued): "
                      f"this notifies it again; if that is a mistake, tell {school.party} to disregard one")], \
        "only the recipient it went to before"
    assert rec["child"]["legal_name"]["family"] not in repeat[0]


def test_a_repeat_outside_the_window_or_after_a_rejection_is_not_warned(tmp_path: Path) -> None:
    from laxchange.exchange.notify import REPEAT_WINDOW
    vsh, _hvs, school, rec = placement_world(tmp_path)
    with _me(vsh) as me:
        first = notify_placement(me, rec, to=[school.party], reason="new-placement", purpose="p", send=False)
        me.ledger.advance("out", first.packages[0].transfer_id, school.party, "rejected")
        assert notify_placement(me, rec, to=[school.party], reason="new-placement", purpose="p",
                                send=False).warnings == [], "resending a rejected one is the remedy"
    vsh.clock.advance(days=REPEAT_WINDOW.days + 1)
    with _me(vsh) as me:
        assert notify_placement(me, rec, to=[school.party], reason="new-placement", purpose="p",
                                send=False).warnings == []


def test_a_different_reason_or_a_notice_made_long_ago_is_not_a_repeat(tmp_path: Path) -> None:
    """The placement ended nine days after it began: news, not a repeat. And the window counts from
    when the earlier one was made, not from its last change (a receipt arriving later)."""
    from laxchange.exchange.notify import REPEAT_WINDOW
    vsh, _hvs, school, rec = placement_world(tmp_path)
    with _me(vsh) as me:
        began = notify_placement(me, rec, to=[school.party], reason="new-placement", purpose="p", send=False)
    vsh.clock.advance(days=9)
    with _me(vsh) as me:
        ended = notify_placement(me, rec, to=[school.party], reason="placement-ended", purpose="p", send=False)
        assert ended.warnings == [], "a different reason"
        again = notify_placement(me, rec, to=[school.party], reason="placement-ended", purpose="p", send=False)
        assert len(again.warnings) == 1 and ended.packages[0].transfer_id in again.warnings[0]
        assert began.packages[0].transfer_id not in again.warnings[0], "the latest one is named"
    vsh.clock.advance(days=REPEAT_WINDOW.days + 1)
    with _me(vsh) as me:
        for p in (*ended.packages, *again.packages):  # changed lately (a receipt came), made long ago
            me.ledger.advance("out", p.transfer_id, school.party, "sent")
        assert notify_placement(me, rec, to=[school.party], reason="placement-ended", purpose="p",
                                send=False).warnings == []
