"""The layering rules of docs/architecture.md, checked on the source: no cycles, no upward imports.

Each top-level part of `laxchange` has a layer; a module may import only from its own layer or
below. Function-local imports count the same as module-level ones (a local import is no way
round the layering), except in `laxchange.cli`, the top layer, whose commands import lazily for
start-up speed.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

from tests.support import pyast
from tests.support.parties import REPO

PKG = REPO / "laxchange"

#: Lower numbers are lower layers. A part not listed here fails the test, so new folders get a place.
LAYERS: dict[str, int] = {
    "errors": 0, "_util": 0, "clock": 0, "logs": 0,
    "home": 1, "passphrase": 1,
    "age": 2, "dsse": 2, "models": 2,
    "validate": 3, "samples": 3, "mis": 3,
    "transport": 4, "ledger": 4,
    "trust": 5,
    "package": 6,
    "deadlines": 5,
    "exchange": 7,
    "render": 8, "demo": 8, "doctor": 8,
    "cli": 9, "__main__": 9,
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(REPO).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, at module level) for every laxchange import in one module."""
    tree = pyast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    here = name if is_pkg else name.rsplit(".", 1)[0]
    top_level = {id(n) for n in tree.body}
    found: list[tuple[str, int, bool]] = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = here.split(".")
                up = up[: len(up) - (node.level - 1)] if node.level > 1 else up
                base = ".".join([*up, base]) if base else ".".join(up)
            for a in node.names:
                sub = f"{base}.{a.name}"
                targets.append(sub if sub in MODULES else base)
        for t in targets:
            if t == "laxchange" or t.startswith("laxchange."):
                found.append((t, node.lineno, id(node) in top_level))
    return found


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


GRAPH: dict[str, set[str]] = defaultdict(set)
for _name, _path in MODULES.items():
    for _target, _line, _top in _imports(_name, _path):
        if _target != _name:
            GRAPH[_name].add(_target)


def test_every_part_has_a_layer() -> None:
    parts = {_part(m) for m in MODULES if m != "laxchange"}
    assert parts - set(LAYERS) == set(), "give each new part of laxchange a layer in LAYERS and docs/architecture.md"


def test_no_import_cycles() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for m in sorted(MODULES):
        if m not in index:
            visit(m)
    assert cycles == []


def test_no_lower_layer_imports_a_higher_one() -> None:
    bad = []
    for name, path in sorted(MODULES.items()):
        if name == "laxchange":
            continue  # the public façade re-exports every layer
        mine = LAYERS[_part(name)]
        for target, line, _top in _imports(name, path):
            if target == "laxchange":
                continue  # only `__version__` lives there; the façade imports lazily
            theirs = LAYERS[_part(target)]
            if theirs > mine:
                bad.append(f"{path.relative_to(REPO)}:{line}: {name} (layer {mine}) imports {target} (layer {theirs})")
    assert bad == []


def test_no_function_local_imports_outside_the_cli() -> None:
    """A local import would hide a cycle or a layering breach from a reader; the CLI may import lazily."""
    bad = [f"{path.relative_to(REPO)}:{line}: {target}"
           for name, path in sorted(MODULES.items()) if _part(name) not in ("cli", "__main__") and name != "laxchange"
           for target, line, top in _imports(name, path) if not top]
    assert bad == []


def test_transport_knows_no_keys_cards_or_ledger() -> None:
    """DESIGN.md §5: the transport moves files; trust and bookkeeping live above it."""
    bad = [f"{m} imports {t}" for m in MODULES if _part(m) == "transport"
           for t in GRAPH.get(m, ()) if _part(t) in ("trust", "ledger", "package", "exchange")]
    assert bad == []


@pytest.mark.parametrize("probe", ["laxchange.transport", "laxchange.trust", "laxchange.exchange"])
def test_the_checker_sees_imports(probe: str) -> None:
    """Guards the guard: the graph must contain edges, or every test above would pass vacuously."""
    assert any(t.startswith("laxchange.") for t in GRAPH[probe])
