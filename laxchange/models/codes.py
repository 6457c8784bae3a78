"""Reference code lists (DfE LA codes, SSDA903, SEN), loaded once from the packaged CSVs."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Code:
    code: str
    description: str
    status: str = "active"


def _read(name: str) -> list[dict[str, str]]:
    with resources.files("laxchange.data").joinpath(name).open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@cache
def la_codes() -> dict[str, Code]:
    """DfE local authority codes: code → Code(name, status 'active' | 'defunct')."""
    return {r["code"]: Code(r["code"], r["name"], r["status"]) for r in _read("la_codes.csv")}


@cache
def active_la_codes() -> tuple[str, ...]:
    return tuple(sorted(c for c, v in la_codes().items() if v.status == "active"))


def _ssda(name: str) -> dict[str, Code]:
    return {r["code"].strip(): Code(r["code"].strip(), r["description"].strip()) for r in _read(name)}


@cache
def ssda903(kind: str) -> dict[str, Code]:
    """One SSDA903 list: legal_status, placement_type, placement_provider, category_of_need,
    reason_new_episode, reason_episode_ceased, reason_placement_change, upn_unknown_reasons."""
    return _ssda(f"ssda903_{kind}.csv")


@cache
def sen(code_set: str) -> dict[str, Code]:
    """SEN code sets: sen_provision, sen_provision_legacy, sen_type, sen2_cease_reason."""
    return {r["code"]: Code(r["code"], r["description"]) for r in _read("sen_codes.csv") if r["code_set"] == code_set}
