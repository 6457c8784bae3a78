"""`jsonio.dumps_canonical` is RFC 8785 (JCS) exactly: the RFC's own examples, and generated values
checked against the independent `rfc8785` package, on both the fast (standard library) path and the
general one. docs/format.md §1.1 is the rule; readers refuse anything else."""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import pytest
import rfc8785
from hypothesis import example, given, settings
from hypothesis import strategies as st

from laxchange._util import jsonio

#: RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical text.
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


def _double(bits: str) -> float:
    value: float = struct.unpack(">d", bytes.fromhex(bits))[0]
    return value


@pytest.mark.parametrize("bits,text", APPENDIX_B)
def test_rfc8785_appendix_b_numbers(bits: str, text: str) -> None:
    assert jsonio.dumps_canonical(_double(bits)) == text.encode("ascii")
    assert jsonio.dumps_canonical([_double(bits)]) == f"[{text}]".encode("ascii")


@pytest.mark.parametrize("bits", ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"])
def test_rfc8785_appendix_b_nan_and_infinity_are_refused(bits: str) -> None:
    with pytest.raises(ValueError):
        jsonio.dumps_canonical({"n": _double(bits)})


def test_rfc8785_section_3_2_2_example() -> None:
    """The RFC's sample input (§3.2.2) and its canonical output (§3.2.3), byte for byte."""
    raw = ('{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
           '"string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
           '"literals": [null, true, false]}')
    want = ('{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
            '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}')
    assert jsonio.dumps_canonical(json.loads(raw)) == want.encode("utf-8")


def test_rfc8785_section_3_2_3_sorts_keys_by_utf16_code_units() -> None:
    """The RFC's sorting example: U+FB33 after U+1F600, because UTF-16 writes U+1F600 as D83D DE00
    (Python's own sort, by code point, puts it last)."""
    doc = {"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
           "1": "One", "\U0001f600": "Emoji: Grinning Face", "\u0080": "Control",
           "\u00f6": "Latin Small Letter O With Diaeresis"}
    order = list(json.loads(jsonio.dumps_canonical(doc)))
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    assert order != sorted(doc)  # where the standard library's sort_keys goes wrong


@pytest.mark.parametrize("value,text", [
    (1.0, "1"), (1e16, "10000000000000000"), (1e-7, "1e-7"), (-0.0, "0"), (1e21, "1e+21"),
    (12.5, "12.5"), (100.0, "100"), (0.1, "0.1"), (1e-6, "0.000001"),
])
def test_where_python_repr_and_ecmascript_differ(value: float, text: str) -> None:
    assert jsonio.dumps_canonical({"n": value}) == b'{"n":%b}' % text.encode("ascii")


def test_strings_are_escaped_as_rfc8785_says() -> None:
    """Only `"`, `\\` and U+0000-U+001F are escaped (short forms where JSON has them, else \\u00xx in
    lower case); DEL, U+2028, non-ASCII and astral characters are written as themselves."""
    text = "".join(map(chr, range(0x20))) + '"\\/\x7f\u2028\u2029é€\U0001f600'
    assert jsonio.dumps_canonical(text) == rfc8785.dumps(text)
    assert jsonio.dumps_canonical(text).decode("utf-8").endswith('\\"\\\\/\x7f\u2028\u2029é€\U0001f600"')


@pytest.mark.parametrize("value", [2**53, -(2**53), 10**30, {"a": [2**63]}])
def test_integers_beyond_the_ijson_range_are_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="2\\*\\*53"):
        jsonio.dumps_canonical(value)
    with pytest.raises(rfc8785.IntegerDomainError):
        rfc8785.dumps(value)
    assert jsonio.dumps_canonical(2**53 - 1) == b"9007199254740991"


def test_what_canonical_json_cannot_carry_is_refused() -> None:
    for bad in ({1: "a"}, {"a": {1, 2}}, "\ud800", {"\udfff": 1}, {"k": b"bytes"}):
        with pytest.raises(ValueError):
            jsonio.dumps_canonical(bad)


def test_a_reader_refuses_every_other_spelling() -> None:
    doc = {"a": 1.5, "b": "x"}
    assert jsonio.is_canonical(doc, b'{"a":1.5,"b":"x"}')
    for other in (b'{"b":"x","a":1.5}', b'{"a": 1.5,"b":"x"}', b'{"a":15e-1,"b":"x"}', b'{"a":1.50,"b":"x"}',
                  b'{"a":1.5,"b":"\\u0078"}'):
        assert not jsonio.is_canonical(jsonio.loads_strict(other), other)
    assert not jsonio.is_canonical({"n": 2**60}, b'{"n":1152921504606846976}')  # no canonical form at all


#: Characters where code-point and UTF-16 order disagree, and ones that need escaping.
_TRICKY = st.sampled_from(["\ue000", "\uffff", "\ufb33", "\U00010000", "\U0001f600", "\U0010ffff", "\x00", "\x1f",
                           "\x7f", '"', "\\", "é", "a", "Z", "\u2028"])
keys = st.text(_TRICKY, max_size=4) | st.text(max_size=6)
scalars = (st.none() | st.booleans() | st.integers(-jsonio.MAX_SAFE_INTEGER, jsonio.MAX_SAFE_INTEGER)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10) | st.text(_TRICKY, max_size=5))
values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(keys, c, max_size=5), max_leaves=25)


@settings(max_examples=600, deadline=None)
@given(values)
@example({"\ue000": 1, "\U00010000": 2})
@example([1e16, 1e-7, -0.0, 5e-324, 2.0**53])
def test_dumps_canonical_is_rfc8785(value: Any) -> None:
    out = jsonio.dumps_canonical(value)
    assert out == rfc8785.dumps(value)
    parts: list[str] = []
    jsonio._jcs(value, parts)  # the general path agrees wherever the fast one is taken
    assert "".join(parts).encode("utf-8") == out


_BELOW_E000 = st.characters(max_codepoint=0xDFFF, exclude_categories=["Cs"])


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers(-jsonio.MAX_SAFE_INTEGER, jsonio.MAX_SAFE_INTEGER)
                    | st.text(_BELOW_E000, max_size=10) | st.text(max_size=10),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(_BELOW_E000, max_size=6), c,
                                                                        max_size=5),
                    max_leaves=25))
def test_the_fast_path_covers_what_laxchange_writes(value: Any) -> None:
    """No float, safe integers, keys below U+E000 (every document laxchange signs): the standard
    library's output is taken as it is, and it is RFC 8785."""
    assert jsonio._stdlib_is_jcs(value)
    assert jsonio.dumps_canonical(value) == rfc8785.dumps(value)


@settings(max_examples=2000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_double_is_written_as_ecmascript_writes_it(x: float) -> None:
    out = jsonio.dumps_canonical(x)
    assert out == rfc8785.dumps(x)
    assert float(out) == x or (x == 0 and math.copysign(1, x) < 0)  # it round-trips (-0 becomes 0)


def test_the_fast_path_writes_every_character_as_the_standard_library_and_rfc8785() -> None:
    """The fast path's bytes come from orjson: every character below U+E000 (the keys the fast
    path takes), as a key and in values, in a tuple too, is written as the standard library's
    sorted encoder and RFC 8785 write it; a lone surrogate is still refused."""
    chars = [chr(c) for c in range(0xE000) if not 0xD800 <= c <= 0xDFFF]
    obj: dict[str, Any] = {c: [c, 1, True, None] for c in chars[::5]}
    obj |= {"all": "".join(chars), "tuple": (1, "x", (2,)), "astral": "\U0001f600\U0010ffff"}
    assert jsonio._stdlib_is_jcs(obj)
    out = jsonio.dumps_canonical(obj)
    assert out == jsonio._CANONICAL.encode(obj).encode("utf-8") == rfc8785.dumps(obj)
    with pytest.raises(ValueError, match="surrogate"):
        jsonio.dumps_canonical({"a": ["\ud800"]})
