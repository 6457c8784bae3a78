"""docs/threat-model.md's claims about the code, checked on the library's source.

What a reviewer would grep for after MOVEit and GoAnywhere: nothing listens but the embedded SFTP
server; no web framework, HTTP server or client; no deserialisation of objects and no code from
data (pickle, marshal, shelve, YAML, eval, exec); modules imported by name only from fixed tables;
JSON read only by the strict reader, except files laxchange itself wrote; no value formatted into
SQL. A new module that breaks one of these fails here, so the threat model is revisited with it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import pyast

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / "laxchange"

#: Modules that turn bytes into objects or code, serve or fetch over HTTP, or run a web application.
FORBIDDEN = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "jsonpickle", "yaml", "ruamel",
             "xmlrpc", "http", "socketserver", "wsgiref", "urllib.request", "requests", "httpx", "aiohttp",
             "flask", "django", "fastapi", "starlette", "tornado", "bottle", "cherrypy", "twisted"}
#: The one listener, `laxchange serve-sftp`: the server, and the command that runs it until interrupted.
LISTENER = "laxchange/transport/server.py"
#: The openssh backend's agent: a Unix socket (never the network) in a 0700 folder, for one ssh.
AGENT = "laxchange/transport/openssh.py"
LISTENERS = {LISTENER, "laxchange/cli/transport_cmd.py", AGENT}
#: Modules that may import by name: the lazy public API and the lazy command table (both fixed tables).
BY_NAME = {"laxchange/__init__.py", "laxchange/cli/__init__.py"}
#: Modules that may use json.loads without the strict reader, and the file each reads (its own).
OWN_JSON = {"laxchange/_util/jsonio.py": "is the strict reader itself",
            "laxchange/ledger/lock.py": "reads back the run lock's own pid line",
            "laxchange/ledger/db.py": "reads back audit entries it wrote, inside the hash chain",
            "laxchange/models/schemastore.py": "reads the schema files and lock shipped with laxchange",
            "laxchange/transport/parts.py": "reads back the temporary-upload names its own logs hold"}


def _sources() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(LIB.rglob("*.py")):
        yield str(path.relative_to(REPO)), pyast.parse(path.read_text(encoding="utf-8"), str(path))


def _imports(tree: ast.Module) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def _calls(tree: ast.Module) -> Iterator[tuple[str, ast.Call]]:
    """Each call with the dotted name it is made through (`json.loads`, `sock.listen`, `eval`)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield ast.unparse(node.func), node


def _forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def test_the_source_is_found() -> None:
    names = [name for name, _ in _sources()]
    assert LISTENER in names and len(names) > 40


def test_no_deserialisation_of_objects_no_web_no_http() -> None:
    found = {name: sorted(m for m in _imports(tree) if _forbidden(m)) for name, tree in _sources()}
    assert {k: v for k, v in found.items() if v} == {}


def test_no_code_from_data() -> None:
    found = [f"{name}:{call.lineno}: {func}" for name, tree in _sources() for func, call in _calls(tree)
             if func in {"eval", "exec", "compile", "__import__", "builtins.eval", "builtins.exec"}]
    assert found == []


def test_only_fixed_tables_import_by_name() -> None:
    found = {name for name, tree in _sources() for func, _ in _calls(tree)
             if func in {"importlib.import_module", "import_module"}}
    assert found <= BY_NAME


def test_only_the_embedded_sftp_server_listens() -> None:
    found = {name for name, tree in _sources() for func, _ in _calls(tree)
             if re.search(r"(^|\.)(create_server|listen|bind|serve_forever)$", func)
             and not func.endswith("_bind")}  # transport.ops._bind binds a progress callback, not a socket
    assert found == LISTENERS


def test_the_openssh_agent_listens_only_on_a_unix_socket() -> None:
    source = (REPO / AGENT).read_text()
    assert source.count("socket.socket(") == 1 and "socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)" in source
    assert "AF_INET" not in source and "SO_PEERCRED" in source


def test_serve_sftp_listens_on_loopback_unless_told() -> None:
    from laxchange.cli import COMMANDS, load_command

    cmd = load_command(COMMANDS["serve-sftp"][0])
    (host,) = [p for p in cmd.params if p.name == "host"]
    assert host.default == "127.0.0.1"


def test_json_is_read_strictly_except_laxchanges_own_files() -> None:
    found = {name for name, tree in _sources() for func, _ in _calls(tree) if func in {"json.loads", "json.load"}}
    assert found == set(OWN_JSON)


def test_sql_takes_values_as_parameters() -> None:
    """Any f-string that builds SQL formats in only a fixed column name or the schema version."""
    sql = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|WHERE|PRAGMA|VALUES|AND)\b")
    formatted = []
    for name, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                text = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
                if sql.search(text):
                    formatted += [(name, ast.unparse(v.value)) for v in node.values
                                  if isinstance(v, ast.FormattedValue)]
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant) \
                    and isinstance(node.left.value, str) and sql.search(node.left.value):
                formatted.append((name, "%-formatting"))
    assert sorted(set(formatted)) == [("laxchange/ledger/db.py", "SCHEMA_VERSION"),
                                      ("laxchange/ledger/db.py", "column")]


def test_the_column_names_come_from_a_literal_list() -> None:
    """The one formatted column name iterates over a tuple written in the code, not over input."""
    tree = pyast.parse((LIB / "ledger" / "db.py").read_text(encoding="utf-8"))
    loops = [n for n in ast.walk(tree) if isinstance(n, ast.For) and isinstance(n.target, ast.Tuple)
             and [ast.unparse(e) for e in n.target.elts] == ["column", "value"]]
    assert len(loops) == 1 and isinstance(loops[0].iter, ast.Tuple)
    assert all(isinstance(e, ast.Tuple) and isinstance(e.elts[0], ast.Constant) for e in loops[0].iter.elts)


@pytest.mark.parametrize("template", sorted((LIB / "render" / "templates").glob("*")), ids=lambda p: p.name)
def test_pages_carry_no_script(template: Path) -> None:
    assert "<script" not in template.read_text(encoding="utf-8").lower()


def test_checks_would_catch_what_they_are_for(tmp_path: Path) -> None:
    """The same scans find a pickle import, an eval, a listening socket and a formatted SQL value."""
    bad = pyast.parse("import pickle\nimport http.server\nfrom yaml import load\neval(x)\nsock.listen(5)\n"
                    "db.execute(f'SELECT * FROM t WHERE a = {user}')\n")
    assert sorted(m for m in _imports(bad) if _forbidden(m)) == ["http.server", "pickle", "yaml", "yaml.load"]
    assert [f for f, _ in _calls(bad)] == ["eval", "sock.listen", "db.execute"]
    (fstring,) = [n for n in ast.walk(bad) if isinstance(n, ast.JoinedStr)]
    assert [ast.unparse(v.value) for v in fstring.values if isinstance(v, ast.FormattedValue)] == ["user"]
