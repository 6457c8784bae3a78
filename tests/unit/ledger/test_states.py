"""The transition table: what is legal, that every state is reachable, and that docs/states.md agrees."""

from __future__ import annotations

import re
from collections import deque
from pathlib import Path

import pytest

from laxchange.errors import ExitCode, LaxError
from laxchange.ledger.errors import IllegalTransition
from laxchange.ledger.states import (
    EDGES,
    ENTRY,
    IMPORT_PATH,
    NOTE_EVENTS,
    STATES,
    TERMINAL,
    TRANSITION_EVENTS,
    Direction,
    check_transition,
)

DOC = Path(__file__).resolve().parents[3] / "docs" / "states.md"
NEW = "(new)"


def _edges_in_code() -> set[tuple[str, str, str]]:
    out = {(str(d), NEW, str(s)) for d in Direction for s in ENTRY[d]}
    out |= {(str(d), str(a), str(b)) for d in Direction for a, bs in EDGES[d].items() for b in bs}
    return out


@pytest.mark.parametrize("direction,old,new", [
    ("out", None, "sent"),              # a new outbound row starts queued
    ("out", None, "imported"),          # not an outbound state at all
    ("out", "queued", "applied"),       # applied needs delivered first
    ("out", "sent", "queued"),          # no way back to the outbox
    ("out", "delivered", "delivered"),  # a duplicate receipt is a note, not a change
    ("out", "applied", "rejected"),     # applied is final
    ("out", "rejected", "sent"),        # rejected is final
    ("out", "packed", "sent"),          # the old vocabulary is gone
    ("in", None, "imported"),           # an inbound row starts received
    ("in", "imported", "received"),     # a replay: the double-import bug
    ("in", "imported", "imported"),
    ("in", "received", "imported"),     # import only after verification
    ("in", "verified", "verified"),
    ("sideways", None, "queued"),       # unknown direction
])
def test_illegal_transitions_raise(direction: str, old: str | None, new: str) -> None:
    with pytest.raises(IllegalTransition) as exc:
        check_transition(direction, old, new, transfer_id="ab" * 16)
    err = exc.value
    assert isinstance(err, LaxError) and err.exit_code == ExitCode.INTERNAL == 70
    assert err.code == "ledger.illegal-transition"
    assert err.details["to"] == new and err.details["from"] == old and "ab" * 16 in err.message


@pytest.mark.parametrize("direction,old,new", [
    ("out", None, "queued"), ("out", "queued", "sent"), ("out", "sent", "sent"), ("out", "sent", "delivered"),
    ("out", "queued", "delivered"), ("out", "sent", "uncollected"), ("out", "uncollected", "delivered"),
    ("out", "queued", "expired"), ("out", "delivered", "applied"), ("out", "sent", "rejected"),
    ("in", None, "received"), ("in", "received", "verified"), ("in", "verified", "imported"),
    ("in", "received", "quarantined"), ("in", "quarantined", "received"),
])
def test_legal_transitions_return_the_state(direction: str, old: str | None, new: str) -> None:
    got = check_transition(direction, old, new)
    assert got == new and type(got).__name__ == ("Outbound" if direction == "out" else "Inbound")


@pytest.mark.parametrize("direction", list(Direction))
def test_every_state_is_reachable_from_an_entry_state(direction: Direction) -> None:
    seen = set(ENTRY[direction])
    todo = deque(seen)
    while todo:
        for nxt in EDGES[direction].get(todo.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    assert seen == set(STATES[direction])


@pytest.mark.parametrize("direction", list(Direction))
def test_every_non_terminal_state_has_an_exit_and_terminals_are_the_expected_ones(direction: Direction) -> None:
    for state in STATES[direction]:
        if state not in TERMINAL[direction]:
            assert EDGES[direction][state] - {state}, f"{state} can only stay where it is"
    assert {str(s) for s in TERMINAL[direction]} == {"out": {"applied", "rejected"}, "in": {"imported"}}[direction]
    assert all(s in STATES[direction] for s in EDGES[direction])
    assert all(t in STATES[direction] for ts in EDGES[direction].values() for t in ts)


def test_the_import_path_is_a_legal_walk_from_a_new_row() -> None:
    old: str | None = None
    for state in IMPORT_PATH:
        check_transition("in", old, state)
        old = state
    assert old == "imported"


def test_the_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        EDGES[Direction.OUT][STATES[Direction.OUT][0]] = frozenset()  # type: ignore[index]
    with pytest.raises(TypeError):
        ENTRY[Direction.IN] = frozenset()  # type: ignore[index]


# -- docs/states.md is the same table ------------------------------------------------------

def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _section(text: str, heading: str) -> str:
    m = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, f"docs/states.md has no '## {heading}' section"
    return m.group(1)


def test_doc_edge_table_matches_the_code() -> None:
    rows = re.findall(r"^\| (out|in) \| ([a-z()]+) \| ([a-z]+) \| (.+?) \|$", _section(_doc(), "Every edge"), re.M)
    assert rows, "no edge rows found"
    doc = [(d, a, b) for d, a, b, _cause in rows]
    assert len(doc) == len(set(doc)), "an edge is listed twice"
    assert all(cause.strip() for *_, cause in rows), "every edge says what causes it"
    assert set(doc) == _edges_in_code()


@pytest.mark.parametrize("direction,heading", [("out", "Outbound (we send)"), ("in", "Inbound (we receive)")])
def test_doc_diagrams_match_the_code(direction: str, heading: str) -> None:
    block = re.search(r"```mermaid\nstateDiagram-v2\n(.*?)```", _section(_doc(), heading), re.S)
    assert block, f"no stateDiagram-v2 block under {heading}"
    lines = [line.strip() for line in block.group(1).splitlines() if line.strip()]
    matches = [re.fullmatch(r"(\[\*\]|[a-z]+) --> (\[\*\]|[a-z]+)", line) for line in lines]
    assert all(matches), f"lines the test cannot read: {[x for x, m in zip(lines, matches, strict=True) if not m]}"
    arrows = [m.groups() for m in matches if m]
    drawn = {(direction, NEW if a == "[*]" else a, b) for a, b in arrows if b != "[*]"}
    assert drawn == {e for e in _edges_in_code() if e[0] == direction}
    assert {a for a, b in arrows if b == "[*]"} == {str(s) for s in TERMINAL[Direction(direction)]}


def test_doc_entry_terminal_states_and_event_names_match_the_code() -> None:
    text = _doc()
    states = _section(text, "Entry and terminal states")
    for label, table in [("Entry states", ENTRY), ("Terminal states", TERMINAL)]:
        line = re.search(rf"^- {label}: out (.+?); in (.+?)\.$", states, re.M)
        assert line, label
        for d, names in zip(("out", "in"), line.groups(), strict=True):
            assert set(re.findall(r"`([a-z]+)`", names)) == {str(s) for s in table[Direction(d)]}, label
    events = _section(text, "Audit event names")
    listed = {m.group(1): set(re.findall(r"`([a-z.-]+)`", m.group(2)))
              for m in re.finditer(r"^- (out|in|notes): (.+)$", events, re.M)}
    assert listed["out"] | listed["in"] == TRANSITION_EVENTS
    assert listed["notes"] == NOTE_EVENTS


def test_docs_ledger_links_the_state_page() -> None:
    assert "(states.md)" in (DOC.parent / "ledger.md").read_text(encoding="utf-8")
