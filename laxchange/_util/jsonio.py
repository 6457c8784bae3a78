"""Strict JSON: the only way laxchange turns bytes into data.

Duplicate keys, NaN/Infinity, invalid UTF-8, a byte-order mark, trailing data and oversized
inputs are all rejected, because two parsers that disagree on such input are how signed data
gets misread. Output is canonical enough to hash: sorted keys, no spaces, UTF-8.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

from laxchange._util.fs import open_atomic, open_regular, read_bounded, write_atomic
from laxchange.errors import InvalidData

__all__ = ["MAX_JSON_BYTES", "dumps_canonical", "dumps_compact", "dumps_pretty", "load_file", "loads_strict",
           "open_atomic", "write_atomic"]

#: Default cap on a JSON document (records with long PEP narratives stay far below this).
MAX_JSON_BYTES = 8 * 1024 * 1024
#: Longest number accepted, in characters of its JSON text: far beyond any real value (a double
#: needs at most 24), far below where converting it costs anything.
MAX_NUMBER_CHARS = 100


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
    """Deterministic compact UTF-8 JSON (sorted keys), for hashing and signing."""
    return _CANONICAL.encode(obj).encode("utf-8")


def dumps_compact(obj: Any) -> bytes:
    """Compact UTF-8 JSON in the object's own key order (what a package's signed statement is)."""
    return _COMPACT.encode(obj).encode("utf-8")


def dumps_pretty(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
