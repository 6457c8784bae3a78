"""The minor-release process (docs/schemas.md): released files unchanged, a minor only adds optional members."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from laxchange.models import schemastore
from laxchange.models.common import SCHEMA_BASE

#: The SHA-256 of every 1.0.0 file as first released: a minor release must leave them alone.
RELEASED_1_0_0 = {
    "common/1.0.0.json": "a1cb86f8d7c29477fd22f482db0d3976948869ce8a602fb3421a4b73d11cd4f2",
    "education-record/1.0.0.json": "d7c3b160b3f967947796a0954291894a5767b7104c823e5eac25091fc247d2a5",
    "exclusion-notice/1.0.0.json": "e23cf200cb4ac7c1473681f755a3fdc25f88f93f68088a290cd7132b20d4bf9a",
    "pep-transfer/1.0.0.json": "6b87fa8441c6e698a6477d0ed95e37ed49bc359fd45dd6f1ba47fc8a07a945ff",
    "placement-notification/1.0.0.json": "14376755596b49c3e86ba4bbecd282d823048f3c5f0d1a8a39f048c90c234bea",
    "receipt/1.0.0.json": "f45d410a4ee99823fbd6f9e794c158bd1f61b14024ab8b1c9573878443902257",
}
#: Keys whose value may differ between minors: they name the version or only describe.
_VERSIONED = {"$id", "title", "description", "x-laxchange-version", "const"}


def test_the_lock_has_the_new_files_and_the_old_ones_unchanged() -> None:
    lock = schemastore.read_lock()
    for rel, digest in RELEASED_1_0_0.items():
        assert lock[rel] == digest, f"{rel} was released and must never change"
    for name in ("education-record", "placement-notification", "pep-transfer", "exclusion-notice", "receipt"):
        assert f"{name}/1.1.0.json" in lock
    assert schemastore.check_lock() == []


def _same_up_to_version(old: Any, new: Any, where: str) -> list[str]:
    """Problems if `new` is not `old` plus optional members (refs may move to the newer minor)."""
    if isinstance(old, list):
        if not isinstance(new, list) or len(old) != len(new):
            return [f"{where}: list changed"]
        pairs = enumerate(zip(old, new, strict=True))
        return [p for i, (a, b) in pairs for p in _same_up_to_version(a, b, f"{where}[{i}]")]
    if not isinstance(old, dict):
        return [] if old == new else [f"{where}: {old!r} became {new!r}"]
    if not isinstance(new, dict):
        return [f"{where}: an object became {new!r}"]
    problems = []
    for key, value in old.items():
        if key in _VERSIONED and key != "const":
            continue
        if key not in new:
            problems.append(f"{where}.{key}: removed")
        elif key == "$ref":
            if _unversion(value) != _unversion(new[key]):
                problems.append(f"{where}.$ref: {value} became {new[key]}")
        elif key == "const" and isinstance(value, str) and value.startswith(SCHEMA_BASE):
            if _unversion(value) != _unversion(new[key]):
                problems.append(f"{where}.const: {value} became {new[key]}")
        elif key == "required":
            if set(new[key]) != set(value):
                problems.append(f"{where}.required: {sorted(value)} became {sorted(new[key])} (a minor adds no "
                                "required member)")
        elif key in ("properties", "$defs"):
            problems.extend(p for k, v in value.items() for p in _same_up_to_version(v, new[key].get(k, _GONE),
                                                                                    f"{where}.{key}.{k}"))
        else:
            problems.extend(_same_up_to_version(value, new[key], f"{where}.{key}"))
    if "required" not in old and new.get("required"):
        problems.append(f"{where}.required: added {new['required']}")
    return problems


_GONE = "<removed>"


def _unversion(ref: str) -> str:
    """A $ref or schema id with the MINOR.PATCH dropped: 1.0.0 and 1.1.0 refer to the same major."""
    parsed = schemastore.parse_id(ref.split("#")[0])
    if parsed is None:
        return ref
    name, version = parsed
    return f"{SCHEMA_BASE}/{name}/{version.split('.')[0]}#{ref.partition('#')[2]}"


def _minor_pairs() -> list[tuple[str, str, str]]:
    pairs = []
    for name in sorted({s.name for s in schemastore.list_schemas()}):
        for a, b in itertools.pairwise(schemastore.versions(name)):
            if schemastore.version_key(a)[0] == schemastore.version_key(b)[0]:
                pairs.append((name, a, b))
    return pairs


@pytest.mark.parametrize(("name", "old", "new"), _minor_pairs())
def test_a_minor_release_only_adds_optional_members(name: str, old: str, new: str) -> None:
    assert _same_up_to_version(schemastore.load(name, old), schemastore.load(name, new), name) == []


def test_the_check_catches_a_new_required_member() -> None:
    old = schemastore.load("education-record", "1.0.0")
    bad = {**old, "required": [*old["required"], "cohort"]}
    assert any("required" in p for p in _same_up_to_version(old, bad, "x"))
    gone = {**old, "properties": {k: v for k, v in old["properties"].items() if k != "sen"}}
    assert any("sen" in p for p in _same_up_to_version(old, gone, "x"))


def test_every_minor_pair_is_checked() -> None:
    assert {(n, a, b) for n, a, b in _minor_pairs()} >= {
        ("education-record", "1.0.0", "1.1.0"), ("pep-transfer", "1.0.0", "1.1.0"),
        ("placement-notification", "1.0.0", "1.1.0"), ("exclusion-notice", "1.0.0", "1.1.0"),
        ("receipt", "1.0.0", "1.1.0")}
