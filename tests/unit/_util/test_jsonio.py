"""Strict JSON and atomic writes: the only way bytes become data, and data becomes files."""

from __future__ import annotations

import copy
import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from laxchange import samples
from laxchange._util import jsonio
from laxchange.errors import InvalidData
from laxchange.validate import validate_bytes, validate_document


@pytest.mark.parametrize("text,code", [
    ('{"a": 1, "a": 2}', "json.duplicate-key"),
    ('{"a": {"b": [1, {"c": 1, "c": 1}]}}', "json.duplicate-key"),
    ('{"a": NaN}', "json.non-finite"),
    ('{"a": -Infinity}', "json.non-finite"),
    ('{"a": 1', "json.truncated"),
    ('{"a": 1,,}', "json.syntax"),
    ("[" * 100_000, "json.too-deep"),
])
def test_rejections(text: str, code: str) -> None:
    with pytest.raises(InvalidData) as exc:
        jsonio.loads_strict(text)
    assert exc.value.code == code


def test_duplicate_key_path_is_located() -> None:
    with pytest.raises(InvalidData) as exc:
        jsonio.loads_strict('{"a": {"b": [1, {"c": 1, "c": 1}]}}')
    assert exc.value.details["path"] == "$.a.b[1].c"


def test_a_very_long_number_has_its_own_code_and_no_python_internals() -> None:
    """Issue 10: 5,000 digits were reported as json.non-finite quoting sys.set_int_max_str_digits()."""
    for number in ("9" * 5000, "-" + "9" * 5000, "1." + "0" * 5000, "1" * 101):
        with pytest.raises(InvalidData) as exc:
            jsonio.loads_strict('{"a": [1, ' + number + ']}')
        assert exc.value.code == "json.number-too-long", exc.value.message
        assert exc.value.details["path"] == "$.a[1]"
        assert "sys." not in exc.value.message and "int_max_str_digits" not in exc.value.message
        assert str(jsonio.MAX_NUMBER_CHARS) in exc.value.message
    assert jsonio.loads_strict("1" * jsonio.MAX_NUMBER_CHARS) == int("1" * jsonio.MAX_NUMBER_CHARS)


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1E+999", "123456789e9999"])
def test_a_number_too_large_for_a_double_is_non_finite(number: str) -> None:
    """Issue 10: 1e400 parsed as infinity and was caught only by a schema maximum."""
    with pytest.raises(InvalidData) as exc:
        jsonio.loads_strict('{"x": {"y": ' + number + '}}')
    assert exc.value.code == "json.non-finite"
    assert exc.value.details["path"] == "$.x.y"
    assert jsonio.loads_strict('[1e308, 1e-400, -0.5, 2]') == [1e308, 0.0, -0.5, 2]


def test_invalid_utf8_and_size_cap() -> None:
    with pytest.raises(InvalidData) as exc:
        jsonio.loads_strict(b'{"a": "\xff"}')
    assert exc.value.code == "json.encoding"
    with pytest.raises(InvalidData) as exc:
        jsonio.loads_strict(b"[" + b"1," * 100 + b"1]", max_bytes=50)
    assert exc.value.code == "json.too-large"


def test_canonical_is_stable_and_sorted() -> None:
    a = jsonio.dumps_canonical({"b": 1, "a": [1, "é"]})
    assert a == '{"a":[1,"é"],"b":1}'.encode()
    with pytest.raises(ValueError):
        jsonio.dumps_canonical({"x": float("nan")})


def test_write_atomic_leaves_no_temp_and_sets_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    jsonio.write_atomic(target, b"{}", mode=0o600)
    assert target.read_bytes() == b"{}"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_write_atomic_failure_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_bytes(b"old")

    with pytest.raises(TypeError):
        jsonio.write_atomic(target, 12345)  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_validation_never_raises_on_any_json(value: object) -> None:
    report = validate_bytes(json.dumps(value).encode())
    assert not report.ok


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 50), st.data())
def test_validation_never_raises_on_damaged_records(seed: int, data: st.DataObject) -> None:
    """Replace one leaf of a valid record with an arbitrary JSON value: findings, never a crash."""
    doc = samples.education_record(seed)
    leaves: list[tuple[object, object]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                leaves.append((node, k))
                walk(v)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                leaves.append((node, i))
                walk(v)

    walk(doc)
    parent, key = data.draw(st.sampled_from(leaves))
    parent[key] = data.draw(json_values)  # type: ignore[index]
    report = validate_document(doc)
    assert all(f.path.startswith("$") and f.rule and f.message for f in report.findings)


def test_write_atomic_ignores_a_planted_temp_file(tmp_path: Path) -> None:
    """The old predictable temp name let another user pre-create it (or a symlink) and keep it readable."""
    target = tmp_path / "record.json"
    planted = tmp_path / f".record.json.tmp-{os.getpid()}"
    planted.write_bytes(b"planted")
    os.chmod(planted, 0o666)  # noqa: S103  a permissive planted file is what this test is about
    jsonio.write_atomic(target, b"{}")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_bytes() == b"{}" and planted.read_bytes() == b"planted"


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_the_shared_encoders_write_what_json_dumps_writes(value: object) -> None:
    # jsonio keeps one encoder of each kind instead of making one per call: same bytes. (The canonical
    # encoder is RFC 8785, checked against the rfc8785 package in test_jcs.py.)
    assert jsonio.dumps_compact(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                                                     allow_nan=False).encode("utf-8")
    text = json.dumps(value)
    assert jsonio.loads_strict(text) == json.loads(text)


def test_the_shared_encoders_refuse_what_json_dumps_refuses() -> None:
    for bad in (float("nan"), {"a": float("inf")}, {1j: 1}):
        for dump in (jsonio.dumps_canonical, jsonio.dumps_compact):
            with pytest.raises((ValueError, TypeError)):
                dump(bad)


def test_a_lone_surrogate_escape_is_refused_with_its_path_and_a_pair_is_accepted() -> None:
    """A lone `\\ud800` parses as JSON but is no character: signing it would fail deep inside (an internal
    error) and no UTF-8 file could hold it. A surrogate pair is a character outside the BMP, accepted."""
    assert jsonio.loads_strict(b'{"a": ["x", "\\ud83d\\ude00"]}') == {"a": ["x", "\U0001F600"]}
    for raw, path in ((b'{"a": ["x", "\\ud800"]}', "$.a[1]"), (b'{"b": {"\\udfff": 1}}', "$.b (a key)"),
                      (b'{"c": "\\ude00\\ud83d"}', "$.c")):
        with pytest.raises(InvalidData) as exc:
            jsonio.loads_strict(raw, source="t.json")
        assert exc.value.code == "json.surrogate" and exc.value.details["path"] == path, raw


def _containers(value: object) -> list[object]:
    """Every dict and list inside `value` (itself included)."""
    out: list[object] = []
    todo = [value]
    while todo:
        v = todo.pop()
        if isinstance(v, dict):
            out.append(v)
            todo.extend(v.values())
        elif isinstance(v, list):
            out.append(v)
            todo.extend(v)
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_copy_tree_is_a_deep_copy_with_the_same_bytes(seed: int) -> None:
    rec = samples.education_record(seed)
    got = jsonio.copy_tree(rec)
    assert got == copy.deepcopy(rec)
    assert jsonio.dumps_compact(got) == jsonio.dumps_compact(rec)  # the same keys in the same order
    assert jsonio.dumps_canonical(got) == jsonio.dumps_canonical(rec)
    shared = {id(c) for c in _containers(rec)} & {id(c) for c in _containers(got)}
    assert not shared, "the copy shares no dict or list with the original"
    got["child"]["legal_name"]["given"] = "Changed"
    assert rec == samples.education_record(seed)


def test_copy_tree_leaves_what_is_not_json_to_deepcopy() -> None:
    class Tagged(dict):  # type: ignore[type-arg]
        pass

    inner = [1]
    value = {"t": (inner, 2), "d": Tagged(a=[3])}
    got = jsonio.copy_tree(value)
    assert type(got["d"]) is Tagged and got["d"] == {"a": [3]} and got["d"]["a"] is not value["d"]["a"]
    assert got["t"] == ([1], 2) and got["t"][0] is not inner
