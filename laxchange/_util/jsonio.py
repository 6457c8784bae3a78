"""Strict JSON: the only way laxchange turns bytes into data.

Duplicate keys, NaN/Infinity, invalid UTF-8, a byte-order mark, trailing data and oversized
inputs are all rejected, because two parsers that disagree on such input are how signed data
gets misread. `dumps_canonical` is the JSON Canonicalization Scheme (RFC 8785, "JCS"), exactly:
what laxchange signs and hashes, and what its readers require byte for byte.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import orjson

from laxchange._util.fs import open_atomic, open_regular, read_bounded, write_atomic
from laxchange.errors import InvalidData

__all__ = ["MAX_JSON_BYTES", "MAX_SAFE_INTEGER", "copy_tree", "dumps_canonical", "dumps_compact", "dumps_pretty",
           "is_canonical", "load_file", "loads_canonical", "loads_strict", "loads_verbatim", "open_atomic",
           "write_atomic"]

#: Default cap on a JSON document (records with long PEP narratives stay far below this).
MAX_JSON_BYTES = 8 * 1024 * 1024
#: Longest number accepted, in characters of its JSON text: far beyond any real value (a double
#: needs at most 24), far below where converting it costs anything.
MAX_NUMBER_CHARS = 100
#: The largest integer canonical JSON carries (RFC 8785 §3.2.2.3 via I-JSON, RFC 7493 §2.2): every
#: integer up to it is exact in an IEEE 754 double, so every JCS implementation writes it the same.
MAX_SAFE_INTEGER = 2**53 - 1


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)  # C speed; only a short object with a repeated key takes the slow path
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


class _NumberTooLong(ValueError):
    pass


class _NonFinite(ValueError):
    pass


def _int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _NumberTooLong(text)
    return int(text)


def _float(text: str) -> float:
    """A JSON number with a fraction or exponent; one too large for a double (1e400) is refused,
    not turned into infinity."""
    if len(text) > MAX_NUMBER_CHARS:
        raise _NumberTooLong(text)
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(text)
    return value


def _marked(parse: Any) -> Any:
    """`parse`, but a number it refuses becomes a _Marker (for `_locate`)."""
    def hook(text: str) -> Any:
        try:
            return parse(text)
        except ValueError:
            return _Marker(text)
    return hook


class _Marker:
    """Stands in for a duplicate key or a non-finite number while locating it."""

    def __init__(self, what: str) -> None:
        self.what = what


_DUP = "\x00laxchange-duplicate"


def _locate(text: str) -> str:
    """JSON path of the first duplicate key, NaN/Infinity or refused number (a second, lenient
    parse: error path only)."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out and _DUP not in out:
                out[_DUP] = key
            out.setdefault(key, value)
        return out

    def walk(node: Any, path: str) -> str | None:
        if isinstance(node, _Marker):
            return path
        if isinstance(node, dict):
            if _DUP in node:
                return f"{path}.{node[_DUP]}"
            for key, value in node.items():
                found = walk(value, f"{path}.{key}")
                if found:
                    return found
        elif isinstance(node, list):
            for i, value in enumerate(node):
                found = walk(value, f"{path}[{i}]")
                if found:
                    return found
        return None

    try:
        doc = json.loads(text, object_pairs_hook=pairs, parse_constant=_Marker, parse_int=_marked(_int),
                         parse_float=_marked(_float))
    except (ValueError, RecursionError):
        return "$"
    return walk(doc, "$") or "$"


def _truncated(exc: json.JSONDecodeError, text: str) -> bool:
    """Did the parser run off the end (a cut-short file) rather than meet a wrong character?"""
    if exc.msg.startswith("Unterminated string"):
        return True
    return exc.pos >= len(text.rstrip())


#: One decoder and two encoders, made once: json.loads/json.dumps with options build a new one per
#: call (a visible share of opening a small package). They hold no state between calls.
_STRICT = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constants, parse_int=_int,
                           parse_float=_float)
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _lone_surrogate_at(value: Any, path: str) -> str | None:
    """The path of the first string holding a UTF-16 surrogate that is not half of a pair, or None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            found = _lone_surrogate_at(k, f"{path} (a key)") or _lone_surrogate_at(v, f"{path}.{k}")
            if found:
                return found
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _lone_surrogate_at(v, f"{path}[{i}]")
            if found:
                return found
    return None


def _refuse_lone_surrogates(doc: Any, source: str) -> None:
    """JSON may escape a lone surrogate (`\\ud800`), but it is not Unicode text: no UTF-8 can hold it, so
    it could not be signed, stored or shown. Refused here, where the document is read, with its path."""
    path = _lone_surrogate_at(doc, "$")
    if path is not None:
        raise InvalidData(f"{source}: the text at {path} holds a lone UTF-16 surrogate escape (\\uD800-\\uDFFF "
                          "without its pair), which is not a character", code="json.surrogate",
                          hint="export the text again as UTF-8; a character outside the BMP is written as a "
                               "pair of escapes, or as itself", details={"path": path})


def loads_strict(data: bytes | str, *, source: str = "<input>", max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Parse JSON strictly. Raises InvalidData naming the source, rule and position."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(raw) > max_bytes:
        raise InvalidData(
            f"{source}: {len(raw)} bytes is larger than the {max_bytes}-byte limit",
            code="json.too-large",
            hint="split the input or raise the limit deliberately",
        )
    if raw.startswith(b"\xef\xbb\xbf"):
        raise InvalidData(f"{source}: starts with a UTF-8 byte-order mark", code="json.bom",
                          hint="save the file as UTF-8 without BOM")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidData(f"{source}: not valid UTF-8 at byte {exc.start}", code="json.encoding",
                          hint="save the file as UTF-8") from None
    if not text.strip():
        raise InvalidData(f"{source}: empty document", code="json.empty", hint="the file has no JSON in it")
    try:
        doc = _STRICT.decode(text)
        if _SURROGATE_ESCAPE.search(text):
            _refuse_lone_surrogates(doc, source)
        return doc
    except _DuplicateKey as exc:
        path = _locate(text)
        raise InvalidData(
            f"{source}: duplicate key {str(exc)!r} at {path}",
            code="json.duplicate-key",
            hint="each key may appear once per object; remove the repeated one",
            details={"path": path},
        ) from None
    except json.JSONDecodeError as exc:
        truncated = _truncated(exc, text)
        what = "truncated or incomplete JSON" if truncated else exc.msg
        raise InvalidData(
            f"{source}: {what} at line {exc.lineno} column {exc.colno}",
            code="json.truncated" if truncated else "json.syntax",
            hint="the file is cut short; fetch or export it again" if truncated else "fix the JSON syntax",
            details={"path": "$", "line": exc.lineno, "column": exc.colno},
        ) from None
    except _NumberTooLong as exc:
        path = _locate(text)
        raise InvalidData(f"{source}: the number at {path} is {len(str(exc))} characters long, more than the "
                          f"{MAX_NUMBER_CHARS}-character limit", code="json.number-too-long",
                          hint="no value in a laxchange document needs so many digits; check how it was produced",
                          details={"path": path}) from None
    except _NonFinite as exc:
        path = _locate(text)
        shown = str(exc) if len(str(exc)) <= 30 else str(exc)[:27] + "..."
        raise InvalidData(f"{source}: the number {shown} at {path} is too large to represent (it would be infinite)",
                          code="json.non-finite", hint="use a number within the range of a double",
                          details={"path": path}) from None
    except ValueError as exc:  # NaN / Infinity
        path = _locate(text)
        raise InvalidData(f"{source}: {exc} at {path}", code="json.non-finite",
                          hint="JSON has no NaN or Infinity; use null or a number",
                          details={"path": path}) from None
    except RecursionError:
        raise InvalidData(f"{source}: nested too deeply", code="json.too-deep",
                          hint="the document is not a laxchange record") from None


#: Up to this size `loads_verbatim` tries orjson first. Beyond it orjson's parse and write, which
#: decode the text to `str` and encode it back to UTF-8, cost more than the strict parse (measured:
#: 20 against 50 µs at 10 KB, about even at 256 KB, 1.5 against 1.25 ms at 1 MB).
VERBATIM_MAX_BYTES = 128 * 1024


def _orjson_verbatim(raw: bytes, option: int = 0) -> Any:
    """The value `raw` is orjson's exact writing of, or _MISS.

    Accepted only when writing the parsed value again gives `raw` byte for byte, and then
    `loads_strict(raw)` accepts it with an equal value: a duplicate key would be written once, a
    space, an escape orjson does not write (`\\/`, `\\u00e9`, upper-case hex, a surrogate
    pair), `-0`, `1E5`, `1.0e5`, a big integer (orjson reads it as a float) or a BOM would not be
    written again, NaN/Infinity, invalid UTF-8, lone surrogates and nesting beyond 1024 orjson
    refuses to read, and beyond 254 levels to write. What orjson writes, the strict parser reads
    to the same value: strings and integers exactly, a float from its shortest round-trip digits
    (whatever orjson's reading of them was, the text is that double's own), numbers far within
    MAX_NUMBER_CHARS, no lone surrogate, no NaN."""
    try:
        doc = orjson.loads(raw)
        if orjson.dumps(doc, option=option) == raw:
            return doc
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        pass
    return _MISS


_MISS = object()


def loads_verbatim(data: bytes, *, source: str = "<input>", max_bytes: int = MAX_JSON_BYTES) -> Any:
    """`loads_strict(data)`: the same value, or the same error, faster for compact JSON as
    orjson writes it (a package's signed statement, `package.compact_json`).

    One orjson parse, one orjson write and one comparison of bytes replace the strict parse with
    its per-object duplicate-key hook, when they give back `data` exactly (`_orjson_verbatim` says
    why that is as strict); anything else takes `loads_strict`, which accepts or refuses it as
    ever and says why."""
    if len(data) <= min(max_bytes, VERBATIM_MAX_BYTES):
        doc = _orjson_verbatim(bytes(data))
        if doc is not _MISS:
            return doc
    return loads_strict(data, source=source, max_bytes=max_bytes)


def loads_canonical(data: bytes, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """The value whose canonical JSON (`dumps_canonical`) `data` is, or None when it is not (or
    not provably here: then `loads_strict` and `is_canonical` decide and say why).

    For what laxchange signs (no floats, integers within ±MAX_SAFE_INTEGER, no member name at or
    above U+E000: `_stdlib_is_jcs`) orjson's sorted compact writing is the standard library's,
    which is then RFC 8785: code-point order is UTF-16 order below U+E000, and both escape only
    `"`, `\\` and U+0000-U+001F, alike. So equal bytes mean `data` is canonical and
    `loads_strict(data)` gives this value (see `_orjson_verbatim`). None is never a document
    here: `null` itself is refused, for the caller's general path."""
    if len(data) > min(max_bytes, VERBATIM_MAX_BYTES):
        return None
    doc = _orjson_verbatim(bytes(data), orjson.OPT_SORT_KEYS)
    if doc is _MISS or not _stdlib_is_jcs(doc):
        return None
    return doc


def load_file(path: str | os.PathLike[str], *, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Read and strictly parse a JSON file: a regular file only (never a FIFO or a device), its
    size checked before it is read whole, and never more than `max_bytes + 1` bytes read."""
    p = Path(path)
    with open_regular(p, what="JSON file") as fh:
        raw = read_bounded(fh, max_bytes)
        size = max(os.fstat(fh.fileno()).st_size, max_bytes + 1)
    if raw is None:
        raise InvalidData(f"{p}: {size} bytes is larger than the {max_bytes}-byte limit", code="json.too-large",
                          hint="split the input")
    return loads_strict(raw, source=str(p), max_bytes=max_bytes)


def dumps_canonical(obj: Any) -> bytes:
    """`obj` in the JSON Canonicalization Scheme (RFC 8785), UTF-8: for hashing and signing.

    The standard library's sorted compact output (`_CANONICAL`), and orjson's, are already JCS for
    every value `_stdlib_is_jcs` accepts, which is every document laxchange itself writes (strings,
    integers, booleans, null, ASCII or Latin keys), so that is the fast path; anything else is written by
    `_jcs`. Raises ValueError for what JCS cannot represent exactly: an integer beyond
    ±MAX_SAFE_INTEGER, NaN or infinity, a string with a lone surrogate, a key that is not a string."""
    if _stdlib_is_jcs(obj):
        try:  # orjson's sorted writing of such a value is the same bytes, three times faster (`loads_canonical`)
            return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:  # a lone surrogate, nesting beyond 254: the standard library says which
            pass
        try:
            return _CANONICAL.encode(obj).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("a string holds a lone UTF-16 surrogate, which canonical JSON cannot carry") from None
    parts: list[str] = []
    _jcs(obj, parts)
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a string holds a lone UTF-16 surrogate, which canonical JSON cannot carry") from None


def is_canonical(doc: Any, raw: bytes) -> bool:
    """Are `raw` (the bytes `doc` was parsed from) exactly `doc`'s canonical JSON? What a reader of
    signed canonical JSON checks: there is one spelling of each document, and it must be that one."""
    try:
        return dumps_canonical(doc) == raw
    except ValueError:  # e.g. an integer beyond ±MAX_SAFE_INTEGER: it has no canonical form
        return False


#: A key at or above U+E000 may sort differently by code point (Python) and by UTF-16 code unit (JCS):
#: U+E000-U+FFFF come after U+10000 and above in UTF-16, before them in code points.
_LATE_BMP = "\ue000"


def _stdlib_is_jcs(obj: Any) -> bool:
    """Is `_CANONICAL.encode(obj)` exactly RFC 8785? Yes when there is no float (Python's repr is
    not ECMAScript's: `1.0`, `1e+16`, `1e-07`, `-0.0`), every integer is within ±MAX_SAFE_INTEGER,
    every key is a string, and no key has a character whose code-point and UTF-16 orders differ.
    Strings are escaped alike (only `"`, `\\` and U+0000-U+001F, short forms `\\b \\t \\n \\f \\r`,
    else `\\u00xx` in lower case; everything else as itself)."""
    t = type(obj)
    if t is str or obj is None or t is bool:
        return True
    if t is int:
        return bool(-MAX_SAFE_INTEGER <= obj <= MAX_SAFE_INTEGER)
    if t is dict:
        for k, v in obj.items():
            if type(k) is not str or (not k.isascii() and max(k) >= _LATE_BMP) or not _stdlib_is_jcs(v):
                return False
        return True
    if t is list or t is tuple:
        return all(_stdlib_is_jcs(v) for v in obj)
    return False


def _utf16_order(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _jcs(obj: Any, out: list[str]) -> None:
    """Append the RFC 8785 text of `obj` to `out` (the exact, general path)."""
    if obj is None or obj is True or obj is False or isinstance(obj, str):
        out.append(_CANONICAL.encode(obj))
    elif isinstance(obj, int):
        if not -MAX_SAFE_INTEGER <= obj <= MAX_SAFE_INTEGER:
            raise ValueError(f"the integer {obj} is beyond ±(2**53 - 1), which canonical JSON (RFC 8785, "
                             "I-JSON) cannot carry exactly; write it as a string")
        out.append(str(int(obj)))
    elif isinstance(obj, float):
        out.append(_es_number(obj))
    elif isinstance(obj, dict):
        for k in obj:
            if not isinstance(k, str):
                raise ValueError(f"canonical JSON keys are strings, not {type(k).__name__}")
        out.append("{")
        for i, k in enumerate(sorted(obj, key=_utf16_order)):
            if i:
                out.append(",")
            out.append(_CANONICAL.encode(k))
            out.append(":")
            _jcs(obj[k], out)
        out.append("}")
    elif isinstance(obj, (list, tuple)):
        out.append("[")
        for i, v in enumerate(obj):
            if i:
                out.append(",")
            _jcs(v, out)
        out.append("]")
    else:
        raise ValueError(f"canonical JSON has no {type(obj).__name__}")


_REPR = re.compile(r"(-?)(\d+)(?:\.(\d+))?(?:e([-+]\d+))?")


def _es_number(x: float) -> str:
    """A double as ECMAScript's Number::toString writes it (RFC 8785 §3.2.2.3): the shortest
    digits that round-trip (Python's repr finds the same ones), placed as ECMA-262 says."""
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError("canonical JSON has no NaN or Infinity")
    if x == 0:
        return "0"  # also -0.0
    m = _REPR.fullmatch(repr(x))
    if m is None:  # not reached: repr of a finite double always has this shape
        raise ValueError(f"unexpected float repr {x!r}")
    sign, whole, frac, exp = m.group(1), m.group(2), m.group(3) or "", int(m.group(4) or 0)
    significant = (whole + frac).lstrip("0")  # value = int(significant) * 10**(exp - len(frac))
    n = len(significant) + exp - len(frac)  # so value = 0.<significant> * 10**n: ECMA-262's n
    digits = significant.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        e = n - 1
        text = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e > 0 else "-") + str(abs(e))
    return sign + text


def copy_tree(value: Any) -> Any:
    """A deep copy of parsed JSON (dicts, lists, strings, numbers, booleans, null) without
    `copy.deepcopy`'s memo and dispatch, which cost most of its time on a record's many small
    values (a list that appears twice is copied twice, which JSON cannot tell); anything else, a
    dict or list subclass included, is left to `copy.deepcopy`."""
    kind = type(value)
    if kind is dict:
        return {k: copy_tree(v) for k, v in value.items()}
    if kind is list:
        return [copy_tree(v) for v in value]
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    return copy.deepcopy(value)


def dumps_compact(obj: Any) -> bytes:
    """Compact UTF-8 JSON in the object's own key order (what a package's signed statement is)."""
    return _COMPACT.encode(obj).encode("utf-8")


def dumps_pretty(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
