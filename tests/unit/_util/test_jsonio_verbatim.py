"""jsonio.loads_verbatim and loads_canonical (orjson parse + rewrite + compare) decide exactly as
the strict path they shortcut: the same value (types, -0.0, key order) or the same error (code,
message, details), over generated documents, their other spellings and damaged variants:
duplicate keys at any depth, whitespace, escapes, number forms, big integers, NaN, BOM, invalid
UTF-8, lone surrogates, truncation, deep nesting."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from laxchange import package, samples
from laxchange._util import jsonio
from laxchange.errors import InvalidData

# All of Unicode, lone surrogates included (the strict parser refuses them with a path).
text = st.text(st.characters(), max_size=12)
scalars = (st.none() | st.booleans() | text
           | st.integers(min_value=-(2**70), max_value=2**70)
           | st.sampled_from([0, -1, 2**53 - 1, 2**53, 2**63 - 1, 2**63, 2**64, -(2**63), -(2**63) - 1])
           | st.floats(allow_nan=False, allow_infinity=False)
           | st.sampled_from([0.0, -0.0, 1e-4, 1e-05, 1e16, 5e-324, 1.7976931348623157e308, 0.1, 1e22]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
                      max_leaves=30)


def _typed(v: Any) -> Any:
    """`v` with every type kept visible (1 vs 1.0 vs True, -0.0 vs 0.0) and key order kept."""
    if isinstance(v, dict):
        return ("dict", [(k, _typed(x)) for k, x in v.items()])
    if isinstance(v, list):
        return ("list", [_typed(x) for x in v])
    return (type(v).__name__, repr(v))


def _outcome(parse: Any, data: bytes) -> Any:
    try:
        return ("ok", _typed(parse(data)))
    except InvalidData as exc:
        return ("refused", exc.code, exc.message, exc.hint, exc.details)


def _strict(data: bytes) -> Any:
    return jsonio.loads_strict(data, source="doc")


def _verbatim(data: bytes) -> Any:
    return jsonio.loads_verbatim(data, source="doc")


def _canonical_old(data: bytes) -> Any:
    """What read_manifest decided before loads_canonical: strict parse, then is_canonical."""
    doc = jsonio.loads_strict(data, source="doc")
    return doc, jsonio.is_canonical(doc, data)


def _canonical_new(data: bytes) -> Any:
    doc = jsonio.loads_canonical(data)
    if doc is not None:
        return doc, True
    return _canonical_old(data)


def _assert_alike(data: bytes) -> None:
    assert _outcome(_verbatim, data) == _outcome(_strict, data), data[:200]
    assert _outcome(_canonical_new, data) == _outcome(_canonical_old, data), data[:200]
    fast = jsonio.loads_canonical(data)
    if fast is not None:  # taken only for canonical bytes
        assert jsonio.is_canonical(fast, data) and _typed(_strict(data)) == _typed(fast)


def _write(v: Any, dup: list[int], spell: Callable[[Any], bytes]) -> bytes:
    """Compact JSON as orjson writes it, except that the non-empty object numbered dup[0]
    (counting in document order; dup[1] counts) gets its first member again at the end, with
    another value; `spell` writes each scalar."""
    if isinstance(v, dict):
        n = dup[1]
        dup[1] += bool(v)
        parts = [spell(k) + b":" + _write(x, dup, spell) for k, x in v.items()]
        if n == dup[0] and v:
            k = next(iter(v))
            parts.append(spell(k) + b":" + spell([v[k], "again"]))
        return b"{" + b",".join(parts) + b"}"
    if isinstance(v, list):
        return b"[" + b",".join(_write(x, dup, spell) for x in v) + b"]"
    return spell(v)


def _orjson_scalar(v: Any) -> bytes:
    try:
        return orjson.dumps(v)
    except (orjson.JSONEncodeError, TypeError):  # a big integer, a lone surrogate: the standard library's text
        return json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _spellings(v: Any) -> list[bytes]:
    out = [json.dumps(v).encode(),  # ASCII escapes, spaces
           json.dumps(v, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"),
           json.dumps(v, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8", "surrogatepass"),
           json.dumps(v, indent=1).encode()]
    try:
        out.append(orjson.dumps(v))
        out.append(orjson.dumps(v, option=orjson.OPT_SORT_KEYS))
    except orjson.JSONEncodeError:
        pass
    with contextlib.suppress(ValueError):  # no canonical form: a big integer, a lone surrogate
        out.append(jsonio.dumps_canonical(v))
    return out


@settings(max_examples=300, deadline=None)
@given(values)
def test_every_spelling_of_a_value_is_decided_alike(v: Any) -> None:
    for data in _spellings(v):
        _assert_alike(data)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(text, values, min_size=1, max_size=4), st.integers(min_value=0, max_value=20),
       st.booleans())
def test_a_duplicate_key_at_any_depth_is_refused_alike(v: dict[str, Any], which: int, sort: bool) -> None:
    counted = [-1, 0]
    _write(v, counted, _orjson_scalar)  # how many objects there are
    dup = [which % counted[1], 0]
    data = _write(dict(sorted(v.items())) if sort else v, dup, _orjson_scalar)
    strict = _outcome(_strict, data)
    assert strict[0] == "refused"
    _assert_alike(data)


_MUTATIONS: list[Callable[[bytes], bytes]] = [
    lambda b: b" " + b, lambda b: b + b"\n", lambda b: b"\xef\xbb\xbf" + b, lambda b: b + b"x",
    lambda b: b[:-1], lambda b: b[: len(b) // 2], lambda b: b.replace(b",", b", ", 1),
    lambda b: b.replace(b":", b" :", 1), lambda b: b.replace(b"/", b"\\/", 1), lambda b: b.replace(b"a", b"\\u0061", 1),
    lambda b: b.replace(b"\\u00", b"\\u00".upper(), 1), lambda b: b.replace(b"\\n", b"\\u000a", 1),
    lambda b: b.replace(b"\\n", b"\\u000A", 1), lambda b: b.replace(b"\xc3\xa9", b"\\u00e9", 1),
    lambda b: b.replace(b"0", b"-0", 1), lambda b: b.replace(b"1", b"1.0", 1), lambda b: b.replace(b"1", b"1e0", 1),
    lambda b: b.replace(b"1", b"1E0", 1), lambda b: b.replace(b"1", b"10000000000000000000000", 1),
    lambda b: b.replace(b"1", b"NaN", 1), lambda b: b.replace(b"1", b"Infinity", 1),
    lambda b: b.replace(b"1", b"1e400", 1), lambda b: b.replace(b"1", b"1" * 120, 1),
    lambda b: b.replace(b"a", b"\\ud800", 1), lambda b: b.replace(b"a", b"\\udc00\\ud800", 1),
    lambda b: b.replace(b"a", b"\\ud83d\\ude00", 1), lambda b: b.replace(b"a", b"\xff", 1),
    lambda b: b.replace(b"a", b"\xed\xa0\x80", 1), lambda b: b.replace(b"a", b"\x00", 1),
    lambda b: b.replace(b"true", b"True", 1), lambda b: b.replace(b"}", b",}", 1), lambda b: b.replace(b"]", b",]", 1),
]


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(text, values, min_size=1, max_size=4))
def test_damaged_variants_are_decided_alike(v: dict[str, Any]) -> None:
    for base in _spellings(v):
        for mutate in _MUTATIONS:
            _assert_alike(mutate(base))


@pytest.mark.parametrize("data", [
    b"", b" ", b"null", b"1", b"-0", b"-0.0", b"0.0", b'"x"', b"[]", b"{}", b'{"a":1,"a":1}', b'{"a":{"b":1,"b":2}}',
    b'[{"a":[{"c":1,"c":1}]}]', b'{"a":1} ', b"NaN", b"[Infinity]", b"[-Infinity]", b"[1e400]", b"[-1e400]",
    b"[18446744073709551616]", b"[9007199254740992]", b"[9223372036854775807]", b"[-9223372036854775809]",
    b'["\\ud800"]', b'["\\ud83d\\ude00"]', b'["\xf0\x9f\x98\x80"]', b'{"\\ud800":1}', b"\xef\xbb\xbf{}",
    b'["\xff"]', b'["\xed\xa0\x80"]', b"[1.5e300]", b"[1e-05]", b"[0.00001]", b"[1e16]", b"[10000000000000000.0]",
    b'{"b":1,"a":2}', b'{"a":2,"b":1}', b'{"\xef\xac\xb3":1,"\xf0\x9f\x98\x80":2}',
    b'{"\xf0\x9f\x98\x80":2,"\xef\xac\xb3":1}', b'["\\u001f"]', b'["\\u001F"]', b'["\\/"]', b'["\x7f"]',
    b"[" * 253 + b"]" * 253, b"[" * 254 + b"]" * 254, b"[" * 300 + b"]" * 300, b"[" * 1100 + b"]" * 1100,
    b"[" * 5000 + b"]" * 5000, b'{"a":' * 300 + b"1" + b"}" * 300,
], ids=lambda d: repr(d[:40]))
def test_the_edge_cases_are_decided_alike(data: bytes) -> None:
    _assert_alike(data)


def test_oversized_input_takes_the_strict_path_and_its_error() -> None:
    data = orjson.dumps({"a": "x" * 100})
    for parse in (jsonio.loads_verbatim, jsonio.loads_strict):
        with pytest.raises(InvalidData) as exc:
            parse(data, source="doc", max_bytes=50)
        assert exc.value.code == "json.too-large"
    assert jsonio.loads_canonical(data, 50) is None


def test_what_laxchange_writes_takes_the_fast_paths() -> None:
    """The shortcut is taken for a real statement and a canonical manifest-like payload (else it
    is only a slower way to the strict parse), and not beyond VERBATIM_MAX_BYTES."""
    doc = samples.generate("pep-transfer", 1, 1)[0]
    body = package.compact_json({"_type": package.STATEMENT_TYPE, "document": doc, "attachments": []})
    assert jsonio._orjson_verbatim(body) is not jsonio._MISS
    assert _typed(jsonio.loads_verbatim(body)) == _typed(jsonio.loads_strict(body))
    manifest = {"format": "laxchange/1", "payload_size": 123, "sender_key_ids": ["ab" * 16], "zoë": "é"}
    raw = jsonio.dumps_canonical(manifest)
    assert jsonio.loads_canonical(raw) == manifest
    assert jsonio.loads_canonical(jsonio.dumps_compact(dict(reversed(manifest.items())))) is None
    big = orjson.dumps(["x" * jsonio.VERBATIM_MAX_BYTES])
    assert jsonio.loads_canonical(big) is None
    assert jsonio.loads_verbatim(big) == jsonio.loads_strict(big)


def test_a_key_past_u_e000_is_left_to_the_exact_check() -> None:
    """orjson sorts by code point, RFC 8785 by UTF-16 unit: U+FB33 after U+1F600 in JCS."""
    doc = {"\U0001f600": 1, "\ufb33": 2}
    jcs = jsonio.dumps_canonical(doc)
    assert jsonio.loads_canonical(jcs) is None  # not provable by orjson's order
    assert jsonio.is_canonical(jsonio.loads_strict(jcs), jcs)
    assert jsonio.loads_canonical(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)) is None
    _assert_alike(jcs)
