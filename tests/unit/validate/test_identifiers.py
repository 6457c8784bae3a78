"""UPN and ULN check characters: published examples, an independent implementation, properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.gb import upn as stdnum_upn

from laxchange.validate.identifiers import (
    UPN_LETTERS,
    is_temporary_upn,
    make_uln,
    make_upn,
    uln_check_digit,
    uln_problem,
    upn_check_letter,
    upn_problem,
)

# docs/identifiers.md: examples published with the DfE UPN standard and its public implementations.
VALID_UPNS = ["B801200005001", "A950000178301", "H243278544154", "R674123101121", "X00180001701A"]
INVALID_UPNS = {"R247962919251": "Q", "X428558133462": "W"}


@pytest.mark.parametrize("upn", VALID_UPNS)
def test_published_valid_upns(upn: str) -> None:
    assert upn_problem(upn) is None


@pytest.mark.parametrize("upn,expected", sorted(INVALID_UPNS.items()))
def test_published_invalid_upns_name_the_right_letter(upn: str, expected: str) -> None:
    problem = upn_problem(upn)
    assert problem is not None and f"digits give {expected!r}" in problem
    assert upn_check_letter(upn[1:]) == expected


def test_temporary_upn_recognised() -> None:
    assert is_temporary_upn("X00180001701A")
    assert not is_temporary_upn("B801200005001")


@pytest.mark.parametrize("bad", ["", "B80120000500", "B8012000050011", "I801200005001", "S801200005001",
                                 "b801200005001", "B80120000500I", "B8012X0005001"])
def test_malformed_upns_rejected(bad: str) -> None:
    assert upn_problem(bad) is not None


def test_letter_table_is_23_letters_without_i_o_s() -> None:
    assert len(UPN_LETTERS) == 23 and not set("IOS") & set(UPN_LETTERS)


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 10**12 - 1))
def test_check_letter_agrees_with_python_stdnum(n: int) -> None:
    body = f"{n:012d}"
    assert upn_check_letter(body) == stdnum_upn.calc_check_digit(body)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**11 - 1), st.sampled_from(UPN_LETTERS))
def test_temporary_check_letter_agrees_with_python_stdnum(n: int, last: str) -> None:
    body = f"{n:011d}{last}"
    assert upn_check_letter(body) == stdnum_upn.calc_check_digit(body)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 999), st.integers(0, 9999), st.integers(0, 99), st.integers(0, 999),
       st.integers(1, 12), st.integers(1, 9))
def test_any_single_digit_change_is_caught(la: int, estab: int, year: int, serial: int, pos: int, delta: int) -> None:
    upn = make_upn(f"{la:03d}", f"{estab:04d}", year, serial)
    assert upn_problem(upn) is None
    digit = (int(upn[pos]) + delta) % 10
    mutated = upn[:pos] + str(digit) + upn[pos + 1:]
    assert upn_problem(mutated) is not None


def test_uln_examples() -> None:
    # 1..9 weighted 10..2 sums to 210; 210 mod 11 = 1, so the check digit is 9.
    assert uln_check_digit("123456789") == 9
    assert uln_problem("1234567899") is None
    assert "check digit" in (uln_problem("1234567890") or "")
    assert uln_problem("9999999999") is None  # the temporary ULN
    assert uln_problem("12345") is not None


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**9 - 1), st.integers(0, 8), st.integers(1, 9))
def test_uln_single_digit_change_is_caught(first9: int, pos: int, delta: int) -> None:
    uln = make_uln(first9)
    if uln is None:  # no valid ULN begins with these digits
        assert uln_check_digit(f"{first9:09d}") is None
        return
    assert uln_problem(uln) is None
    mutated = uln[:pos] + str((int(uln[pos]) + delta) % 10) + uln[pos + 1:]
    assert uln_problem(mutated) is not None
