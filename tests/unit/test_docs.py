"""The documentation cannot drift from the code: every relative link resolves, every command shown is real.

Checked in README.md, keys/README.md and docs/*.md:

- every relative Markdown link `[text](path#anchor)` names a file or folder that exists, and its
  `#anchor`, if any, is a heading of that file (GitHub's anchor rules);
- every `laxchange COMMAND ...` shown as code (a fenced block, or an inline code span) at the place
  a shell runs a command is a command of the lazy table in `laxchange/cli/__init__.py`, its
  sub-command (for a group such as `keys`) is real, and every `--option` it shows is one that
  command (or the root group, before the command name) accepts.

A line holding `(coming` is a placeholder for work under way (`(coming: see issue N)`) and is not
checked. Python code blocks are the library API, not the command line, and are not checked here.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import click
import pytest

from laxchange.cli import COMMANDS, load_command, main

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", REPO / "keys" / "README.md", *sorted((REPO / "docs").glob("*.md"))]
PLACEHOLDER = "(coming"

FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+-]*)[^\n]*\n(.*?)^\1[ \t]*$", re.M | re.S)
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
LINK = re.compile(r"(?<!!)\[(?:[^\]\n]|\][^(\n])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
#: The root group's own options; `--home` takes a value.
#: The root group's options (read from it, so a new one is known here at once): flags, and those taking a value.
ROOT_FLAGS = {o for p in main.params if getattr(p, "is_flag", False) for o in p.opts} | {"--version", "-h", "--help"}
ROOT_VALUED = {o for p in main.params if not getattr(p, "is_flag", False) for o in p.opts}
#: Words a shell may put before the program it runs.
PREFIXES = {"sudo", "env", "exec", "time", "nohup", "then", "do", "$", "!"}


@dataclass(frozen=True)
class Mention:
    doc: str
    line: int
    text: str


def _rel(p: Path) -> str:
    return str(p.relative_to(REPO)) if p.is_relative_to(REPO) else p.name


# --- reading a Markdown file -----------------------------------------------------------------

def _split(text: str) -> tuple[list[tuple[str, int, str]], str]:
    """(fenced blocks as (language, first line number, body), the text with each block blanked out
    line for line, so that line numbers still count)."""
    blocks = []
    for m in FENCE.finditer(text):
        blocks.append((m.group(2).lower(), text.count("\n", 0, m.start(3)) + 1, m.group(3)))
    prose = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return blocks, prose


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """Every anchor GitHub makes for the headings of `path` (a repeated heading gets -1, -2, ...)."""
    _, prose = _split(path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    out = set()
    for m in HEADING.finditer(prose):
        base = slug(m.group(1))
        n = seen.get(base, 0)
        out.add(base if n == 0 else f"{base}-{n}")
        seen[base] = n + 1
    return frozenset(out)


def link_problems(doc: Path, text: str | None = None) -> list[str]:
    """Each relative link of `doc` that does not resolve, as 'doc:line: target: why'."""
    text = doc.read_text(encoding="utf-8") if text is None else text
    _, prose = _split(text)
    prose = INLINE.sub(lambda m: " " * len(m.group(0)), prose)  # `[x](y)` inside code is not a link
    problems = []
    for m in LINK.finditer(prose):
        target = m.group(1)
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:, ...
            continue
        where = f"{_rel(doc)}:{prose.count(chr(10), 0, m.start()) + 1}: {target}"
        path_part, _, anchor = target.partition("#")
        dest = (doc.parent / path_part).resolve() if path_part else doc
        if not dest.exists():
            problems.append(f"{where}: no such file")
            continue
        if anchor:
            if dest.is_dir() or dest.suffix != ".md":
                problems.append(f"{where}: an anchor into something that is not a Markdown file")
            elif anchor not in anchors(dest):
                problems.append(f"{where}: {dest.name} has no heading with the anchor #{anchor}")
    return problems


# --- the commands shown ----------------------------------------------------------------------

def _logical_lines(body: str, first: int) -> list[tuple[int, str]]:
    """Lines of a code block with shell continuations (a trailing backslash) joined."""
    out: list[tuple[int, str]] = []
    pending, start = "", first
    for i, line in enumerate(body.splitlines()):
        if not pending:
            start = first + i
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append((start, pending + line))
        pending = ""
    if pending:
        out.append((start, pending))
    return out


def mentions(doc: Path, text: str | None = None) -> list[Mention]:
    """Every piece of code in `doc` that might run laxchange: lines of code blocks, inline code spans."""
    text = doc.read_text(encoding="utf-8") if text is None else text
    blocks, prose = _split(text)
    out = []
    for lang, first, body in blocks:
        if lang in {"python", "py", "pycon", "json", "mermaid"}:
            continue
        out += [Mention(_rel(doc), n, line) for n, line in _logical_lines(body, first) if PLACEHOLDER not in line]
    for n, line in enumerate(prose.splitlines(), 1):
        if PLACEHOLDER in line:
            continue
        out += [Mention(_rel(doc), n, m.group(1)) for m in INLINE.finditer(line)]
    return out


def _commands(code: str) -> list[list[str]]:
    """The simple commands in one line of shell: comments dropped, split at ; && || | ( $( and backquotes.
    A `|` between words with no spaces round it (`keys list|rotate`) is an alternative, not a pipe."""
    code = re.sub(r"(^|\s)#.*$", "", code)
    out = []
    for part in re.split(r"\s*(?:;|&&|\|\||\s\|\s|\$\(|\(|\)|`)\s*", code):
        try:
            words = shlex.split(part)
        except ValueError:  # an unbalanced quote in prose-like code: words are good enough here
            words = part.split()
        if words:
            out.append(words)
    return out


def _is_program(word: str) -> bool:
    return word == "laxchange" or word.endswith("/laxchange")


def laxchange_argv(code: str) -> list[list[str]]:
    """The argument lists (after the program name) of every laxchange run in `code`, where a shell
    would run it: first in its command, after environment assignments, sudo [-u USER], env, exec, flock FILE."""
    found = []
    for words in _commands(code):
        i = 0
        while i < len(words):
            w = words[i]
            if "=" in w and re.match(r"\w+=", w):  # VAR=value, or systemd's ExecStart=/path/laxchange
                key, value = w.split("=", 1)
                if (key.startswith("Exec") and _is_program(value)) or value.endswith("/laxchange"):
                    found.append(words[i + 1:])
                    break
                i += 1
            elif w in PREFIXES:
                i += 3 if w == "sudo" and words[i + 1:i + 2] == ["-u"] else 1
            elif w == "flock":  # flock [OPTIONS] LOCKFILE COMMAND...
                i += 1
                while i < len(words) and words[i].startswith("-"):
                    i += 1
                i += 1
            else:
                if _is_program(w):
                    found.append(words[i + 1:])
                break
    return found


def _options(cmd: click.Command) -> set[str]:
    return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}


def _option_words(argv: list[str]) -> list[str]:
    """`--name` of every option-like word: `[--force]` → --force, `--home=X` → --home; `-` (stdin) is not one."""
    out = []
    for w in argv:
        if w == "--":
            break
        m = re.match(r"^\[?(--?[A-Za-z][\w-]*)", w)
        if m:
            out.append(m.group(1))
    return out


def command_problems(argv: list[str]) -> list[str]:
    """What is wrong with `laxchange ARGV` as shown: an unknown command, sub-command or option."""
    i = 0
    while i < len(argv):
        if argv[i] in ROOT_VALUED:
            i += 2
        elif argv[i].split("=", 1)[0] in ROOT_VALUED or argv[i] in ROOT_FLAGS:
            i += 1
        elif argv[i].startswith("-"):
            return [f"the root group has no option {argv[i]}"]
        else:
            break
    rest = argv[i:]
    if not rest or not re.fullmatch(r"[a-z][a-z0-9-]*(\|[a-z][a-z0-9-]*)*", rest[0]):
        return []  # `laxchange`, `laxchange COMMAND`, `laxchange ...`: a placeholder, not a command
    names = rest[0].split("|")
    problems = [f"no command `laxchange {n}`" for n in names if n not in COMMANDS]
    if problems or len(names) > 1:
        return problems
    cmd: click.Command = load_command(COMMANDS[names[0]][0])
    path, args = f"laxchange {names[0]}", rest[1:]
    if isinstance(cmd, click.Group) and args and re.fullmatch(r"[a-z][a-z0-9-]*(\|[a-z][a-z0-9-]*)*", args[0]):
        subs = args[0].split("|")
        problems = [f"no command `{path} {s}`" for s in subs if s not in cmd.commands]
        if problems or len(subs) > 1:
            return problems  # `keys list|rotate [--ssh]|...`: options belong to different sub-commands
        cmd, path, args = cmd.commands[subs[0]], f"{path} {subs[0]}", args[1:]
    known = _options(cmd) | {"--json", "-h", "--help"}
    return [f"`{path}` has no option {o}" for o in _option_words(args) if o not in known]


def all_problems(docs: list[Path]) -> list[str]:
    problems = []
    for doc in docs:
        for m in mentions(doc):
            for argv in laxchange_argv(m.text):
                problems += [f"{m.doc}:{m.line}: {p}: {m.text.strip()}" for p in command_problems(argv)]
    return problems


# --- files and tests named --------------------------------------------------------------------

#: A repository path named in the text (`tests/x.py`, `tests/x.py::test_y`, `laxchange/a/`). Paths
#: under `keys/` other than keys/README.md are a home's (`keys/archive/`); `laxchange/1` is the format.
NAMED = re.compile(r"(?<![\w/.$-])((?:tests|laxchange|bench|scripts|schemas|docs)/[\w./-]*[\w/])(?:::(\w+))?")


def named_problems(doc: Path, text: str | None = None) -> list[str]:
    """Each repository file, folder or test the text names that does not exist."""
    text = doc.read_text(encoding="utf-8") if text is None else text
    problems = []
    for n, line in enumerate(text.splitlines(), 1):
        if PLACEHOLDER in line:
            continue
        for m in NAMED.finditer(line):
            path, test = m.groups()
            if re.fullmatch(r"laxchange/\d+", path) or any(re.fullmatch(r"[A-Z_]+(\.\w+)?", part)
                                                          for part in path.split("/")):
                continue  # the format id, or a placeholder such as schemas/NAME/VERSION.json
            target = REPO / path
            if not target.exists():
                problems.append(f"{_rel(doc)}:{n}: {path} does not exist")
            elif test and not re.search(rf"^\s*(async )?(def|class) {test}\b", target.read_text(encoding="utf-8"),
                                        re.M):
                problems.append(f"{_rel(doc)}:{n}: {path} has no {test}")
    return problems


# --- the tests -------------------------------------------------------------------------------

def test_the_documents_exist() -> None:
    names = {_rel(d) for d in DOCS}
    assert {"README.md", "docs/threat-model.md", "docs/operators.md", "docs/integrators.md",
            "docs/sftp-server.md"} <= names


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_every_relative_link_resolves(doc: Path) -> None:
    assert link_problems(doc) == []


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_every_command_shown_is_real(doc: Path) -> None:
    assert all_problems([doc]) == []


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_every_file_and_test_named_exists(doc: Path) -> None:
    assert named_problems(doc) == []


def test_every_doc_is_reachable_from_the_readme() -> None:
    """An operator finds every page by following links from README.md."""
    seen, todo = set(), [REPO / "README.md"]
    while todo:
        doc = todo.pop()
        if doc in seen or not doc.is_file() or doc.suffix != ".md":
            continue
        seen.add(doc)
        _, prose = _split(doc.read_text(encoding="utf-8"))
        for m in LINK.finditer(prose):
            target = m.group(1).partition("#")[0]
            if target and not re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):
                todo.append((doc.parent / target).resolve())
    assert {_rel(d) for d in DOCS} - {_rel(d) for d in seen} == set()


# The checker itself: it must catch what it is for, and pass what is right.

def test_checker_finds_unknown_commands_sub_commands_and_options(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("Run `laxchange doktor` or `laxchange keys rotat`.\n\n```sh\n"
                   "LAXCHANGE_HOME=/h laxchange --home A run --reprot r.html   # a wrong option\n"
                   "sudo -u laxchange laxchange partners add c.json --fingerprnt X\n"
                   "laxchange doctor   (coming: see issue 14)\n"
                   "laxchange keys list|rotat\n"
                   "laxchange --hme A status\n```\n", encoding="utf-8")
    problems = [p.split(": ", 1)[1] for p in all_problems([doc])]
    assert sorted(problems) == sorted([
        ("`laxchange run` has no option --reprot: LAXCHANGE_HOME=/h laxchange --home A run --reprot r.html   "
         "# a wrong option"),
        ("`laxchange partners add` has no option --fingerprnt: sudo -u laxchange laxchange partners add c.json "
         "--fingerprnt X"),
        "no command `laxchange keys rotat`: laxchange keys list|rotat",
        "the root group has no option --hme: laxchange --hme A status",
        "no command `laxchange doktor`: laxchange doktor",
        "no command `laxchange keys rotat`: laxchange keys rotat",
    ])


def test_checker_passes_real_commands_and_leaves_other_code_alone() -> None:
    good = [
        "laxchange --home A keys rotate --ssh [--overlap-days N]",
        "ExecStart=/opt/laxchange/venv/bin/laxchange --json run --timeout 30 --retries 4",
        "30 2 * * * laxchange umask 077; LAXCHANGE_HOME=/h /opt/x/bin/laxchange --json run --timeout 30 >> f",
        "sudo -u laxchange env LAXCHANGE_HOME=/h laxchange init --party LA:919 --name 'A council'",
        "laxchange init --mldsa --no-mldsa --party LA:1 --name x",
        "laxchange keys list|rotate [--ssh]|revoke KID",
        "import laxchange; laxchange.validate_document(doc)",
        "laxchange/cli/__init__.py",
        "install -d -o laxchange -g laxchange /etc/laxchange",
        "Description=laxchange nightly exchange",
        "laxchange COMMAND --help",
        "sudo -u laxchange flock --nonblock /h/run.lock env A=b laxchange keys passphrase --new-passphrase-file f",
    ]
    for code in good:
        assert [p for argv in laxchange_argv(code) for p in command_problems(argv)] == [], code
    assert laxchange_argv("install -o laxchange x") == []
    assert laxchange_argv("a && laxchange status --overdue") == [["status", "--overdue"]]
    assert laxchange_argv("flock -n /h/run.lock laxchange keys prune") == [["keys", "prune"]]


def test_checker_finds_broken_links_and_anchors(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Keys and passphrases\n\n## The nightly job: `laxchange run`\n",
                                       encoding="utf-8")
    doc = tmp_path / "x.md"
    doc.write_text("[a](other.md#keys-and-passphrases) [b](other.md#the-nightly-job-laxchange-run) "
                   "[c](missing.md) [d](other.md#nope) [e](#here) [f](https://example.org/x) `[g](nope.md)`\n\n"
                   "## Here\n", encoding="utf-8")
    assert [p.split(": ", 1)[1] for p in link_problems(doc)] == [
        "missing.md: no such file", "other.md#nope: other.md has no heading with the anchor #nope"]


def test_checker_finds_files_and_tests_that_do_not_exist(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    text = ("`tests/unit/test_docs.py::test_slugs_follow_githubs_rules` and `laxchange/package.py` and\n"
            "tests/unit/test_docs.py::test_nothing and `laxchange/nowhere.py`; format laxchange/1, "
            "schemas/NAME/VERSION.json\n`tests/unit/gone.py` (coming: see issue 1)\n")
    assert [p.split(": ", 1)[1] for p in named_problems(doc, text)] == [
        "tests/unit/test_docs.py has no test_nothing", "laxchange/nowhere.py does not exist"]


def test_slugs_follow_githubs_rules() -> None:
    assert slug("Keys, partners and packages") == "keys-partners-and-packages"
    assert slug("The nightly job: `laxchange run`") == "the-nightly-job-laxchange-run"
    assert slug("Incident: a lost or stolen key") == "incident-a-lost-or-stolen-key"
    assert slug("SFTP set-up — OpenSSH") == "sftp-set-up--openssh"


def test_main_group_is_the_one_checked() -> None:
    """The options allowed before a command are the root group's own."""
    assert {o for p in main.params for o in p.opts} <= ROOT_FLAGS | ROOT_VALUED
    assert {"--home", "--log-file"} <= ROOT_VALUED and {"--json", "-q", "--no-color"} <= ROOT_FLAGS
