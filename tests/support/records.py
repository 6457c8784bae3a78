"""Fictional education records for the render tests: a full one, and one full of hostile markup."""

from __future__ import annotations

import copy
from typing import Any

from laxchange import samples

#: Seed 11: EHC plan, a suspension, KS2 scaled scores and a phonics mark.
RICH_SEED = 11

#: Each payload, if it ever ran, would set a marker on <html> (and log an error): the tests look for both.
MARK = "document.documentElement.dataset.pwned='1';console.error('payload ran')"
HOSTILE_NAME = f'<img src=x onerror="{MARK}">'
HOSTILE_VOICE = f"<script>{MARK}</script> I said: \"no\" & 'maybe' </blockquote><b>bold?</b>"
HOSTILE_SUBJECT = f"</text></svg><script>{MARK}</script>"


def rich_record() -> dict[str, Any]:
    """Seed 11 plus GCSE grades on two dates for two subjects, so a chart has lines."""
    rec = samples.education_record(RICH_SEED)
    rec["attainment"] += [
        {"stage": "KS4", "subject": subject, "kind": "gcse-grade", "value": value, "date": date}
        for subject, value, date in [("Mathematics", "4", "2026-03-10"), ("Mathematics", "5", "2026-07-10"),
                                     ("English language", "5", "2026-03-10"), ("English language", "6", "2026-07-10")]
    ]
    rec["contacts"]["others"] = [{"name": "Jo Sampleton", "role": "Educational psychologist",
                                  "email": "jo.sampleton@eps.example"}]
    return rec


def hostile_record() -> dict[str, Any]:
    """A valid record whose free text fields carry markup and script."""
    rec = copy.deepcopy(rich_record())
    rec["child"]["legal_name"]["given"] = HOSTILE_NAME
    rec["child"]["preferred_name"] = HOSTILE_NAME
    rec["pep"]["child_voice"] = HOSTILE_VOICE
    rec["pep"]["aspirations"] = HOSTILE_VOICE
    rec["school"]["name"] = f'"><svg onload="{MARK}">'
    rec["attainment"][0]["subject"] = HOSTILE_SUBJECT
    rec["pep"]["vsh_contact"]["organisation"] = f"'\"><iframe srcdoc=\"<script>{MARK}</script>\">"
    rec["pep"]["short_term_targets"][0]["owner"] = "{{ 7*7 }} {% raw %}"  # template syntax is text too
    return rec
