"""Check digits and formats of the identifiers children and schools carry in England.

Facts and published examples: docs/identifiers.md (DfE UPN standard; ULN; URN/LAESTAB).
"""

from __future__ import annotations

import re

UPN_LETTERS = "ABCDEFGHJKLMNPQRTUVWXYZ"  # 23 letters; I, O and S are never used
_UPN_RE = re.compile(r"^[A-Z][0-9]{12}$")
_TEMP_UPN_RE = re.compile(r"^[A-Z][0-9]{11}[A-Z]$")
_ULN_RE = re.compile(r"^[0-9]{10}$")
URN_RE = re.compile(r"^[0-9]{6}$")
LAESTAB_RE = re.compile(r"^[0-9]{7}$")
TEMPORARY_ULN = "9999999999"


def upn_check_letter(body: str) -> str:
    """The check letter for the 12 characters after it (positions 2–13).

    A temporary UPN ends in a letter, which counts as its index in UPN_LETTERS.
    """
    if len(body) != 12:
        raise ValueError("a UPN body is 12 characters")
    total = 0
    for pos, ch in enumerate(body, start=2):
        if ch.isdigit():
            value = int(ch)
        elif pos == 13 and ch in UPN_LETTERS:
            value = UPN_LETTERS.index(ch)
        else:
            raise ValueError(f"unexpected character {ch!r} at position {pos}")
        total += value * pos
    return UPN_LETTERS[total % 23]


def upn_problem(upn: str) -> str | None:
    """None if `upn` is a valid UPN (permanent or temporary), else what is wrong with it."""
    if not isinstance(upn, str) or len(upn) != 13:
        return "a UPN is 13 characters: check letter, 3-digit LA, 4-digit establishment, 2-digit year, 3-digit serial"
    if not (_UPN_RE.match(upn) or _TEMP_UPN_RE.match(upn)):
        return "a UPN is a letter then 12 digits (a temporary UPN: a letter, 11 digits and a final letter)"
    if upn[0] not in UPN_LETTERS:
        return f"{upn[0]!r} is never a UPN check letter (I, O and S are not used)"
    if upn[12].isalpha() and upn[12] not in UPN_LETTERS:
        return f"{upn[12]!r} is not a valid final letter of a temporary UPN"
    expected = upn_check_letter(upn[1:])
    if upn[0] != expected:
        return f"check letter is {upn[0]!r} but the digits give {expected!r}"
    return None


def is_temporary_upn(upn: str) -> bool:
    return bool(_TEMP_UPN_RE.match(upn))


def make_upn(la_code: str, estab: str, year: int, serial: int) -> str:
    """Build a valid permanent UPN (for synthetic data): LA + establishment + year + serial."""
    body = f"{int(la_code):03d}{int(estab):04d}{year % 100:02d}{serial:03d}"
    return upn_check_letter(body) + body


def uln_check_digit(first9: str) -> int | None:
    """The ULN check digit for 9 digits, or None if no valid ULN has them (remainder 0)."""
    total = sum(int(d) * w for d, w in zip(first9, range(10, 1, -1), strict=False))
    rem = total % 11
    return None if rem == 0 else 10 - rem


def uln_problem(uln: str) -> str | None:
    if not isinstance(uln, str) or not _ULN_RE.match(uln):
        return "a ULN is exactly 10 digits"
    if uln == TEMPORARY_ULN:
        return None
    check = uln_check_digit(uln[:9])
    if check is None:
        return "no valid ULN starts with these 9 digits (weighted sum is divisible by 11)"
    if check != int(uln[9]):
        return f"check digit is {uln[9]} but the first 9 digits give {check}"
    return None


def make_uln(first9: int) -> str | None:
    digits = f"{first9:09d}"
    check = uln_check_digit(digits)
    return None if check is None else digits + str(check)
