"""`laxchange import` and `laxchange received`: from our drop folder to `HOME/received/<transfer id>/`.

`import_inbox` collects from our own drop folder (every sender's sub-folder of it), opens each
package in the inbox through `Party.open` (all the checks, the ledger, quarantine), and writes
each verified message into its own folder (docs/import.md):

    HOME/received/<transfer id>/
        manifest.json             what arrived: ids, schema, sender, hashes, file names
        record.json               the message as received (verified JSON)
        record.csv                the flat CSV for an MIS, when the message carries an education record
        targets.csv, actions.csv, attainment.csv, attendance.csv, exclusions.csv
                                  one CSV per repeating table of the record (laxchange.mis.csv_tables)
        pep.html                  the readable PEP, when the caller can render one
        attachments/attachment-N.EXT   each attachment (the sender's name for it is in manifest.json)

No file name holds personal data. The folder is filled under a hidden `.incoming-*` name and
renamed into place complete, manifest.json last. The package then moves to `inbox/opened/`, so a
re-run never opens it again. A package whose bytes equal one already imported from the same
sender is a duplicate: imported once, acknowledged again. Receipts go back automatically
(DESIGN.md §6): a signed `delivered` receipt for every verified package that is not itself a
receipt, and a signed rejection (coarse reason code only) for a quarantined package whose sender
and transfer id were authenticated first (see `reject_reason`). `send_applied` sends the second
stage. Receipts are packed into `outbox/receipts/<transfer id>.lax`; one not sent (the partner was
down) is sent by the next import.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from laxchange import package
from laxchange._util import jsonio, timefmt
from laxchange._util.fs import (
    file_signature,
    fsync_dir,
    fsync_files,
    private_dirs,
    sha256_file,
    write_atomic,
    write_atomic_many,
    write_new_files,
)
from laxchange.errors import ConfigError, InvalidData, LaxError, SecurityError, UsageError
from laxchange.exchange.background import BackgroundCollect
from laxchange.exchange.party import OPENED, OpenBatch, Party, shown_error, shown_name
from laxchange.exchange.receipts import ReceiptOutcome, build_receipt, receipt_version_for
from laxchange.exchange.transparency import make_checkpoint
from laxchange.home import Home, json_object, load_home_file
from laxchange.ledger.errors import AlreadyReceived
from laxchange.ledger.lock import RunLock
from laxchange.ledger.states import Inbound, Outbound
from laxchange.logs import log_event
from laxchange.mis import record_of_message, table_files, write_csv
from laxchange.transport import PartyProgress, PartyResult

__all__ = ["ImportItem", "ImportReport", "Received", "SentReceipt", "counts_text", "export_received",
           "find_received", "import_held", "import_inbox", "list_received", "receipt_transfer_ids",
           "received_manifest", "received_record", "received_root", "reject_reason", "send_applied"]

MANIFEST = "manifest.json"
RECORD_JSON = "record.json"
RECORD_CSV = "record.csv"
PEP_HTML = "pep.html"
ATTACHMENTS = "attachments"
STAGING = ".incoming-"
#: Where receipts we send are packed, under `outbox/`.
RECEIPTS = "receipts"
MANIFEST_FORMAT = "laxchange-received/1"

#: Renders the readable PEP from an education record (the CLI passes `render.render_record_html`;
#: `exchange` sits below `render`, so it is handed in).
Renderer = Callable[[dict[str, Any]], str]

_log = logging.getLogger(__name__)

_EXT = re.compile(r"\.[A-Za-z0-9]{1,10}$")
_TID = re.compile(r"[0-9a-f]{32}")
_RECEIPT_NAME = re.compile(r"([0-9a-f]{32})-[A-Z]+_[0-9]+-(delivered|applied)(-rejected)?\.lax")


def received_root(home: Home) -> Path:
    return home.root / "received"


def reject_reason(exc: LaxError) -> str | None:
    """The coarse reason code a rejection receipt carries for a refused package, or None for no rejection.

    Only a package whose sender and transfer id were authenticated (its manifest signature,
    addressee, sender and expiry passed, so the ledger reserved the transfer: the error carries
    `transfer_id` and `sender`) is answered; a package that failed before that (a bad manifest
    signature, an unknown sender, not addressed to us, expired, a replay) could name anyone's
    transfer, so answering it would let a forger make us reject a genuine transfer, or tell a
    prober what we hold. A replay is never answered: its transfer was imported and acknowledged.
    """
    if exc.details.get("transfer_id") and exc.details.get("sender") and exc.code != "package.replayed":
        return exc.code
    return None


@dataclass
class SentReceipt:
    """One receipt we packed and tried to send."""

    to: str
    in_reply_to: str
    stage: str
    status: str
    transfer_id: str | None = None
    error: LaxError | None = None
    #: Sent by an earlier run, not this one: asking twice is not an error (`send_applied`).
    already_sent: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"to": self.to, "in_reply_to": self.in_reply_to, "stage": self.stage,
                               "status": self.status, "transfer_id": self.transfer_id, "sent": self.error is None,
                               "already_sent": self.already_sent}
        if self.error is not None:
            out["error"] = self.error.to_dict()
        return out


@dataclass
class ImportItem:
    """What happened to one inbox file: `imported`, `receipt` (a receipt we applied, or not),
    `duplicate`, `quarantined`, `skipped` (another run is opening it) or `failed`."""

    file: str
    result: str = "failed"
    transfer_id: str | None = None
    sender: str | None = None
    schema: str | None = None
    folder: str | None = None
    error: LaxError | None = None
    receipt: ReceiptOutcome | None = None
    warnings: list[str] = field(default_factory=list)
    #: Of `warnings`, those about the sender's audit-log checkpoint the package carried (kept as evidence:
    #: docs/format.md §4.1); the import report repeats them, so the run needs a look.
    checkpoint_warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing to look at: imported, or a receipt applied that is not a partner's refusal."""
        return self.result in ("imported", "duplicate", "skipped") or (
            self.result == "receipt" and self.receipt is not None and not self.receipt.warning
            and not self.receipt.refused)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"file": self.file, "result": self.result, "ok": self.ok,
                               "transfer_id": self.transfer_id, "sender": self.sender, "schema": self.schema,
                               "folder": self.folder, "warnings": self.warnings}
        if self.receipt is not None:
            out["receipt"] = self.receipt.to_dict()
        if self.error is not None:
            out["error"] = self.error.to_dict(redact=True)
        return out


#: a folder just filed: ([manifest.json's signature, record.json's], its manifest, its record document)
Fresh = tuple[list[list[int] | None], dict[str, Any], dict[str, Any]]


@dataclass
class ImportReport:
    collected: list[PartyResult] = field(default_factory=list)
    items: list[ImportItem] = field(default_factory=list)
    receipts_sent: list[SentReceipt] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: the folders this import filed (up to `FRESH_KEPT`), by name under received/: the signatures
    #: (`file_signature`) of their manifest.json and record.json as the import left them, and what
    #: it wrote into them (the manifest, the record document), so the nightly run's clocks need not
    #: read them back while they are still those files (`clocks.home_deadlines`, which takes the
    #: documents over: it may move them up to the latest schema version in place)
    fresh: dict[str, Fresh] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        """Everything collected, imported or applied, and every receipt sent: nothing needs a look.
        (An entry of our drop folder that collecting skips, never to be collected, needs one.)"""
        return (all(r.ok and not r.warnings for r in self.collected) and all(i.ok for i in self.items)
                and all(s.error is None for s in self.receipts_sent) and not self.warnings)

    def add(self, items: Iterable[ImportItem]) -> None:
        """Items imported, and the warnings about their senders' checkpoints."""
        for item in items:
            self.items.append(item)
            self.warnings += [f"transfer {item.transfer_id}: {w}" for w in item.checkpoint_warnings]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for i in self.items:
            out[i.result] = out.get(i.result, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"complete": self.ok, "counts": self.counts(), "collected": [_shown(r) for r in self.collected],
                "items": [i.to_dict() for i in self.items],
                "receipts_sent": [s.to_dict() for s in self.receipts_sent], "warnings": self.warnings}


#: the import's results that are nouns, not participles: "4 receipts", "2 duplicates"
_NOUNS = frozenset({"receipt", "duplicate"})


def counts_text(counts: Mapping[str, int]) -> str:
    """An import's counts (`ImportReport.counts`) as the text reports say them: "3 imported, 4 receipts"."""
    return ", ".join(f"{v} {k}{'s' if k in _NOUNS and v != 1 else ''}" for k, v in sorted(counts.items()))


def _shown(result: PartyResult) -> dict[str, Any]:
    """A collect's result as the import's report shows it: each file by `shown_name`."""
    out = result.to_dict()
    for f, made in zip(out["files"], result.files, strict=True):
        if made.error is not None:
            f["error"] = shown_error(made.name, made.error).to_dict()
        for key in ("name", "local"):
            if key in f:
                f[key] = shown_name(f[key])
    return out


@dataclass(frozen=True)
class Received:
    """One imported transfer's folder and its manifest."""

    path: Path
    manifest: dict[str, Any]


# -- the received store --------------------------------------------------------------------
def _load_manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / MANIFEST
    if not path.is_file():
        return None
    return load_home_file(path, json_object, what="received manifest")


def received_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest.json of one received folder (None if it has none), as `list_received` reads it."""
    return _load_manifest(folder)


def list_received(home: Home, *, skip: Callable[[str], bool] | None = None) -> list[Received]:
    """Every imported transfer, oldest first; without reading the manifest of a folder whose name
    `skip` is true of (the caller knows from elsewhere it does not want it)."""
    root = received_root(home)
    out = []
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        if d.is_dir() and not d.name.startswith(".") and not (skip is not None and skip(d.name)):
            m = _load_manifest(d)
            if m is not None:
                out.append(Received(d, m))
    return sorted(out, key=lambda r: (str(r.manifest.get("received_at", "")), r.path.name))


def _candidates(home: Home, transfer_id: str, listing: _Listing | None = None) -> list[Received]:
    """The folders that can hold `transfer_id` (`<id>` or `<id>-<sender>`): found by name, never by
    reading every manifest (a council's received/ grows by a receipt or two per transfer, for years);
    from `listing` when the caller has one (an import: no listing of the folder per package)."""
    root = received_root(home)
    if not _TID.fullmatch(transfer_id):
        return []
    if listing is not None:  # what the listing does not name is not there: no stat of each name
        found = listing.all(transfer_id)
    elif root.is_dir():
        found = [root / transfer_id, *sorted(root.glob(f"{transfer_id}-*"))]
    else:
        return []
    out = []
    for d in found:
        m = _load_manifest(d) if d.is_dir() else None
        if m is not None and m.get("transfer_id") == transfer_id:
            out.append(Received(d, m))
    return out


def find_received(home: Home, transfer_id: str, sender: str | None = None) -> Received:
    """The imported transfer `transfer_id` (from `sender`, when given), or a UsageError saying how to find one."""
    hits = [r for r in _candidates(home, transfer_id) if sender is None or r.manifest.get("sender") == sender]
    if not hits:
        frm = f" from {sender}" if sender else ""
        raise UsageError(f"no imported transfer {transfer_id}{frm} in {received_root(home)}", code="received.not-found",
                         hint="`laxchange received list` shows the transfers imported here; `laxchange import` "
                              "imports what has arrived")
    if len(hits) > 1:
        raise UsageError(f"transfer id {transfer_id} was imported from more than one sender "
                         f"({', '.join(str(r.manifest.get('sender')) for r in hits)})", code="received.ambiguous",
                         hint="say which with --from PARTY")
    return hits[0]


class _Listing:
    """The names in received/, listed once per import (on first use) and kept up to date as it files
    and stages: finding a transfer's folders, or what a crash left of its import, then costs a lookup,
    not a listing of a folder that holds one entry per transfer ever received."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._by_tid: dict[str, set[str]] | None = None

    @staticmethod
    def _tid(name: str) -> str:
        return name[len(STAGING):len(STAGING) + 32] if name.startswith(STAGING) else name[:32]

    def _names(self, transfer_id: str) -> set[str]:
        if self._by_tid is None:
            self._by_tid = {}
            for name in os.listdir(self.root) if self.root.is_dir() else []:
                self._by_tid.setdefault(self._tid(name), set()).add(name)
        return self._by_tid.get(transfer_id, set())

    def all(self, transfer_id: str) -> list[Path]:
        """`<id>` (if there), then the `<id>-<sender>` folders: what `_candidates` looks in."""
        names = self._names(transfer_id)
        return [*([self.root / transfer_id] if transfer_id in names else []), *self.folders(transfer_id)]

    def folders(self, transfer_id: str) -> list[Path]:
        """The `<id>-<sender>` folders (what `root.glob(f"{id}-*")` finds), sorted."""
        return [self.root / n for n in sorted(self._names(transfer_id)) if n.startswith(f"{transfer_id}-")]

    def staging(self, transfer_id: str, sender: str) -> list[Path]:
        """What interrupted imports of (`transfer_id`, `sender`) left (what `_clear_staging` removes)."""
        prefix = _staging_prefix(transfer_id, sender)
        return [self.root / n for n in sorted(self._names(transfer_id)) if n.startswith(prefix)]

    def add(self, name: str) -> None:
        if self._by_tid is not None:
            self._by_tid.setdefault(self._tid(name), set()).add(name)

    def discard(self, name: str) -> None:
        if self._by_tid is not None:
            self._by_tid.get(self._tid(name), set()).discard(name)


class _Filed:
    """The filed transfers this import has looked at, by (transfer id, sender): looked up by name on
    first use, and kept up to date as the import files new ones."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.listing = _Listing(received_root(home))
        self._seen: dict[tuple[str, str], Received | None] = {}
        self._made: set[Path] = set()
        #: the folders filed here and what was written into them, for `ImportReport.fresh`
        self.fresh: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}

    def folder(self, path: Path) -> Path:
        """`path` (received/, inbox/opened/), made if need be: once an import, not once a package."""
        if path not in self._made:
            path.mkdir(mode=0o700, exist_ok=True)
            self._made.add(path)
        return path

    def get(self, key: tuple[str, str]) -> Received | None:
        if key not in self._seen:
            self._seen[key] = next((r for r in _candidates(self.home, key[0], self.listing)
                                    if r.manifest.get("sender") == key[1]), None)
        return self._seen[key]

    def __setitem__(self, key: tuple[str, str], value: Received) -> None:
        self._seen[key] = value
        self.listing.add(value.path.name)


def received_record(found: Received) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the education record an imported transfer carries, the transfer's columns for the flat CSV).

    Read from its `record.json`, which was verified when it was imported; the package is not
    opened again. A UsageError if the transfer carries no record (a receipt, an exclusion notice).
    """
    m = found.manifest
    document = load_home_file(found.path / RECORD_JSON, json_object, what="received record")
    record = record_of_message(document)
    if record is None:
        raise UsageError(f"transfer {m.get('transfer_id')} is a {m.get('message_type')}, which carries no education "
                         "record; nothing was written", code="export.no-record",
                         hint="export a transfer that brought a record (`laxchange received list` shows the schemas)")
    meta = {"transfer_id": m.get("transfer_id"), "sender": m.get("sender"), "message_type": m.get("message_type"),
            "received_at": m.get("received_at"),
            "transfer_reason": document.get("transfer_reason") or document.get("reason"),
            "attachments_count": sum(1 for f in m.get("files", []) if isinstance(f, dict)
                                     and f.get("kind") == "attachment")}
    return dict(record), meta


def export_received(home: Home, transfer_id: str, dest: Path, sender: str | None = None) -> list[Path]:
    """Copy an imported transfer's files (record, CSV, HTML, attachments, manifest) into `dest`,
    a new folder; the package is not opened again. Refuses an existing `dest` (nothing is overwritten)."""
    found = find_received(home, transfer_id, sender)
    if os.path.lexists(dest):
        raise UsageError(f"{dest} already exists; nothing was written", code="output.exists",
                         hint="name a new folder for the export")
    parent = dest.parent if str(dest.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"the folder {parent} for the export does not exist; nothing was written",
                         code="output.no-folder", hint=f"create it first (mkdir -p {parent}) or choose another path")
    files = [f["name"] for f in found.manifest.get("files", []) if isinstance(f, dict)] + [MANIFEST]
    tmp = parent / f".{dest.name}{STAGING}{secrets.token_hex(4)}"
    tmp.mkdir(mode=0o700)
    try:
        written = []
        for name in files:
            src = found.path / name
            target = tmp / name
            target.parent.mkdir(mode=0o700, exist_ok=True)
            shutil.copyfile(src, target)
            target.chmod(0o600)
            written.append(dest / name)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return written


# -- import ----------------------------------------------------------------------------------
def _peek(path: Path) -> package.Manifest | None:
    """The package's manifest, unverified (for names and the duplicate check only), or None."""
    m = package.peek_manifest(path)
    return m if m is not None and _TID.fullmatch(m.transfer_id) else None


def _aside_name(path: Path, folder: Path) -> Path:
    """Where `_set_aside` will put `path`: its own name, unless a different file has it."""
    target = folder / path.name
    if target.exists() and sha256_file(target) != sha256_file(path):
        target = folder / f"{path.stem}-{sha256_file(path)[:12]}{path.suffix}"
    return target


def _set_aside(path: Path, folder: Path, *, made: bool = False) -> Path:
    """Move `path` into `folder` (made here unless `made`), never over a different file of the same name."""
    if not made:
        folder.mkdir(exist_ok=True, mode=0o700)
    target = _aside_name(path, folder)
    if target.exists():  # the same bytes are already there
        path.unlink()
        return target
    try:
        path.replace(target)
    except FileNotFoundError:
        if not made or folder.is_dir() or not path.exists():
            raise
        folder.mkdir(exist_ok=True, mode=0o700)  # made once an import (`_Filed.folder`), removed since
        path.replace(target)
    return target


def _write(path: Path, data: bytes) -> None:
    jsonio.write_atomic(path, data)


def _fill(party: Party, staging: Path, opened: package.Opened, source: Path, sender_folder: str | None,
          render: Renderer | None, item: ImportItem, package_file: str) -> dict[str, Any]:
    """Write the CSV, HTML and manifest.json beside the record; name attachments without personal data.

    Nothing is fsynced here: the caller fsyncs these files and the record (`_unsynced`), with
    those of the batch's other folders, then the folders, before renaming each into place
    complete, so no file in it needs a temporary name of its own."""
    m = opened.manifest
    doc = opened.document
    name = opened.schema.partition("@")[0]
    files: list[dict[str, Any]] = [{"name": RECORD_JSON, "kind": "record",
                                    "sha256": sha256_file(staging / RECORD_JSON)}]
    for a in opened.attachments:
        ext = _EXT.search(a["name"])
        new = f"attachment-{a['index'] + 1}{ext.group(0).lower() if ext else ''}"
        (staging / ATTACHMENTS / a["name"]).rename(staging / ATTACHMENTS / new)
        files.append({"name": f"{ATTACHMENTS}/{new}", "kind": "attachment", "original_name": a["name"],
                      "size": a["size"], "sha256": a["sha256"]})
    now = party.clock.now()
    record = record_of_message(doc)
    out: dict[str, bytes] = {}
    if record is not None:
        meta = {"transfer_id": m.transfer_id, "sender": m.sender, "message_type": name,
                "received_at": timefmt.fmt(now), "transfer_reason": doc.get("transfer_reason") or doc.get("reason"),
                "attachments_count": len(opened.attachments)}
        for csv_name, data in {RECORD_CSV: write_csv(record, meta), **table_files(record, meta)}.items():
            out[csv_name] = data
            files.append({"name": csv_name, "kind": "csv", "sha256": hashlib.sha256(data).hexdigest()})
        if render is not None:
            try:
                out[PEP_HTML] = render(dict(record)).encode("utf-8")
                files.append({"name": PEP_HTML, "kind": "html", "sha256": hashlib.sha256(out[PEP_HTML]).hexdigest()})
            except LaxError as exc:  # the record is imported all the same; say why there is no page
                item.warnings.append(f"no {PEP_HTML}: {exc.code}")
    manifest = {
        "format": MANIFEST_FORMAT, "transfer_id": m.transfer_id, "sender": m.sender, "recipient": m.recipient,
        "sender_folder": sender_folder, "schema": opened.schema, "message_type": name, "created": m.created,
        "expires": m.expires, "received_at": timefmt.fmt(now), "payload_sha256": m.payload_sha256,
        "package_sha256": sha256_file(source), "package_file": package_file, "files": files, "receipts": [],
    }
    out[MANIFEST] = package.pretty_json(manifest)
    write_new_files(staging, out, sync=False)
    return manifest


def _unsynced(staging: Path, manifest: dict[str, Any]) -> list[Path]:
    """The files of a filled staging folder not yet fsynced, as its manifest lists them: the record
    (`open_package(staged=True)`), what `_fill` wrote, and the manifest itself. (Attachments are
    each fsynced as they are written.)"""
    return [*(staging / f["name"] for f in manifest["files"] if f["kind"] != "attachment"), staging / MANIFEST]


def _final_dir(root: Path, transfer_id: str, sender: str) -> Path:
    target = root / transfer_id
    if target.exists():  # another sender used the same transfer id: keep both, neither overwritten
        target = root / f"{transfer_id}-{sender.replace(':', '_')}"
    if target.exists():
        raise UsageError(f"{target} already exists", code="received.exists",
                         hint="move the old folder away and run `laxchange import` again")
    return target


@dataclass
class _Outgoing:
    to: str
    in_reply_to: str
    payload_sha256: str
    stage: str = "delivered"
    reason_code: str | None = None
    folder: Path | None = None  # the received folder whose manifest lists the receipt
    resend: bool = False  # the package came again: send the same receipt file again
    #: the folder's manifest.json as this import just wrote it (so noting the receipt need not read it again)
    manifest: dict[str, Any] | None = None


def _safe(party: str) -> str:
    return party.replace(":", "_")


def _staging_prefix(transfer_id: str, sender: str) -> str:
    """Staging folders are named by transfer, so a later import can find (and, once it has filed
    that transfer, remove) what a crash left half-filled."""
    return f"{STAGING}{transfer_id}-{_safe(sender)}-"


def _clear_staging(listing: _Listing, transfer_id: str, sender: str) -> None:
    """Remove what interrupted imports of this transfer left: its folder under received/ is
    complete now, so they hold nothing that is not there too."""
    for d in listing.staging(transfer_id, sender):
        shutil.rmtree(d, ignore_errors=True)
        listing.discard(d.name)


@dataclass
class _Staged:
    """A package opened into its staging folder, to be filed once its `imported` is committed."""

    item: ImportItem
    path: Path
    sender_folder: str | None
    staging: Path
    opened: package.Opened
    resume: bool
    outcomes: list[ReceiptOutcome]


def _open_one(party: Party, path: Path, peek: package.Manifest | None, sender_folder: str | None,
              outgoing: list[_Outgoing], done_index: _Filed, batch: OpenBatch,
              verified: package.Verified | None = None) -> ImportItem | _Staged:
    """The first half of importing one inbox package (docs/import.md): a duplicate is set aside
    and acknowledged, a refused package quarantined (a finished `ImportItem` either way); otherwise
    the record is verified and written into `received/.incoming-<transfer id>-<sender>-*`, its
    `imported` left to `batch` (a crash before that commits: the reservation is taken again and
    the package imported by the next run), and `_file_staged` files it once `batch` has committed.
    A package whose row is `imported` with no folder filed (a crash after the commit) is verified
    again (`Party.reopen_imported`). `verified`: the package as the collecting child verified it
    (`package.verify_package`), if it did."""
    home = party.home
    root = received_root(home)
    item = ImportItem(shown_name(path.name))
    resume = False
    if peek is not None:  # `_peek(path)`
        item.transfer_id, item.sender = peek.transfer_id, peek.sender
        done = done_index.get((peek.transfer_id, peek.sender))
        if done is not None and done.manifest.get("package_sha256") == sha256_file(path):
            kept = _set_aside(path, done_index.folder(home.inbox / OPENED), made=True)
            if done.manifest.get("package_file") is None:  # a crash came between the filing and this
                done.manifest["package_file"] = f"inbox/{OPENED}/{kept.name}"
                _write(done.path / MANIFEST, package.pretty_json(done.manifest))
            _clear_staging(done_index.listing, peek.transfer_id, peek.sender)
            item.result, item.folder, item.schema = "duplicate", done.path.name, done.manifest.get("schema")
            if not str(item.schema).startswith("receipt@"):  # never receipt a receipt
                outgoing.append(_Outgoing(peek.sender, peek.transfer_id, str(done.manifest["payload_sha256"]),
                                          folder=done.path, resend=True))
            return item
        row = party.ledger.get(peek.transfer_id, "in", peek.sender)
        resume = done is None and row is not None and row.state == Inbound.IMPORTED
    done_index.folder(root)
    prefix = _staging_prefix(peek.transfer_id, peek.sender) if peek is not None else STAGING
    staging = root / f"{prefix}{secrets.token_hex(4)}"
    staging.mkdir(mode=0o700)
    done_index.listing.add(staging.name)
    outcomes: list[ReceiptOutcome] = []
    try:
        if resume:
            as_of = timefmt.parse(row.updated) if row is not None else None  # when it was accepted
            opened = party.reopen_imported(path, out=staging / RECORD_JSON, attachments_dir=staging / ATTACHMENTS,
                                           on_receipt=outcomes.append, staged=True, as_of=as_of)
        else:
            opened = party.open(path, out=staging / RECORD_JSON, attachments_dir=staging / ATTACHMENTS,
                                on_receipt=outcomes.append, staged=True, batch=batch, verified=verified,
                                delivered_by=sender_folder)
    except AlreadyReceived as exc:
        shutil.rmtree(staging, ignore_errors=True)
        item.result = "skipped" if exc.in_progress else "quarantined"
        item.error = exc
        _name_quarantined(item, exc)
        return item
    except (SecurityError, InvalidData, UsageError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        item.result, item.error = "quarantined", exc
        _name_quarantined(item, exc)
        code = reject_reason(exc)
        if code is not None and peek is not None and exc.details["transfer_id"] == peek.transfer_id:
            outgoing.append(_Outgoing(str(exc.details["sender"]), peek.transfer_id, peek.payload_sha256,
                                      reason_code=code))
        return item
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    m = opened.manifest
    item.transfer_id, item.sender, item.schema = m.transfer_id, m.sender, opened.schema
    return _Staged(item, path, sender_folder, staging, opened, resume, outcomes)


def _name_quarantined(item: ImportItem, exc: LaxError) -> None:
    """A quarantined package is named by its name in quarantine (`laxchange quarantine list`), which
    laxchange chose, not by its inbox name, which its sender did."""
    moved = exc.details.get("quarantined")
    if isinstance(moved, str):
        item.file = Path(moved).name


def _file_staged(party: Party, staged: list[_Staged], render: Renderer | None, outgoing: list[_Outgoing],
                 done_index: _Filed) -> None:
    """The second half, for packages whose `imported` is committed: each folder is completed, every
    file of every folder fsynced at once (the record too: nothing relies on it before this, since
    a crash before the rename leaves the package in the inbox to be verified again), the folders
    fsynced together, each renamed into place, received/ fsynced once for all of them, and
    only then is each package moved to `inbox/opened/` (a crash before that fsync: the row is
    `imported` and no folder filed, so the next run verifies the package, still in the inbox,
    again). One package's failure is its own."""
    home = party.home
    root = received_root(home)
    filled: list[tuple[_Staged, dict[str, Any], str]] = []
    for s in staged:
        try:
            expected = f"inbox/{OPENED}/{_aside_name(s.path, home.inbox / OPENED).name}"
            manifest = _fill(party, s.staging, s.opened, s.path, s.sender_folder, render, s.item, expected)
        except LaxError as exc:  # not the package's fault (disk, a folder in the way): it stays in the inbox
            s.item.result, s.item.error = "failed", exc
            continue
        filled.append((s, manifest, expected))
    # every file of every folder and the folders themselves, all at once (one wait: each must be durable
    # before its folder's rename, and none before another); a file's disk error is raised, as from writing it
    fsync_files([f for s, manifest, _ in filled for f in _unsynced(s.staging, manifest)],
                dirs=[d for s, _, _ in filled for d in ((s.staging / ATTACHMENTS,) if s.opened.attachments else ())
                      + (s.staging,)])
    filed: list[tuple[_Staged, Path, dict[str, Any], str]] = []
    for s, manifest, expected in filled:
        m = s.opened.manifest
        try:
            target = _final_dir(root, m.transfer_id, m.sender)
            os.rename(s.staging, target)
        except LaxError as exc:
            s.item.result, s.item.error = "failed", exc
            continue
        done_index.listing.discard(s.staging.name)
        filed.append((s, target, manifest, expected))
    if filed:
        fsync_dir(root)
    for s, target, manifest, expected in filed:
        m, item, opened = s.opened.manifest, s.item, s.opened
        _clear_staging(done_index.listing, m.transfer_id, m.sender)
        done_index[(m.transfer_id, m.sender)] = Received(target, manifest)
        item.folder = target.name
        try:
            kept = _set_aside(s.path, done_index.folder(home.inbox / OPENED), made=True)
            if f"inbox/{OPENED}/{kept.name}" != expected:  # another file took the name in between
                manifest["package_file"] = f"inbox/{OPENED}/{kept.name}"
                _write(target / MANIFEST, package.pretty_json(manifest))
        except LaxError as exc:
            item.result, item.error = "failed", exc
            continue
        if s.resume:
            item.warnings.append("finished an import an earlier run left unfinished (it was interrupted)")
        item.checkpoint_warnings = [w["message"] for w in opened.warnings]  # the sender's checkpoint did not fit
        item.warnings += item.checkpoint_warnings
        if opened.schema.startswith("receipt@"):
            item.result = "receipt"
            item.receipt = s.outcomes[0] if s.outcomes else None
        else:
            item.result = "imported"
            if len(done_index.fresh) < FRESH_KEPT:
                done_index.fresh[target.name] = (manifest, opened.document)
            outgoing.append(_Outgoing(m.sender, m.transfer_id, m.payload_sha256, folder=target, manifest=manifest))


#: How many packages one import opens before it commits their `imported` together and files them.
IMPORT_BATCH = 32
#: How many filed folders' documents one import keeps for the clocks (`ImportReport.fresh`); the
#: clocks read those of a larger import back from received/, as they read every other folder.
FRESH_KEPT = 2000


def _import_all(party: Party, paths: list[Path], folders: dict[str, str | None], render: Renderer | None,
                outgoing: list[_Outgoing], done_index: _Filed,
                verified: Mapping[str, package.Verified] | None = None) -> list[ImportItem]:
    """Import `paths` in batches of `IMPORT_BATCH`: open each, commit the batch's `imported` in one
    ledger commit (`OpenBatch`), then file them. A batch ends early at a second package of a transfer
    already in it, so that one is found a duplicate of the filed first, as before batching. `verified`:
    by inbox file name, the packages verified ahead (`package.verify_package`)."""
    items: list[ImportItem] = []
    batch = OpenBatch(party)
    staged: list[_Staged] = []

    def flush() -> None:
        errors = batch.commit()
        ok = []
        for s in staged:
            err = errors.pop(0) if not s.resume else None
            if err is not None:
                shutil.rmtree(s.staging, ignore_errors=True)
                done_index.listing.discard(s.staging.name)
                s.item.result, s.item.error = "failed", err
            else:
                ok.append(s)
        _file_staged(party, ok, render, outgoing, done_index)
        staged.clear()

    try:
        for path in paths:
            _import_next(party, path, folders, outgoing, done_index, batch, staged, items, flush,
                         (verified or {}).get(path.name))
        flush()
    except BaseException:  # not a package's fault: give back what this batch holds, as a failed open does
        batch.abandon()
        for s in staged:
            shutil.rmtree(s.staging, ignore_errors=True)
        raise
    return items


def _import_next(party: Party, path: Path, folders: dict[str, str | None], outgoing: list[_Outgoing],
                 done_index: _Filed, batch: OpenBatch, staged: list[_Staged], items: list[ImportItem],
                 flush: Callable[[], None], verified: package.Verified | None = None) -> None:
    """Open one inbox package into the batch (`_import_all`), ending the batch first if it holds this transfer."""
    try:
        peek = _peek(path)
        if peek is not None and any((s.item.transfer_id, s.item.sender) == (peek.transfer_id, peek.sender)
                                    for s in staged):
            flush()
        got = _open_one(party, path, peek, folders.get(path.name), outgoing, done_index, batch, verified)
    except LaxError as exc:  # not the package's fault (disk, ledger): it stays in the inbox
        got = ImportItem(shown_name(path.name), error=exc)
    if isinstance(got, _Staged):
        staged.append(got)
        items.append(got.item)
    else:
        items.append(got)
    if len(staged) >= IMPORT_BATCH:
        flush()


def _receipts_dir(home: Home) -> Path:
    d = home.outbox / RECEIPTS
    private_dirs(d)
    return d


def _receipt_file(folder: Path, o: _Outgoing) -> Path:
    """The one file of the receipt `o` in `folder` (outbox/receipts/), named by what it answers, so a
    receipt is packed once, and a crash between packing and recording it leaves a file the next run
    finds and sends, not a second one."""
    kind = o.stage if o.reason_code is None else f"{o.stage}-rejected"
    return folder / f"{o.in_reply_to}-{_safe(o.to)}-{kind}.lax"


def receipt_transfer_ids(home: Home) -> set[str]:
    """Transfer ids of the receipts we packed (nobody acknowledges a receipt, so none is ever overdue)."""
    d = home.outbox / RECEIPTS
    ids = set()
    for f in d.glob("*.lax") if d.is_dir() else []:
        m = _peek(f)
        if m is not None:
            ids.add(m.transfer_id)
    return ids


def _listed_receipt(home: Home, receipt_id: str, in_reply_to: str, to: str) -> dict[str, Any] | None:
    """The entry for our receipt `receipt_id` in the manifest of the transfer it answers (`in_reply_to` from `to`)."""
    for r in _candidates(home, in_reply_to):
        if r.manifest.get("sender") != to:
            continue
        for e in r.manifest.get("receipts", []):
            if isinstance(e, dict) and e.get("transfer_id") == receipt_id:
                return {**e, "in_reply_to": in_reply_to, "folder": str(r.path)}
    return None


def _note_receipt(home: Home, folder: Path | None, sent: SentReceipt,
                  notes: dict[Path, dict[str, Any]] | None = None, written: dict[str, Any] | None = None) -> None:
    """List a receipt we sent (or tried to) in the received folder's manifest.json; with `notes`,
    the changed manifest is kept there (by folder) for `_write_notes` to write with the others.
    `written`: the folder's manifest as this import wrote it, used instead of reading it again."""
    if folder is None and sent.transfer_id is not None and sent.in_reply_to:
        entry = _listed_receipt(home, sent.transfer_id, sent.in_reply_to, sent.to)
        folder = Path(entry["folder"]) if entry else None
    if folder is None:
        return
    if notes is not None and folder in notes:
        manifest: dict[str, Any] | None = notes[folder]
    else:
        manifest = dict(written) if written is not None else _load_manifest(folder)
    if manifest is None:
        return
    # this receipt's earlier entry, and an attempt at it that could not be packed (no transfer id): replaced
    entries = [e for e in manifest.get("receipts", []) if isinstance(e, dict)
               and (sent.transfer_id is None or e.get("transfer_id") != sent.transfer_id)
               and not (e.get("transfer_id") is None and e.get("stage") == sent.stage
                        and e.get("status") == sent.status)]
    entries.append({"transfer_id": sent.transfer_id, "stage": sent.stage, "status": sent.status,
                    "sent": sent.error is None})
    manifest["receipts"] = entries
    if sent.stage == "applied" and sent.in_reply_to:
        _note_applied_owed(home, sent.in_reply_to, sent.to, folder if sent.error is not None else None)
    if notes is None:
        _write(folder / MANIFEST, package.pretty_json(manifest))
    else:
        notes[folder] = manifest


def _write_notes(notes: dict[Path, dict[str, Any]]) -> None:
    """Write the manifests `_note_receipt` changed, all fsynced together. A crash before this is
    written leaves a receipt sent that its folder does not list: the next run finds it sent and lists
    it (`_send_receipts`), and sends nothing twice."""
    files = {folder / MANIFEST: package.pretty_json(m) for folder, m in notes.items()}
    write_atomic_many(files)
    notes.clear()


#: How far back `_owed` looks for a filed transfer whose receipt was never packed (a crash between
#: filing and packing is found by the next run; a receipt packed and not sent is `_pending`'s).
OWED_WINDOW = dt.timedelta(days=30)


#: The applied receipts asked for and not sent (`send_applied` lists one unsent when it cannot be
#: packed), by transfer: `_owed` looks at the imports of the last OWED_WINDOW only, and an applied
#: receipt is asked for weeks after the import, when the record reaches the MIS. Only ids and the
#: received folder's name; kept until the receipt is sent.
APPLIED_OWED = Path("cache") / "applied-owed.json"
_APPLIED_OWED_FORMAT = "laxchange-applied-owed/1"


def _applied_owed(home: Home) -> dict[str, dict[str, str]]:
    """`APPLIED_OWED`'s entries (transfer id -> sender, folder); a missing or damaged file is none
    (what it says is also in each received folder's manifest)."""
    try:
        data = jsonio.loads_strict((home.root / APPLIED_OWED).read_bytes())
    except (OSError, LaxError):
        return {}
    owed = data.get("owed") if isinstance(data, dict) and data.get("format") == _APPLIED_OWED_FORMAT else None
    return {str(k): v for k, v in owed.items() if isinstance(v, dict) and isinstance(v.get("sender"), str)
            and isinstance(v.get("folder"), str)} if isinstance(owed, dict) else {}


def _note_applied_owed(home: Home, transfer_id: str, sender: str, folder: Path | None) -> None:
    """Note the applied receipt of `transfer_id` owed (its received `folder`), or, with None, sent."""
    owed = _applied_owed(home)
    key = f"{sender} {transfer_id}"
    if folder is None and key not in owed:
        return
    if folder is None:
        del owed[key]
    else:
        owed[key] = {"sender": sender, "folder": folder.name}
    path = home.root / APPLIED_OWED
    path.parent.mkdir(mode=0o700, exist_ok=True)
    jsonio.write_atomic(path, jsonio.dumps_pretty({"format": _APPLIED_OWED_FORMAT, "owed": owed}).encode("utf-8"))


def _owed(party: Party, done_index: _Filed) -> list[_Outgoing]:
    """The delivered receipt of every recently filed transfer whose manifest does not list one sent: a
    crash (or a partner that was down) came between the filing and the receipt. Likewise its applied
    receipt, if one was asked for (`send_applied`, which lists it unsent when it cannot be packed, say
    while the partner's card has no encryption key valid) and none is listed sent: nothing else would
    ever send it. The ledger says which transfers were imported lately, so this never reads the whole
    received/ folder. `_send_receipts` finds a receipt packed before by its file and sends that one,
    so none is ever packed twice."""
    out = []
    since = party.clock.now() - OWED_WINDOW
    for t in party.ledger.transfers(direction="in", state=Inbound.IMPORTED, since=since):
        if t.message_type == "receipt":
            continue
        r = done_index.get((t.transfer_id, t.party))
        m = r.manifest if r is not None else {}
        if r is None or str(m.get("schema", "")).startswith("receipt@") or not m.get("payload_sha256"):
            continue
        listed = [e for e in m.get("receipts", []) if isinstance(e, dict)]
        for stage in ("delivered", "applied"):
            asked = stage == "delivered" or any(e.get("stage") == stage for e in listed)
            if asked and not any(e.get("stage") == stage and e.get("sent") for e in listed):
                out.append(_Outgoing(t.party, t.transfer_id, str(m["payload_sha256"]), stage=stage, folder=r.path))
    known = {(o.to, o.in_reply_to) for o in out if o.stage == "applied"}
    root = received_root(party.home)
    for key, entry in _applied_owed(party.home).items():  # asked for after the window: owed all the same
        tid = key.rpartition(" ")[2]
        if (entry["sender"], tid) in known or Path(entry["folder"]).name != entry["folder"]:
            continue
        folder = root / entry["folder"]
        try:
            m = _load_manifest(folder) or {}
        except LaxError:
            continue  # damaged: kept owed, for someone to look at (`received list` reports it)
        if m.get("transfer_id") == tid and m.get("payload_sha256") and _applied_sent(m) is None:
            out.append(_Outgoing(entry["sender"], tid, str(m["payload_sha256"]), stage="applied", folder=folder))
        else:  # sent since (a run that died before its note), or the folder is gone: owed no more
            with contextlib.suppress(OSError):
                _note_applied_owed(party.home, tid, entry["sender"], None)
    return out


def _owed_rejections(party: Party) -> list[_Outgoing]:
    """The rejection of every package quarantined from the inbox lately whose rejection was never packed:
    the run was stopped (Ctrl-C, a service stop) between the quarantine, which is on record at
    once, and the receipts, which are packed at the end. Answered as the import would have:
    only packages quarantined from the inbox (by an import, or by `laxchange open` of an inbox
    file, which is the same package refused) whose sender and transfer were authenticated (their
    row is `quarantined`, `reject_reason`'s rule), and never a replay. A
    rejection packed before, sent or not, expired or not, is the one file `_receipt_file` names;
    `_send_receipts` sends it if it was not sent, so none is ever packed twice."""
    since = party.clock.now() - OWED_WINDOW
    rows = [t for t in party.ledger.transfers(direction="in", state=Inbound.QUARANTINED, since=since)
            if t.detail and t.detail != "package.replayed" and t.payload_sha256]
    if not rows:
        return []
    # from the inbox (its audit entry names the quarantined file), not a file opened by hand from elsewhere
    inbox = {e["data"].get("transfer_id") for e in party.ledger.audit_entries(
        ["in.quarantined"], transfer_ids={t.transfer_id for t in rows}) if e["data"].get("quarantine")}
    receipts = party.home.outbox / RECEIPTS
    out = []
    for t in rows:
        o = _Outgoing(t.party, t.transfer_id, str(t.payload_sha256), reason_code=t.detail)
        f = _receipt_file(receipts, o)
        if t.transfer_id in inbox and not f.exists() and not (f.parent / "expired" / f.name).exists():
            out.append(o)
    return out


#: Receipt files known to be sent (their ledger rows past `queued`), kept between runs under the home.
SENT_RECEIPTS = Path("cache") / "receipts-sent.json"
_SENT_FORMAT = "laxchange-receipts-sent/1"


class _SentReceipts:
    """The receipt files of outbox/receipts/ whose ledger rows are past `queued`, by name and
    `file_signature`: such a row never goes back to `queued`, so the file is never pending again and
    `_pending` passes it over without opening it (a school packs a receipt or two per PEP, for years).
    Trusted only for the ledger it was made against: the file names the audit entry that was the
    chain's head then, and if this ledger's entry of that number has another hash or none (a
    ledger restored from a backup, or another home's), it is ignored; as it is if it cannot be read."""

    def __init__(self, party: Party) -> None:
        self.path = party.home.root / SENT_RECEIPTS
        self.ledger = party.ledger
        self.files: dict[str, Any] = {}
        self.head: tuple[int, str] = (0, "")
        self.changed = False
        try:
            raw = jsonio.loads_strict(self.path.read_bytes(), source=str(self.path), max_bytes=256 * 1024 * 1024)
            seq, digest = int(raw["head"][0]), str(raw["head"][1])
            files = raw["files"]
        except (OSError, ValueError, KeyError, TypeError, IndexError, LaxError):
            return
        if raw.get("format") == _SENT_FORMAT and isinstance(files, dict) and self.ledger.audit_hash(seq) == digest:
            self.files, self.head = files, (seq, digest)

    def known(self, f: Path, sig: list[int] | None) -> bool:
        return sig is not None and self.files.get(f.name) == sig

    def add(self, f: Path, sig: list[int] | None) -> None:
        """Remember `f` as sent, unless it was written in the last seconds (a file replaced within the
        file system's timestamp granularity could keep its times; so it is checked again next run)."""
        if sig is not None and sig[2] < time.time_ns() - 2_000_000_000:
            self.files[f.name] = sig
            self.changed = True

    def save(self, present: set[str]) -> None:
        """Write it if it changed (names no longer in the folder dropped); failing to is only slower."""
        gone = set(self.files) - present
        for name in gone:
            del self.files[name]
        if not (self.changed or gone):
            return
        later = self.ledger.audit_hashes(after=self.head[0])
        head = later[-1] if later else self.head
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(mode=0o700, exist_ok=True)
            write_atomic(self.path, jsonio.dumps_compact({"format": _SENT_FORMAT, "head": list(head),
                                                           "files": self.files}))


def _pending(party: Party, skip: set[Path] | frozenset[Path] = frozenset()) -> list[tuple[str, Path]]:
    """Receipts packed but not sent (still `queued`, or packed by a run that died before the ledger
    recorded them): (recipient, file). Files in `skip` (those the caller is sending already), and
    those `_SentReceipts` knows were sent, are passed over unread."""
    out = []
    d = party.home.outbox / RECEIPTS
    sent = _SentReceipts(party)
    names: set[str] = set()
    for f in sorted(d.glob("*.lax")) if d.is_dir() else []:
        names.add(f.name)
        if f.name.startswith(".") or f in skip:
            continue
        sig = file_signature(f)
        if sent.known(f, sig):
            continue
        m = _peek(f)
        if m is None:
            continue
        row = party.ledger.get(m.transfer_id, "out", m.recipient)
        if row is None or row.state == Outbound.QUEUED:
            out.append((m.recipient, f))
        else:
            sent.add(f, sig)
    sent.save(names)
    return out


def _usable(party: Party, f: Path) -> package.Manifest | None:
    """The manifest of receipt file `f` if it can still be sent; an expired one is moved to
    `receipts/expired/` (kept: it is the record of what we said) and None returned, so a new one is packed."""
    m = _peek(f)
    if m is not None and timefmt.parse(m.expires) > party.clock.now():
        return m
    _set_aside(f, f.parent / "expired")
    return None


def _logged(rec: SentReceipt) -> SentReceipt:
    if rec.error is None:
        log_event(_log, "receipt.sent", transfer_id=rec.transfer_id, in_reply_to=rec.in_reply_to, party=rec.to,
                  stage=rec.stage, status=rec.status)
    else:
        log_event(_log, "receipt.failed", logging.WARNING, in_reply_to=rec.in_reply_to, party=rec.to,
                  stage=rec.stage, code=rec.error.code)
    return rec


def _our_checkpoint(party: Party, ours: list[str | None]) -> str | None:
    """A signed checkpoint of our audit log for the receipts we send (receipt 1.2.0), made once per
    batch; without one (no Ed25519 key, an unreadable log) the receipt goes without it."""
    if not ours:
        try:
            ours.append(make_checkpoint(party).note)
        except LaxError as exc:
            log_event(_log, "checkpoint.failed", logging.WARNING, code=exc.code)
            ours.append(None)
    return ours[0]


def _send_receipts(party: Party, outgoing: Iterable[_Outgoing],
                   progress: PartyProgress | None = None) -> list[SentReceipt]:
    """Pack each receipt into its own file under outbox/receipts/ (once) and send them, one
    connection per partner; a receipt packed and not yet sent is sent, not packed again."""
    now = party.clock.now()
    # each: (receipt file, what is sent, the received folder whose manifest lists it, that manifest if known)
    batches: dict[str, list[tuple[Path, SentReceipt, Path | None, dict[str, Any] | None]]] = {}
    sent: list[SentReceipt] = []
    ours: list[str | None] = []  # one checkpoint for every receipt of this batch, signed when first needed
    wanted: dict[Path, _Outgoing] = {}
    receipts = party.home.outbox / RECEIPTS  # made (`_receipts_dir`) once, when something is packed into it
    for o in outgoing:
        f = _receipt_file(receipts, o)
        if f in wanted:
            wanted[f].resend |= o.resend
            if wanted[f].folder is None:
                wanted[f].folder, wanted[f].manifest = o.folder, o.manifest
        else:
            wanted[f] = o
    # one commit queues every receipt packed here, after their files are written together (each durable,
    # the folder fsynced): a crash before it leaves packed files the ledger does not know, which the next
    # run finds by name and sends (as any receipt packed and not sent)
    packed: dict[Path, bytes] = {}
    known: dict[Path, tuple[package.Manifest, str]] = {}  # what was packed here: its manifest and SHA-256
    with party.ledger.batch():
        for f, o in wanted.items():
            status = "rejected" if o.reason_code else "accepted"
            rec = SentReceipt(o.to, o.in_reply_to, o.stage, status)
            m = _peek(f) if f.exists() else None
            row = party.ledger.get(m.transfer_id, "out", o.to) if m is not None else None
            if m is not None and row is not None and row.state != Outbound.QUEUED and not o.resend:
                # sent before; a crash came before its folder's manifest said so. Noted, expired since
                # or not: an expired one set aside would have a second receipt packed and sent
                rec.transfer_id = m.transfer_id
                _note_receipt(party.home, o.folder, rec, written=o.manifest)
                continue
            m = _usable(party, f) if f.exists() else None
            if m is not None:
                rec.transfer_id = m.transfer_id
                batches.setdefault(o.to, []).append((f, rec, o.folder, o.manifest))
                continue
            try:  # the highest receipt version both of us read: an older partner gets 1.1.0, without the checkpoint
                version = receipt_version_for(party.directory.get(o.to))
                doc = build_receipt(in_reply_to=o.in_reply_to, payload_sha256=o.payload_sha256, received_at=now,
                                    processed_at=now, stage=o.stage, reason_code=o.reason_code, version=version,
                                    checkpoint=_our_checkpoint(party, ours))
                buf = io.BytesIO()
                res = party.pack(doc, message_type="receipt", recipient=o.to, out=buf)
            except LaxError as exc:
                rec.error = exc
                sent.append(_logged(rec))
                _note_receipt(party.home, o.folder, rec, written=o.manifest)
                continue
            packed[f] = buf.getvalue()
            known[f] = (res.manifest, hashlib.sha256(packed[f]).hexdigest())
            rec.transfer_id = res.manifest.transfer_id
            batches.setdefault(o.to, []).append((f, rec, o.folder, o.manifest))
        if packed:
            _receipts_dir(party.home)
        write_atomic_many(packed)
    queued = {f for batch in batches.values() for f, _, _, _ in batch}
    for to, f in _pending(party, queued):  # packed by an earlier run whose send failed: the same file again
        if _usable(party, f) is None:
            continue
        m = _peek(f)
        named = _RECEIPT_NAME.fullmatch(f.name)  # `<in_reply_to>-<partner>-<stage>[-rejected].lax`
        about = named.group(1) if named else ""
        entry = _listed_receipt(party.home, m.transfer_id, about, to) if m is not None and about else None
        rec = SentReceipt(to, about, named.group(2) if named else str((entry or {}).get("stage", "")),
                          ("rejected" if named.group(3) else "accepted") if named
                          else str((entry or {}).get("status", "")), transfer_id=m.transfer_id if m else None)
        batches.setdefault(to, []).append((f, rec, Path(entry["folder"]) if entry else None, None))
    for to, batch in batches.items():
        try:
            result = party.send(to, [f for f, _, _, _ in batch], progress=progress,
                                packed={f: known[f] for f, _, _, _ in batch if f in known})
        except LaxError as exc:
            result = PartyResult(to, error=exc)
        errors = {f.name: f.error for f in result.files}
        notes: dict[Path, dict[str, Any]] = {}
        for f, rec, folder, manifest in batch:
            wire = f"{rec.transfer_id}.lax"
            rec.error = result.error or errors.get(wire)
            if wire not in errors and result.error is None:
                rec.error = UsageError(f"{f.name} was not sent", code="receipt.not-sent")
            sent.append(_logged(rec))
            _note_receipt(party.home, folder, rec, notes, written=manifest)
        _write_notes(notes)
    return sent


def import_inbox(party: Party, *, collect: bool = True, render: Renderer | None = None,
                 progress: PartyProgress | None = None) -> ImportReport:
    """Collect from our own drop folder, import every package in the inbox, send the receipts.

    Holds the home's run lock throughout. One package's failure never stops the others; the
    report says what happened to each (`ImportReport.ok` is False when anything needs a look:
    a collection failure, a quarantined package, a receipt that did not apply or was not sent).
    """
    party.home.require()
    party.home.ensure()
    with RunLock(party.home.run_lock, clock=party.clock):
        return import_held(party, collect=collect, render=render, progress=progress)


def import_held(party: Party, *, collect: bool = True, render: Renderer | None = None,
                progress: PartyProgress | None = None,
                prefetch: Callable[[list[str]], None] | None = None,
                background: BackgroundCollect | None = None) -> ImportReport:
    """`import_inbox` for a caller that already holds the home's run lock (the nightly run).
    `progress` is told of each file collected and each receipt sent, as it goes. `prefetch`, if
    given, is told (once, before the import) the senders whose sub-folders something was collected
    from: the partners the receipts will most likely go to, so the nightly run can start those
    connections in the background while the packages are verified and filed. It is a hint only:
    receipts go to whoever the verified packages say, connecting then if need be.

    `background`: our drop folder is collected by that child process (`exchange.background`), and
    each batch is imported as it comes, while the next is fetched; then whatever else the inbox
    holds, as without it. The ledger hears the same things in the same order: a batch's
    `collect.fetched`, then its imports."""
    home = party.home
    report = ImportReport()
    folders: dict[str, str | None] = {}
    done_index = _Filed(home)
    outgoing: list[_Outgoing] = []
    imported: set[str] = set()  # inbox names already imported from a batch (a failed one stays for next run)

    def note(results: list[PartyResult]) -> None:
        for r in results:
            for f in r.files:
                if f.error is None:
                    folders[f.local or f.name] = f.sender

    def hint() -> None:
        senders = sorted({s for s in folders.values() if s is not None})
        if prefetch is not None and senders:
            prefetch(senders)

    if collect:
        me = party.keystore.ring().party
        try:
            party.transports.resolver.resolve(me)
        except ConfigError as exc:
            report.collected = [PartyResult(me, error=ConfigError(
                f"no drop folder of our own ({me}) to collect from", code="endpoint.missing",
                hint="publish it (`laxchange keys export-card --sftp-url URL --host-key-fingerprint SHA256:...`) "
                     f"or set it (`laxchange endpoints add {me} URL ...`); `laxchange import --no-collect` "
                     "imports only what is already in the inbox", details={"cause": exc.message}))]
        else:
            if background is None:
                report.collected = party.collect([me], progress=progress)
            else:
                report.collected = [_import_as_collected(party, background, folders, note, hint, render,
                                                         outgoing, done_index, imported, report, progress)]
    note(report.collected)
    if background is None:
        hint()
    # every file the inbox holds, by name, not only *.lax: a file that is no package (a record sent
    # in plain text by mistake) is quarantined and reported like any refused package, never left
    # unmentioned in the inbox (hidden names are transfers' temporary files)
    paths = [home.inbox / n for n in sorted(p.name for p in home.inbox.iterdir()
                                            if p.is_file() and not p.name.startswith("."))
             if n not in imported] if home.inbox.is_dir() else []
    report.add(_import_all(party, paths, folders, render, outgoing, done_index))
    root = received_root(home)
    for d in sorted(root.glob(f"{STAGING}*")) if root.is_dir() else []:
        with contextlib.suppress(OSError):  # empty (stopped before anything was written into it): it holds nothing
            d.rmdir()
            continue
        report.warnings.append(f"an interrupted import left {d}; it may hold the only copy of a record: "
                               "keep it (do not delete it) and report it")
    report.add(_finish_quarantines(party, report))
    report.receipts_sent = _send_receipts(party, [*outgoing, *_owed(party, done_index), *_owed_rejections(party)],
                                          progress)
    root = received_root(home)
    for name, (manifest, doc) in done_index.fresh.items():  # as the import left them: the notes are written
        report.fresh[name] = ([file_signature(root / name / MANIFEST), file_signature(root / name / RECORD_JSON)],
                              manifest, doc)
    counts = report.counts()
    log_event(_log, "import.finished", logging.INFO if report.ok else logging.WARNING,
              imported=counts.get("imported", 0) + counts.get("receipt", 0), duplicates=counts.get("duplicate", 0),
              quarantined=counts.get("quarantined", 0), failed=counts.get("failed", 0),
              receipts=sum(1 for r in report.receipts_sent if r.error is None))
    return report


def _finish_quarantines(party: Party, report: ImportReport) -> list[ImportItem]:
    """`Party.finish_quarantines`, each reported as the open that was stopped would have reported it
    (a package refused: it needs a look), so its rejection is then owed as any other's. A repair at
    the end of a night's import: if it fails, the import's receipts still go, with a warning."""
    try:
        finished = party.finish_quarantines()
    except (LaxError, OSError) as exc:
        report.warnings.append(f"quarantines an interrupted open left unrecorded could not be looked for "
                               f"({getattr(exc, 'code', None) or type(exc).__name__}); the next import tries again")
        return []
    items = []
    for q in finished:
        r = q.record
        reason = str(r["reason"])
        kind = {"InvalidData": InvalidData, "UsageError": UsageError}.get(str(r.get("kind")), SecurityError)
        error = kind(f"package refused ({reason}) and moved to quarantine as {q.path.name} by an open that "
                     "was stopped before recording it; recorded now", code=reason,
                     hint="`laxchange quarantine list` says why; `laxchange quarantine release NAME` puts it "
                          "back to be checked again")
        items.append(ImportItem(q.path.name, "quarantined", transfer_id=str(r["transfer_id"]),
                                sender=str(r["sender"]), error=error))
    return items


def _import_as_collected(party: Party, background: BackgroundCollect, folders: dict[str, str | None],
                         note: Callable[[list[PartyResult]], None], hint: Callable[[], None],
                         render: Renderer | None, outgoing: list[_Outgoing], done_index: _Filed,
                         imported: set[str], report: ImportReport,
                         progress: PartyProgress | None) -> PartyResult:
    """`import_held`'s import of each batch `background` collects, as it comes; the collection's result."""
    me = background.party
    background.start()
    first = True
    for files in background.batches():
        got = PartyResult(me, files=files)
        party.note_collected([got])  # the audit log's `collect.fetched`, before the imports, as ever
        note([got])
        if first:
            hint()
            first = False
        paths = []
        for f in files:
            if f.error is None:
                name = f.local or f.name
                if progress is not None:
                    progress(me, f.name, f.size, f.size)
                paths.append(party.home.inbox / name)
                imported.add(name)
        ahead = {p.name: background.verified.pop(p.name) for p in paths if p.name in background.verified}
        report.add(_import_all(party, sorted(p for p in paths if p.is_file()), folders, render, outgoing, done_index,
                               ahead))
    result = background.result or PartyResult(me)
    if result.error is not None:  # the end of the collection (the files were noted batch by batch)
        party.note_collected([PartyResult(me, error=result.error)])
    return result


def send_applied(party: Party, transfer_id: str, sender: str | None = None) -> SentReceipt:
    """Send the second, `applied` receipt for an imported transfer: the record is in our MIS. Asked
    again once it is sent, this sends nothing and says so (`already_sent`): what the Designated
    Teacher asked for is true, so a script that runs it after every MIS import need not care."""
    with RunLock(party.home.run_lock, clock=party.clock):
        found = find_received(party.home, transfer_id, sender)
        m = found.manifest
        if str(m.get("schema", "")).startswith("receipt@"):
            raise UsageError(f"transfer {transfer_id} is a receipt; receipts are never acknowledged",
                             code="receipt.of-receipt", hint="name the transfer id of the record you imported")
        to = str(m["sender"])
        done = _applied_sent(m)
        if done is not None:
            return SentReceipt(to, transfer_id, "applied", str(done.get("status", "")),
                               str(done["transfer_id"]), already_sent=True)
        # packed before but not sent (the partner was down): `_send_receipts` sends that file, not a second
        sent = [r for r in _send_receipts(party, [_Outgoing(to, transfer_id, str(m["payload_sha256"]),
                                                            stage="applied", folder=found.path)])
                if r.in_reply_to == transfer_id and r.stage == "applied"]
        if not sent:  # the file was sent by an earlier run that died before the manifest said so
            done = _applied_sent(find_received(party.home, transfer_id, to).manifest)
            return SentReceipt(to, transfer_id, "applied", str((done or {}).get("status", "accepted")),
                               str(done["transfer_id"]) if done else None, already_sent=True)
    return sent[-1]


def _applied_sent(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The received folder's entry for its applied receipt, if one was sent."""
    for e in manifest.get("receipts", []):
        if isinstance(e, dict) and e.get("stage") == "applied" and e.get("transfer_id") and e.get("sent"):
            return e
    return None
