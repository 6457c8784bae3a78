"""package.compact_json writes exactly jsonio.dumps_compact's bytes (the signed statement's
encoding must not change with the encoder), and package.pretty_json exactly jsonio.dumps_pretty's
as UTF-8 (a received record.json and manifest.json must not change with it); both raise what the
standard library raises."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
import sys
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from laxchange import package, samples
from laxchange._util import jsonio

# Every kind of JSON value, with text from all of Unicode except lone surrogates (no UTF-8 holds them).
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
scalars = (st.none() | st.booleans() | text
           | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False)
           | st.sampled_from([0.0, -0.0, 1e-4, 9.999999999999999e-05, 1e16, 9999999999999998.0, 5e-324,
                              1.7976931348623157e308, 123456789.125, 0.1, 1e22]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(text, inner, max_size=5),
                      max_leaves=40)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(text, values, max_size=6) | st.lists(values, max_size=6))
def test_same_bytes_as_the_standard_library(obj: Any) -> None:
    assert package.compact_json(obj) == jsonio.dumps_compact(obj)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(text, values, max_size=6) | st.lists(values, max_size=6))
def test_pretty_same_bytes_as_the_standard_library(obj: Any) -> None:
    assert package.pretty_json(obj) == jsonio.dumps_pretty(obj).encode("utf-8")


def _pretty_alike(obj: Any) -> bool:
    return package.pretty_json(obj) == jsonio.dumps_pretty(obj).encode("utf-8")


def test_every_character_is_written_alike() -> None:
    chars = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    obj = {chars: [chars[i:i + 97] for i in range(0, 0x3000, 97)]}
    assert package.compact_json(obj) == jsonio.dumps_compact(obj)
    assert _pretty_alike(obj)


def test_empty_and_nested_containers_are_indented_alike() -> None:
    obj = {"a": [], "b": {}, "c": [[], {}, [[]], {"d": {}}], "e": [{"f": [1, "two", None, True, 0.5]}]}
    assert _pretty_alike(obj) and _pretty_alike([obj, [], {}]) and _pretty_alike({}) and _pretty_alike([])


@pytest.mark.parametrize("kind", ["education-record", "pep-transfer", "placement-notification", "exclusion-notice"])
def test_a_received_record_takes_the_fast_path_and_gives_the_same_bytes(kind: str) -> None:
    for doc in samples.generate(kind, 3, 5):
        assert package._orjson_writes_as_stdlib(doc)
        assert _pretty_alike(doc)


def test_a_real_statement_takes_the_fast_path_and_gives_the_same_bytes() -> None:
    doc = samples.generate("pep-transfer", 1, 1)[0]
    statement = {"_type": package.STATEMENT_TYPE, "document": doc, "attachments": [], "ratio": 0.25}
    assert package._orjson_writes_as_stdlib(statement)
    assert package.compact_json(statement) == jsonio.dumps_compact(statement)


class Colour(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    HIGH = 3


class Name(str):
    pass


@dataclasses.dataclass
class Point:
    x: int


@pytest.mark.parametrize("value", [
    1e-05, 1e16, -2.5e-300, 1e300, 2**64, -(2**63) - 1, 10**400, Level.HIGH, Name("zoë"),
    (1, "two", 3.0), [[[[[]]]]],
], ids=repr)
def test_values_orjson_writes_otherwise_are_written_by_the_standard_library(value: Any) -> None:
    obj = {"a": [value], "b": {"c": value}}
    assert package.compact_json(obj) == jsonio.dumps_compact(obj)
    assert _pretty_alike(obj)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, uuid.UUID(int=7), Colour.RED, Point(1),
                                   dt.date(2026, 1, 2), b"bytes", {1, 2}, "lone \ud800 surrogate"], ids=repr)
def test_what_the_standard_library_refuses_is_refused_alike(value: Any) -> None:
    obj = {"a": [value]}
    with pytest.raises(Exception) as ours:
        package.compact_json(obj)
    with pytest.raises(Exception) as theirs:
        jsonio.dumps_compact(obj)
    assert type(ours.value) is type(theirs.value) and str(ours.value) == str(theirs.value)
    with pytest.raises(Exception) as ours:
        package.pretty_json(obj)
    with pytest.raises(Exception) as theirs:
        jsonio.dumps_pretty(obj).encode("utf-8")
    assert type(ours.value) is type(theirs.value) and str(ours.value) == str(theirs.value)


def test_too_deep_and_cyclic_are_refused_alike() -> None:
    deep: list[Any] = []
    node = deep
    for _ in range(300):  # beyond orjson's 254 levels, within the standard library's reach
        node.append([])
        node = node[0]
    assert package.compact_json(deep) == jsonio.dumps_compact(deep)
    assert _pretty_alike(deep)
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    with pytest.raises(ValueError, match="Circular reference"):
        package.compact_json(cyclic)
    with pytest.raises(ValueError, match="Circular reference"):
        package.pretty_json(cyclic)
