"""Outputs for people: the readable PEP and the morning report as HTML (autoescaped jinja2 templates
shipped in the package).

    html = render_record_html(record)                       # an education-record dict
    page = render_file(Path("pep.json"))                    # a record, or a message carrying one
    with Party.from_home(home) as me:
        page = render_package(me, Path("x.lax"))            # verified first; nothing recorded
    write_html(Path(page.suggested_name), page.html)        # never over an existing file

    html = render_run_report_html(report.to_dict())         # the nightly run's report (`run --report`)
    html = render_status_html(ledger_status(ledger))        # the ledger's status (`status --html`)

Each page is self-contained (no network resources, no scripts) and prints on A4. The PEP shows the
deadlines for the child when the caller passes them (`deadlines=[Deadline(...)]`); the reports show
the `deadlines` section of their dictionary when it has one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from laxchange import package
from laxchange._util import fs
from laxchange.errors import UsageError
from laxchange.exchange import Party
from laxchange.render.html import MESSAGES_WITH_RECORD, Deadline, record_of, render_record_html, suggested_name
from laxchange.render.report import render_run_report_html, render_status_html

__all__ = ["MESSAGES_WITH_RECORD", "Deadline", "Rendered", "check_output", "is_package", "record_of", "render_file",
           "render_package", "render_record_html", "render_run_report_html", "render_status_html", "suggested_name",
           "write_html"]


@dataclass(frozen=True)
class Rendered:
    """A rendered page and where it came from (ids only: safe to log)."""

    html: str
    record_id: str
    schema: str
    suggested_name: str
    sender: str | None = None
    transfer_id: str | None = None


def is_package(path: Path) -> bool:
    """Whether `path` is a .lax package (by its first line, not its name)."""
    with fs.open_regular(path) as fh:
        return fh.read(len(package.FORMAT_LINE)).startswith(b"LAXCHANGE/")


def _rendered(document: Any, source: str, deadlines: Sequence[Deadline] | None, **ids: str) -> Rendered:
    rec = record_of(document, source=source)
    html = render_record_html(rec, deadlines=deadlines, source=source)
    return Rendered(html, rec["record_id"], str(document["schema"]), suggested_name(rec), **ids)


def render_file(path: Path, *, deadlines: Sequence[Deadline] | None = None) -> Rendered:
    """Render a JSON file: an education-record, or a pep-transfer / placement-notification carrying one."""
    return _rendered(package.read_record(path), str(path), deadlines)


def render_package(party: Party, path: Path, *, deadlines: Sequence[Deadline] | None = None) -> Rendered:
    """Verify and decrypt a package addressed to `party`, then render the record it carries.

    Every check of `package.open_package` applies (sender trusted, signature, addressed to us,
    expiry, record valid). Rendering is read-only: nothing is written, the ledger is not touched
    (so a package already imported can be rendered again) and nothing is quarantined.
    """
    opened = package.open_package(path, keystore=party.keystore, directory=party.directory, clock=party.clock)
    m = opened.manifest
    return _rendered(opened.document, f"package {path.name}", deadlines, sender=m.sender, transfer_id=m.transfer_id)


def check_output(path: Path, *, force: bool = False, option: str = "-o") -> None:
    """Fail early (before any decryption, or before the run) if `path` cannot take the page.
    `option` is the command's option for the file, for the hints (`-o`, `--report`, `--html`)."""
    if fs.output_stream_kind(path) is not None:
        return  # /dev/null, /dev/stdout or a pipe: written into, never replaced
    if path.is_dir():
        raise UsageError(f"{path} is a directory", code="render.output-unwritable",
                         hint=f"give a file name with {option}, e.g. {option} {_example(option)}")
    if path.exists() and not force:
        raise _exists(path, option)
    if not path.parent.is_dir():
        raise UsageError(f"the folder {path.parent} does not exist", code="render.output-unwritable",
                         hint=f"create the folder first, or choose another {option} file")


def _example(option: str) -> str:
    return "pep.html" if option == "-o" else "report.html"


def _exists(path: Path, option: str) -> UsageError:
    return UsageError(f"{path} already exists; nothing was written", code="render.output-exists",
                      hint=f"choose another {option} file, or pass --force to replace it")


def write_html(path: Path, html: str, *, force: bool = False, option: str = "-o") -> None:
    """Write the page, mode 0600 (it may hold personal data), complete or not at all.

    Without `force` an existing file is never replaced, even one that appears while we write:
    the page goes to a temporary file that is then hard-linked to `path`, which fails if the name exists.
    """
    check_output(path, force=force, option=option)
    data = html.encode("utf-8")
    try:
        if force:
            fs.write_atomic(path, data, mode=0o600)
        else:
            fs.write_new_atomic(path, data, mode=0o600)
    except FileExistsError:
        raise _exists(path, option) from None
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}", code="render.output-unwritable",
                         hint=f"check the folder exists and you may write to it, or choose another {option} file"
                         ) from None
