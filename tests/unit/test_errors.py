"""The error tree and the reason-code registry: one spelling scheme, every code registered, none unused."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from laxchange import errors
from laxchange.errors import CODE_RE, CODES, ConfigError, LaxError, TransientTransportError, TransportError
from tests.support import pyast
from tests.support.parties import REPO

SRC = REPO / "laxchange"
#: Functions that build an error from a code given as their first argument.
CODE_FACTORIES = {"_reject"}


def _codes_in_source() -> dict[str, list[str]]:
    """Every string literal the library uses as a reason code, with where."""
    found: dict[str, list[str]] = {}

    def add(value: object, where: str) -> None:
        if isinstance(value, str):
            found.setdefault(value, []).append(where)

    for path in SRC.rglob("*.py"):
        tree = pyast.parse(path.read_text(), str(path))
        rel = path.relative_to(REPO)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    if kw.arg == "code":  # a literal, or each branch of `"a" if x else "b"`
                        for const in ast.walk(kw.value):
                            if isinstance(const, ast.Constant):
                                add(const.value, f"{rel}:{node.lineno}")
                name = getattr(node.func, "id", getattr(node.func, "attr", None))
                if name in CODE_FACTORIES and node.args and isinstance(node.args[0], ast.Constant):
                    add(node.args[0].value, f"{rel}:{node.lineno}")
            elif isinstance(node, ast.ClassDef):
                for stmt in node.body:  # `code = "..."` / `code: str = "..."` on error classes
                    first = stmt.targets[0] if isinstance(stmt, ast.Assign) else None
                    target = getattr(stmt, "target", None) or first
                    if getattr(target, "id", None) == "code" and isinstance(getattr(stmt, "value", None), ast.Constant):
                        add(stmt.value.value, f"{rel}:{stmt.lineno}")  # type: ignore[union-attr]
            elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None and any(
                    getattr(t, "id", "").endswith("_CODES")
                    for t in (node.targets if isinstance(node, ast.Assign) else [node.target])):
                for const in ast.walk(node.value):  # tables of codes, e.g. _util.private._CODES
                    if isinstance(const, ast.Constant) and isinstance(const.value, str) and "." in const.value:
                        add(const.value, f"{rel}:{node.lineno}")
    return found


USED = _codes_in_source()


def test_every_code_in_the_source_is_registered() -> None:
    missing = {c: w for c, w in USED.items() if c not in CODES}
    assert missing == {}, "register these in laxchange/errors.py CODES"


def test_every_code_follows_the_one_scheme() -> None:
    assert [c for c in CODES if not CODE_RE.fullmatch(c)] == []
    assert [c for c in USED if not CODE_RE.fullmatch(c)] == []


def test_no_registered_code_is_unused() -> None:
    assert sorted(set(CODES) - set(USED)) == []


def test_the_registry_has_no_duplicate_keys() -> None:
    """A dict literal silently keeps the last of two equal keys; read the source to catch it."""
    tree = pyast.parse(Path(errors.__file__).read_text())
    registry = next(n for n in ast.walk(tree) if isinstance(n, ast.AnnAssign) and getattr(n.target, "id",
                    "") == "CODES")
    assert isinstance(registry.value, ast.Dict)
    keys = [k.value for k in registry.value.keys if isinstance(k, ast.Constant)]
    assert len(keys) == len(set(keys)) == len(CODES)


def test_the_scan_finds_codes() -> None:
    """Guards the guard: a scan that found nothing would pass every test above."""
    assert {"package.tampered", "ssh.timeout", "key.permissions", "card.invalid"} <= set(USED)


def test_transient_is_a_class_not_a_flag() -> None:
    assert TransientTransportError("x", code="ssh.timeout").transient
    assert not TransportError("x", code="remote.exists").transient
    assert issubclass(TransientTransportError, TransportError)


def test_annotated_copies_and_keeps_class_code_and_exit() -> None:
    original = ConfigError("key missing", code="key.missing", hint="restore it", details={"a": 1})
    new = original.annotated("(see backup)", prefix="LA:919: ", where="x")
    assert (type(new), new.code, new.exit_code, new.hint) == (ConfigError, "key.missing", 5, "restore it")
    assert new.message == "LA:919: key missing (see backup)" and str(new) == new.message
    assert new.details == {"a": 1, "where": "x"}
    assert original.message == "key missing" and original.details == {"a": 1}


@pytest.mark.parametrize("cls", [c for c in vars(errors).values()
                                 if isinstance(c, type) and issubclass(c, LaxError)])
def test_every_error_class_has_a_documented_exit_code(cls: type[LaxError]) -> None:
    assert cls.exit_code in {code for code, _text in errors.EXIT_CODE_TABLE}
    assert cls.code in CODES


def _all_error_classes() -> list[type[LaxError]]:
    import importlib
    import pkgutil

    import laxchange
    for m in pkgutil.walk_packages(laxchange.__path__, "laxchange."):
        if not m.name.endswith("__main__"):
            importlib.import_module(m.name)
    out: list[type[LaxError]] = []
    todo: list[type[LaxError]] = [LaxError]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo += cls.__subclasses__()
    return out


def test_every_error_class_crosses_a_process_boundary_whole() -> None:
    """A batch's worker processes (`--jobs`) hand their errors back pickled: class, message, code,
    hint and details must all arrive."""
    import pickle
    classes = _all_error_classes()
    assert len(classes) > 10
    for cls in classes:
        sent = cls("bad thing", code="notify.purpose", hint="do this", details={"n": 1}).annotated(
            prefix="line 3: ", line=3)
        got = pickle.loads(pickle.dumps(sent))  # noqa: S301 (our own bytes, as between a batch's processes)
        assert type(got) is cls, cls
        assert (got.message, str(got), got.code, got.hint, got.details) == (
            "line 3: bad thing", "line 3: bad thing", "notify.purpose", "do this", {"n": 1, "line": 3}), cls
