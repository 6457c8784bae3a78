"""The laxchange package: one file per transfer and recipient, signed then encrypted.

    LAXCHANGE/1\\n
    <manifest: a DSSE envelope as one line of canonical JSON>\\n
    <age v1 file, encrypted to the recipient's key>

The manifest (cleartext, signed, no personal data) routes the file and commits to the size and
SHA-256 of the age payload. The age plaintext is a DSSE envelope (one line) whose signed
statement binds sender, recipient, transfer id, created/expires and the message schema, then
the bytes of any attachments. docs/format.md is the specification.

Opening checks, in order: format line, manifest signature, addressee, sender keys, expiry,
replay, payload hash, decryption, inner signature, binding, attachments, schema validation.
Only verified bytes are parsed, and nothing is written until every check has passed.
Archive verification (`open_package(archive=True)`, docs/format.md §6.1) asks instead whether
the package was genuinely sent by that party to us at its `created` time with keys valid then.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import re
import shutil
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol

import orjson

from laxchange import age, dsse
from laxchange._util import jsonio, timefmt
from laxchange._util.fs import Spool, check_output, digest_stream, open_regular, write_new
from laxchange.clock import Clock, FixedClock
from laxchange.errors import InvalidData, LaxError, SecurityError, UsageError
from laxchange.models import schemastore
from laxchange.models.messages import CHECKPOINT_MAX
from laxchange.trust import Partner, PartnerAsOf, PartnerDirectory
from laxchange.trust.keystore import SIGNING, KeyStore
from laxchange.validate import validate_document

FORMAT_LINE = b"LAXCHANGE/1\n"
FORMAT = "laxchange/1"
MANIFEST_PAYLOAD_TYPE = "application/vnd.laxchange.manifest+json; version=1"
STATEMENT_TYPE = "https://laxchange.example/statement/v1"
MAX_MANIFEST_BYTES = 64 * 1024
MAX_STATEMENT_BYTES = 16 * 1024 * 1024
MAX_RECORD_BYTES = 8 * 1024 * 1024
MAX_ATTACHMENTS = 64
DEFAULT_EXPIRES_IN = dt.timedelta(days=30)
MAX_EXPIRES_IN = dt.timedelta(days=366)
CLOCK_SKEW = dt.timedelta(minutes=5)
_SPOOL = 4 * 1024 * 1024
_COPY = 256 * 1024

MANIFEST_FIELDS = {"format", "transfer_id", "sender", "recipient", "created", "expires", "sender_key_ids",
                   "recipient_key_id", "encryption", "payload_size", "payload_sha256"}
STATEMENT_FIELDS = {"_type", "transfer_id", "sender", "recipient", "created", "expires", "schema",
                    "message_type", "schema_version", "document", "attachments"}
#: Format 1.1 (docs/format.md §4.1): the statement may also carry `checkpoint`, the sender's latest signed
#: checkpoint of its audit log. Written only to a partner whose card reads 1.1: a 1.0 reader refuses the member.
CHECKPOINT_FORMAT = "1.1"
OPTIONAL_STATEMENT_FIELDS = {"checkpoint"}
#: What archive verification reports without refusing (docs/format.md §6.1), in `Opened.warnings`.
ARCHIVE_WARNING_CODES = ("archive.revoked-later", "archive.partner-removed")
_ATTACHMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_TRANSFER_ID = re.compile(r"[0-9a-f]{32}")
_KEY_ID = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: The manifest's `encryption` and the one age stanza type it names (docs/format.md §5).
STANZA_TYPES = {"age-v1/mlkem768x25519": "mlkem768x25519", "age-v1/x25519": "X25519"}


def payload_type_for(name: str, version: str) -> str:
    """The DSSE payloadType naming a message schema and version."""
    return f"application/vnd.laxchange.{name}+json; version={version}"


class Reserve(Protocol):
    """Take the transfer in `manifest` for this open, or raise (a SecurityError: replayed).

    Called once the manifest's signature, addressee, sender and expiry have been checked, and
    before anything is decrypted or written; `exchange.Party.open` reserves it in the ledger."""

    def __call__(self, manifest: Manifest, /) -> None: ...


class SeenCheck(Protocol):
    """Has `sender` already delivered `transfer_id`? Keyed on both, so one partner cannot
    pre-empt another's (cleartext) transfer id and get the genuine package refused."""

    def __call__(self, transfer_id: str, sender: str) -> bool: ...


@dataclass(frozen=True)
class Manifest:
    format: str
    transfer_id: str
    sender: str
    recipient: str
    created: str
    expires: str
    sender_key_ids: list[str]
    recipient_key_id: str
    encryption: str
    payload_size: int
    payload_sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in sorted(MANIFEST_FIELDS)}


@dataclass
class PackResult:
    manifest: Manifest
    path: Path | None = None
    schema: str = ""  # name@version of the packed document


@dataclass
class Opened:
    document: dict[str, Any]
    manifest: Manifest
    schema: str
    attachments: list[dict[str, Any]] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    #: What was found and not refused (`code`, `message`): archive verification's (ARCHIVE_WARNING_CODES), and
    #: `exchange.Party.open`'s about the statement's checkpoint.
    warnings: list[dict[str, Any]] = field(default_factory=list)
    #: The sender's signed audit-log checkpoint the statement carried (format 1.1), unverified here:
    #: `exchange.Party.open` checks it against the sender's card and keeps it.
    checkpoint: str | None = None


#: The largest package `verify_package` verifies ahead (bytes): a receipt or a record without
#: attachments is a few kilobytes; a larger one is opened in full where it is imported.
MAX_VERIFIED_AHEAD = 1024 * 1024


@dataclass(frozen=True)
class Verified:
    """A package verified and decrypted in memory ahead of its import (`verify_package`), by another
    process of ours: the SHA-256 of the file's bytes it verified, and what opening them gave. Given
    to `open_package(verified=...)` for a file with exactly those bytes, it stands for the
    signature checks, the decryption and the validation; every check that depends on the ledger
    or the time (expiry, replay, the reservation) is made again, and the record written, there."""

    package_sha256: str
    opened: Opened


def verify_package(path: str | os.PathLike[str], *, keystore: KeyStore, directory: PartnerDirectory,
                   clock: Clock | None = None) -> Verified | None:
    """Verify, decrypt and validate the package at `path` in memory, writing nothing and touching no
    ledger, for `open_package(verified=...)` in another process (the nightly run's collecting child
    does this for the importing parent). None if the package is larger than `MAX_VERIFIED_AHEAD`,
    has attachments, is encrypted to a key not already unlocked here (nothing is ever prompted for),
    or fails any check: its import then opens it in full and refuses it as ever."""
    try:
        with open_regular(path, what="package", error=UsageError) as fh:
            data = fh.read(MAX_VERIFIED_AHEAD + 1)
        if len(data) > MAX_VERIFIED_AHEAD:
            return None
        manifest, _ = read_manifest(io.BytesIO(data))
        if not keystore.is_unlocked(manifest.recipient_key_id):
            return None
        opened = open_package(io.BytesIO(data), keystore=keystore, directory=directory, clock=clock)
    except LaxError:
        return None
    if opened.attachments or opened.warnings:
        return None
    return Verified(hashlib.sha256(data).hexdigest(), opened)


def _reject(code: str, message: str, hint: str | None = None) -> SecurityError:
    return SecurityError(f"package rejected: {message}", code=code,
                         hint=hint or "do not use this file; quarantine it and contact the sender")


# --- packing ---------------------------------------------------------------------------------


class _Chain:
    """A read-only stream over bytes (the statement, in pieces) then a series of files
    (attachments), each read as described (exactly its size, checked against its SHA-256).

    `read` gives up to `size` bytes of the current part: of the bytes, a memoryview of them (the
    STREAM encryptor takes it as it is: no copy); of a file, what the file gives."""

    def __init__(self, head: Sequence[bytes], files: Sequence[Path], described: Sequence[dict[str, Any]]) -> None:
        self._head = [memoryview(b) for b in head if b]
        self._files = list(zip(files, described, strict=True))
        self._cur: _AsDescribed | None = None

    def read(self, size: int = -1, /) -> bytes | memoryview:
        if self._head:
            part = self._head[0]
            if size < 0 or size >= len(part):
                return self._head.pop(0)
            self._head[0] = part[size:]
            return part[:size]
        while self._files or self._cur is not None:
            if self._cur is None:
                self._cur = _AsDescribed(*self._files.pop(0))
            data = self._cur.read(size)
            if data:
                return data
            self._cur.close()
            self._cur = None
        return b""

    def close(self) -> None:
        if self._cur is not None:
            self._cur.close()
            self._cur = None
        self._head, self._files = [], []

    def __enter__(self) -> _Chain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _AsDescribed(io.RawIOBase):
    """An attachment's bytes, which must be the bytes described when packing began: a file that
    grows, shrinks or changes meanwhile is refused (its signed size and hash would be wrong)."""

    def __init__(self, path: Path, desc: dict[str, Any]) -> None:
        self.path, self.desc = path, desc
        self.fh = _open_attachment(path)
        self.left: int = desc["size"]
        self.h = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.left == 0:
            if self.fh.read(1) or self.h.hexdigest() != self.desc["sha256"]:
                raise UsageError(f"attachment {self.path} changed while it was being packed",
                                 code="attachment.changed", hint="pack again once nothing is writing to the file")
            return b""
        data = self.fh.read(self.left if size < 0 else min(size, self.left))
        if not data:
            raise UsageError(f"attachment {self.path} shrank while it was being packed", code="attachment.changed",
                             hint="pack again once nothing is writing to the file")
        self.h.update(data)
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.fh.close()
        super().close()


def _open_attachment(path: Path) -> io.BufferedReader:
    """An attachment: a regular file named directly (a symbolic link is refused, not followed)."""
    return open_regular(path, what="attachment", follow_symlinks=False, error=UsageError)


def wire_attachment_names(names: Sequence[str]) -> list[str]:
    """Names a package can carry for attachments called `names` (e.g. "Signed PEP (v2).pdf").

    The statement's rule (letters, digits, dot, dash, underscore; starting with a letter or digit;
    at most 128; unique ignoring case): accents are dropped, every other run of characters becomes
    one `_`, the extension is kept when the name is shortened, and a clash gets `-2`, `-3`, ….
    A name that already obeys the rule is kept as it is.
    """
    out: list[str] = []
    taken: set[str] = set()
    for i, name in enumerate(names):
        ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_name).lstrip("._-") or f"attachment-{i + 1}"
        stem, dot, ext = safe.rpartition(".")
        if not dot or not stem or len(ext) > 16:
            stem, dot, ext = safe, "", ""
        ext = dot + ext
        candidate, n = (stem[:128 - len(ext)].rstrip("._-") or "attachment") + ext, 1
        while candidate.lower() in taken:
            n += 1
            suffix = f"-{n}{ext}"
            candidate = stem[:128 - len(suffix)].rstrip("._-") + suffix
        taken.add(candidate.lower())
        out.append(candidate)
    return out


def _describe_attachments(paths: Sequence[Path], names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    if len(paths) > MAX_ATTACHMENTS:
        raise UsageError(f"at most {MAX_ATTACHMENTS} attachments per package", code="attachments.too-many")
    if names is not None and len(names) != len(paths):
        raise UsageError("give one attachment name per attachment", code="attachment.name")
    out = []
    seen = set()
    for i, p in enumerate(paths):
        name = p.name if names is None else names[i]
        if not _ATTACHMENT_NAME.fullmatch(name) or name.lower() in seen:
            raise UsageError(f"attachment name {name!r} is not a plain unique file name", code="attachment.name",
                             hint="rename it to letters, digits, dot, dash, underscore")
        seen.add(name.lower())
        with _open_attachment(p) as fh:
            digest, size = digest_stream(fh)
        out.append({"index": i, "name": name, "size": size, "sha256": digest})
    return out


def _validate(doc: Any, message_type: str, clock: Clock, source: str) -> tuple[str, str]:
    report = validate_document(doc, expected_type=message_type, source=source, clock=clock)
    if not report.ok:
        errs = report.errors
        first = errs[0] if errs else None
        msg = f"{source} is not a valid {message_type}: " + (f"{first.path}: {first.message}" if first else "invalid")
        raise InvalidData(msg, code="record.invalid",
                          hint=(first.hint if first else None) or "run `laxchange validate`",
                          details={"errors": [e.to_dict() for e in errs]})
    return schemastore.identify(doc, source)


#: orjson hands subclasses of str/int/dict/list, datetimes and dataclasses to `default` (absent:
#: an error) instead of writing them its own way; the standard library writes or refuses those.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_ORJSON_SCALARS = frozenset((str, int, bool, type(None)))


def _orjson_writes_as_stdlib(obj: Any) -> bool:
    """Does orjson write `obj` (which it has just written) byte for byte as jsonio.dumps_compact?

    Strings, integers (orjson refuses beyond 64 bits), true/false/null, objects and arrays it
    writes alike (tests/unit/test_package_json.py). Not alike: floats the standard library writes
    with an exponent (|x| < 1e-4 or >= 1e16: `1e-05` against `0.00001`), NaN and infinities
    (refused against `null`), and the types orjson writes natively where the standard library
    refuses them (UUID, Enum). Any of those, and the standard library writes the statement."""
    stack = [obj]
    while stack:
        node = stack.pop()
        for v in (node.values() if type(node) is dict else node):
            t = type(v)
            if t in _ORJSON_SCALARS:
                continue
            if t is dict or t is list or t is tuple:
                stack.append(v)
            elif t is not float or not (v == 0.0 or 1e-4 <= abs(v) < 1e16):
                return False
    return True


def compact_json(obj: Any) -> bytes:
    """`jsonio.dumps_compact(obj)`, the same bytes, about ten times faster: orjson when it writes
    them alike (`_orjson_writes_as_stdlib`), else the standard library (which also raises what it
    raises). A 1 MB statement took 3.4 ms to encode, more than signing it."""
    if type(obj) is dict or type(obj) is list:
        try:
            out = orjson.dumps(obj, option=_ORJSON_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError: too deep, a cycle, a big integer, a key or type it refuses
            pass
        else:
            if _orjson_writes_as_stdlib(obj):
                return out
    return jsonio.dumps_compact(obj)


def pretty_json(obj: Any) -> bytes:
    """`jsonio.dumps_pretty(obj)` as UTF-8, the same bytes, several times faster: orjson's two-space
    indent when it writes them alike (`_orjson_writes_as_stdlib`: the same values as compact), else
    the standard library (which also raises what it raises). A received record.json took 1.3 ms of
    a PEP's 4 ms open; the standard library's indenting encoder is pure Python."""
    if type(obj) is dict or type(obj) is list:
        try:
            out = orjson.dumps(obj, option=_ORJSON_OPTIONS | orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
        except TypeError:  # orjson.JSONEncodeError: too deep, a cycle, a big integer, a key or type it refuses
            pass
        else:
            if _orjson_writes_as_stdlib(obj):
                return out
    return jsonio.dumps_pretty(obj).encode("utf-8")


def pack(
    document: Any,
    *,
    message_type: str,
    recipient: str,
    keystore: KeyStore,
    directory: PartnerDirectory,
    out: str | os.PathLike[str] | BinaryIO,
    clock: Clock | None = None,
    expires_in: dt.timedelta = DEFAULT_EXPIRES_IN,
    attachments: Sequence[str | os.PathLike[str]] = (),
    random: Callable[[int], bytes] = os.urandom,
    validate: bool = True,
    overwrite: bool = False,
    attachment_names: Sequence[str] | None = None,
    checkpoint: str | None = None,
) -> PackResult:
    """Validate `document`, sign it, encrypt it to `recipient`, write the package to `out`.

    `out` is a path (written atomically) or a binary stream. An existing `out` is refused unless
    `overwrite`; an attachment is never written over, even then. `validate=False` is for benchmarks
    and for a caller that has just validated `document` as `message_type` with the same clock.
    `attachment_names` are the names the attachments carry in the package (default: each file's
    own name), for files whose real names break the rule (`wire_attachment_names` makes them).
    `checkpoint` is a signed checkpoint of our audit log for the statement (format 1.1, §4.1): only
    for a recipient whose card reads it (`exchange.Party.pack` decides)."""
    clock = clock or keystore.clock
    if isinstance(out, (str, os.PathLike)):
        check_output(out, inputs=attachments, overwrite=overwrite, what="package file")
    names = {sf.name for sf in schemastore.list_schemas()} - {"common"}
    if schemastore.parse_ref(message_type)[0] not in names:
        known = sorted(names)
        raise UsageError(f"unknown message type {message_type!r}", code="type.unknown",
                         hint=f"use one of: {', '.join(known)}")
    if not dt.timedelta(minutes=1) <= expires_in <= MAX_EXPIRES_IN:
        raise UsageError("expiry must be between one minute and 366 days", code="expires.range")
    if validate:
        name, version = _validate(document, message_type, clock, "record")
    else:
        name, version = schemastore.identify(document, "record")
    ring = keystore.ring()
    partner = directory.get(recipient)
    now = clock.now()
    enc_key = partner.encryption_key_at(now)
    signers = keystore.signers(now)
    att_paths = [Path(a) for a in attachments]
    att = (_describe_attachments(att_paths) if attachment_names is None
           else _describe_attachments(att_paths, attachment_names))
    transfer_id = random(16).hex()
    created, expires = timefmt.fmt(now), timefmt.fmt(now + expires_in)
    statement = {
        "_type": STATEMENT_TYPE, "transfer_id": transfer_id, "sender": ring.party, "recipient": partner.party,
        "created": created, "expires": expires, "schema": document["schema"], "message_type": name,
        "schema_version": version, "document": document, "attachments": att,
    }
    if checkpoint is not None:
        if not isinstance(checkpoint, str) or len(checkpoint.encode()) > CHECKPOINT_MAX:
            raise UsageError(f"a statement's checkpoint is a signed note of at most {CHECKPOINT_MAX} bytes",
                             code="usage.invalid")
        statement["checkpoint"] = checkpoint
    # Compact, key order kept (not sorted): the receiver gets the record's members in the order
    # the sender wrote them. DSSE signs these exact bytes, so no canonical form is needed.
    body = compact_json(statement)
    inner = dsse.sign(payload_type_for(name, version), body, signers)
    head = [*inner.json_parts(), b"\n"]  # the statement line, in pieces (never joined: see _Chain)
    head_size = sum(map(len, head))
    if head_size > MAX_STATEMENT_BYTES:
        raise InvalidData(f"record is too large to pack ({head_size} bytes signed)", code="record.too-large")
    h = hashlib.sha256()
    size = 0

    def count(b: bytes) -> None:
        nonlocal size
        h.update(b)
        size += len(b)

    target_dir = Path(out).parent if isinstance(out, (str, os.PathLike)) else None
    # The manifest (written first) commits to the encrypted payload's size and hash, so the
    # payload is spooled: in memory up to _SPOOL, beyond that in a 0600 file next to the output.
    with Spool(_SPOOL, dir=target_dir) as spool, _Chain(head, att_paths, att) as plain_in:
        age.encrypt([enc_key.recipient()], plain_in, spool, random=random, on_bytes=count)
        manifest = Manifest(FORMAT, transfer_id, ring.party, partner.party, created, expires,
                            [s.keyid for s in signers], enc_key.kid, f"age-v1/{enc_key.alg}", size, h.hexdigest())
        menv = dsse.sign(MANIFEST_PAYLOAD_TYPE, jsonio.dumps_canonical(manifest.to_dict()), signers)
        prefix = FORMAT_LINE + menv.to_json() + b"\n"
        if not isinstance(out, (str, os.PathLike)):  # i.e. target_dir is None: `out` is a stream
            out.write(prefix)
            spool.copy_to(out)
            return PackResult(manifest, schema=f"{name}@{version}")
        path = Path(out)
        with jsonio.open_atomic(path) as fh:
            fh.write(prefix)
            spool.copy_to(fh)
        return PackResult(manifest, path, f"{name}@{version}")


def _write_stream_atomic(path: Path, prefix: bytes, body: Any, mode: int = 0o600) -> None:
    with jsonio.open_atomic(path, mode=mode) as fh:
        fh.write(prefix)
        shutil.copyfileobj(body, fh, _COPY)


# --- reading the manifest ---------------------------------------------------------------------


def _read_line(src: BinaryIO, limit: int, what: str) -> bytes:
    line = src.readline(limit + 1)
    if not line.endswith(b"\n") or len(line) > limit:
        raise _reject("package.tampered", f"{what} is truncated or too long")
    return line[:-1]


def read_manifest(src: BinaryIO) -> tuple[Manifest, dsse.Envelope]:
    """Parse the format line and the manifest envelope (no signature check), strictly."""
    first = src.readline(len(FORMAT_LINE) + 16)
    if first != FORMAT_LINE:
        if re.fullmatch(rb"LAXCHANGE/[0-9]{1,4}\n", first):
            raise _reject("package.wrong-format-version",
                          f"format {first.strip().decode()} is not supported (this laxchange reads LAXCHANGE/1)",
                          "upgrade laxchange, or ask the sender to send format 1")
        raise UsageError("not a laxchange package: it does not begin with the line LAXCHANGE/1",
                         code="package.not-a-package",
                         hint="name a .lax file made by `laxchange pack`; to check a plain JSON record use "
                              "`laxchange validate FILE`")
    raw = _read_line(src, MAX_MANIFEST_BYTES, "manifest")
    try:
        env = dsse.parse_canonical(raw)
        if env is None:  # not what laxchange writes: the general path says what is wrong
            env = dsse.parse(jsonio.loads_strict(raw, source="manifest", max_bytes=MAX_MANIFEST_BYTES))
            if env.to_json() != raw:
                raise ValueError("manifest envelope is not canonical JSON")
        if env.payload_type != MANIFEST_PAYLOAD_TYPE:
            raise ValueError(f"unexpected manifest payloadType {env.payload_type!r}")
        # Canonical, as laxchange writes it: parsed and checked at once. Else parsed strictly, then checked.
        m = jsonio.loads_canonical(env.payload, MAX_MANIFEST_BYTES)
        canonical = m is not None
        if not canonical:
            m = jsonio.loads_strict(env.payload, source="manifest payload", max_bytes=MAX_MANIFEST_BYTES)
        if not isinstance(m, dict) or set(m) != MANIFEST_FIELDS:
            raise ValueError("manifest fields are wrong")
        if m["format"] != FORMAT:
            raise _reject("package.wrong-format-version", f"manifest format {m['format']!r} is not supported")
        if not canonical and not jsonio.is_canonical(m, env.payload):
            raise ValueError("manifest payload is not canonical JSON")
        manifest = Manifest(**m)
        _check_manifest_types(manifest)
        if [kid for kid, _ in env.signatures] != manifest.sender_key_ids:
            raise ValueError("sender_key_ids must list the key ids of the manifest's signatures, in their order")
    except SecurityError:
        raise
    except (InvalidData, dsse.DSSEError, ValueError, TypeError) as exc:
        msg = exc.message if isinstance(exc, InvalidData) else str(exc)
        raise _reject("package.tampered", f"manifest is malformed ({msg})") from None
    return manifest, env


def peek_manifest(path: str | os.PathLike[str]) -> Manifest | None:
    """A file's routing manifest, UNVERIFIED, or None if it is not a readable package.

    For naming and de-duplicating files before they are opened; never for a trust decision.
    """
    try:
        with open_regular(path, what="package", error=UsageError) as fh:
            if fh.read(len(FORMAT_LINE)) != FORMAT_LINE:
                return None
            fh.seek(0)
            m, _ = read_manifest(fh)
    except (OSError, LaxError, ValueError):
        return None
    return m


def _check_manifest_types(m: Manifest) -> None:
    if not isinstance(m.transfer_id, str) or not _TRANSFER_ID.fullmatch(m.transfer_id):
        raise ValueError("transfer_id must be 32 lower-case hex digits")
    for name in ("sender", "recipient", "recipient_key_id", "encryption", "payload_sha256"):
        if not isinstance(getattr(m, name), str):
            raise ValueError(f"{name} must be a string")
    if not _KEY_ID.fullmatch(m.recipient_key_id):
        raise ValueError("recipient_key_id must be 32 lower-case hex digits")
    if m.encryption not in STANZA_TYPES:
        raise ValueError(f"encryption must be one of {', '.join(sorted(STANZA_TYPES))}")
    created, expires = timefmt.parse(m.created), timefmt.parse(m.expires)
    if not created < expires <= created + MAX_EXPIRES_IN:
        raise ValueError("expires must follow created by at most 366 days")
    if not isinstance(m.payload_size, int) or isinstance(m.payload_size, bool) or m.payload_size < 0:
        raise ValueError("payload_size must be a non-negative integer")
    if not _SHA256.fullmatch(m.payload_sha256):
        raise ValueError("payload_sha256 must be 64 lower-case hex digits")
    if not isinstance(m.sender_key_ids, list) or not all(isinstance(k, str) and _KEY_ID.fullmatch(k)
                                                         for k in m.sender_key_ids):
        raise ValueError("sender_key_ids must be a list of key ids (32 lower-case hex digits each)")


def inspect(source: str | os.PathLike[str] | BinaryIO, directory: PartnerDirectory | None = None,
            clock: Clock | None = None) -> dict[str, Any]:
    """The manifest of a package, without decrypting. With `directory`, also check its signature."""
    with _opened(source) as src:
        manifest, env = read_manifest(src)
    out: dict[str, Any] = {"manifest": manifest.to_dict(), "signature": "not checked"}
    if directory is not None:
        sender = directory.get_optional(manifest.sender)
        if sender is None:
            out["signature"] = "unknown sender"
        else:
            try:
                _verify_sender(env, sender, manifest, (clock or directory.clock).now(), "manifest")
                out["signature"] = "valid"
            except SecurityError as exc:
                out["signature"] = f"invalid: {exc.code}"
    return out


class _opened:
    def __init__(self, source: str | os.PathLike[str] | BinaryIO) -> None:
        self.source = source
        self.fh: BinaryIO | None = None

    def __enter__(self) -> BinaryIO:
        if isinstance(self.source, (str, os.PathLike)):
            self.fh = open_regular(self.source, what="package", error=UsageError)
            return self.fh
        return self.source

    def __exit__(self, *exc: Any) -> None:
        if self.fh is not None:
            self.fh.close()


# --- opening ---------------------------------------------------------------------------------


def _verify_sender(env: dsse.Envelope, sender: Partner, manifest: Manifest, now: dt.datetime, what: str) -> None:
    """Every algorithm the sender's policy requires must carry a good signature by a sender key
    that was valid when the package was created and has not been revoked since."""
    keys = {k.kid: k for k in sender.keys if k.use == SIGNING}
    known = {kid: keys[kid].dsse_key() for kid, _ in env.signatures if kid in keys}
    good = dsse.verify(env, known)
    if not good:
        raise _reject("package.bad-signature", f"the {what} signature does not verify with any key of {sender.party}")
    if len(good) != len(known):  # a key id we hold for the sender whose signature is wrong: altered, not unknown
        bad = sorted(set(known) - {pk.keyid for pk in good})
        raise _reject("package.bad-signature", f"the {what}'s signature by key {bad[0]} of {sender.party} does not "
                                               "verify")
    _check_key_status(sender, manifest, [pk.keyid for pk in good], now, what)
    missing = set(sender.required_signature_algorithms) - {k.alg for k in good}
    if missing:
        raise _reject("package.bad-signature", f"the {what} lacks a valid {', '.join(sorted(missing))} signature "
                      f"required by {sender.party}'s policy")


def _check_key_status(sender: Partner, manifest: Manifest, kids: Sequence[str], now: dt.datetime, what: str) -> None:
    """Each of the sender's signing keys `kids` was valid at `created` and is not revoked since
    (`_verify_sender`'s checks that need no signature: also made, against this process's
    directory, for a package verified ahead in another process)."""
    created = timefmt.parse(manifest.created)
    keys = {k.kid: k for k in sender.keys if k.use == SIGNING}
    for kid in kids:
        info = keys.get(kid)
        if info is None:
            raise _reject("package.bad-signature", f"the {what} is signed by key {kid}, not one of {sender.party}'s")
        if info.revoked_at is not None and timefmt.parse(info.revoked_at) <= max(now, created):
            raise _reject("package.revoked-key", f"the {what} was signed with key {info.kid} of {sender.party}, "
                          f"revoked at {info.revoked_at} ({info.revocation_reason})")
        status = info.status_at(created)
        if status != "valid":
            raise _reject("package.key-not-valid", f"the {what} was signed with key {info.kid} of {sender.party}, "
                          f"which was {status} at {manifest.created}")


def _archive_warnings(env: dsse.Envelope, view: PartnerAsOf, manifest: Manifest) -> list[dict[str, Any]]:
    """What archive verification reports about a package `_verify_sender` accepted as of `created`:
    each signing key revoked since (after `created`; one revoked at or before it was refused), and a
    sender no longer in the directory."""
    sender = view.partner
    keys = {k.kid: k for k in sender.keys if k.use == SIGNING}
    out: list[dict[str, Any]] = []
    for pk in dsse.verify(env, {kid: k.dsse_key() for kid, k in keys.items()}):
        info = keys[pk.keyid]
        if info.revoked_at is None:
            continue
        caution = (" A key revoked as compromised could also have signed a package dated before the revocation: "
                   "check the transfer against your own records of when it arrived."
                   if "compromise" in (info.revocation_reason or "") else "")
        out.append({"code": ARCHIVE_WARNING_CODES[0], "kid": info.kid, "alg": info.alg,
                    "revoked_at": info.revoked_at, "revocation_reason": info.revocation_reason,
                    "message": f"signing key {info.kid} ({info.alg}) of {sender.party} was revoked later, at "
                               f"{info.revoked_at} ({info.revocation_reason}), after the package was created at "
                               f"{manifest.created}; it was valid when it signed.{caution}"})
    if view.removed_at is not None:
        out.append({"code": ARCHIVE_WARNING_CODES[1], "removed_at": view.removed_at,
                    "message": f"{sender.party} was removed from the partner directory at {view.removed_at}; "
                               "verified against the card history kept since"})
    return out


def open_package(
    source: str | os.PathLike[str] | BinaryIO,
    *,
    keystore: KeyStore,
    directory: PartnerDirectory,
    clock: Clock | None = None,
    seen: SeenCheck | None = None,
    reserve: Reserve | None = None,
    out: str | os.PathLike[str] | None = None,
    attachments_dir: str | os.PathLike[str] | None = None,
    validate: bool = True,
    workdir: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    archive: bool = False,
    staged: bool = False,
    verified: Verified | None = None,
) -> Opened:
    """Verify and decrypt a package. Raises SecurityError (exit 3) with a specific `code`, or
    InvalidData (exit 1) when a genuine package carries an invalid record, UsageError
    (`package.not-a-package`, exit 2) for a file without the format line. `reserve` is called
    at the replay check (see `Reserve`). Writes `out` (the
    record, pretty JSON) and attachments only once everything has been verified. An existing
    `out` is refused unless `overwrite`, and the package itself never, before anything is read.

    `archive=True` is archive verification (docs/format.md §6.1), for a package kept for decades:
    was it genuinely sent by that party to us at its `created` time, with keys valid then? The
    sender's keys come from its whole card history (`PartnerDirectory.as_of`), removed or not;
    expiry and replay are not checked (so `seen` and `reserve` may not be given); a signing key
    revoked after `created` is reported in `Opened.warnings`, one revoked at or before it is
    refused; the record is validated as of `created`. Nothing here changes any state.

    `staged=True` says `out` is in a private folder the caller fsyncs and renames into place
    complete (an import's staging folder): the record is written under its own name, with no
    temporary file and no fsync of its own or of the folder; the caller fsyncs it with the
    folder's other files before that rename.

    `verified`: what `verify_package` found for these bytes in another process of ours. If the
    file's SHA-256 is the one it verified, its signatures, decryption and record are taken as
    verified there and every other check is made here as ever; otherwise (or in an archive
    verification) it is ignored and the package opened in full."""
    if archive and (seen is not None or reserve is not None):
        raise UsageError("archive verification does not check replays: give neither `seen` nor `reserve`",
                         code="usage.invalid")
    clock = clock or keystore.clock
    if out is not None:
        check_output(out, inputs=[source] if isinstance(source, (str, os.PathLike)) else [], overwrite=overwrite,
                     what="output file")
    now = clock.now()
    ring = keystore.ring()
    with _opened(source) as src:
        ahead = _verified_ahead(src, verified) if verified is not None and not archive else None
        manifest, menv = read_manifest(src)
        if ahead is not None and ahead.manifest != manifest:
            ahead = None
        if manifest.recipient != ring.party:
            raise _reject("package.not-addressed-to-us",
                          f"the package is addressed to {manifest.recipient}, not {ring.party}",
                          "it was delivered to the wrong party; return it to the sender")
        created, expires = timefmt.parse(manifest.created), timefmt.parse(manifest.expires)
        view: PartnerAsOf | None = None
        if archive:  # the sender as its card history knows it for `created`, removed or not
            view = directory.as_of(manifest.sender, created)
            sender = view.partner if view is not None else None
        else:
            sender = directory.get_optional(manifest.sender)
        if sender is None:
            raise _reject("package.unknown-sender", f"sender {manifest.sender} is not in the partner directory",
                          "add their card with `laxchange partners add CARD --fingerprint FPR` if you expect them")
        # Keys are judged as of `created` in an archive (a revocation after it does not refuse), else as of now.
        at = created if archive else now
        if ahead is None:
            _verify_sender(menv, sender, manifest, at, "manifest")
        else:  # verified elsewhere: its keys are still judged against our directory now
            _check_key_status(sender, manifest, manifest.sender_key_ids, at, "manifest")
        warnings = _archive_warnings(menv, view, manifest) if view is not None else []
        if created > now + CLOCK_SKEW:
            raise _reject("package.not-yet-valid",
                          f"the package claims to be created in the future ({manifest.created})",
                          "check this machine's clock and the sender's")
        if not archive and now >= expires:
            raise _reject("package.expired", f"the package expired at {manifest.expires}",
                          "ask the sender to send it again")
        if seen is not None and seen(manifest.transfer_id, manifest.sender):
            raise _reject("package.replayed", f"transfer {manifest.transfer_id} has already been received",
                          "this is a duplicate; nothing to do")
        if reserve is not None:
            reserve(manifest)
        our_key = ring.find_key(manifest.recipient_key_id)
        if our_key is not None and manifest.encryption != f"age-v1/{our_key.alg}":
            raise _reject("package.tampered", f"the manifest says {manifest.encryption}, but our key "
                                              f"{manifest.recipient_key_id} is {our_key.alg}")
        if ahead is not None:  # the same bytes were decrypted and verified ahead: write what they hold
            written = _deliver(ahead.document, [], io.BytesIO(), out, attachments_dir, overwrite, staged)
            return Opened(ahead.document, manifest, ahead.schema, [], written, checkpoint=ahead.checkpoint)
        try:
            identity = keystore.identity(manifest.recipient_key_id)
        except KeyError:
            raise _reject("package.not-addressed-to-us",
                          f"the package is encrypted to key {manifest.recipient_key_id}, "
                          "which is not one of ours", "ask the sender to refresh our card and send again") from None
        start = src.tell()
        if not _payload_matches(src, manifest):
            raise _reject("package.tampered", "the encrypted payload does not match the manifest's size and SHA-256")
        src.seek(start)
        # Decrypted bytes beyond the in-memory spool go to an unlinked 0600 file in our own
        # home (not the shared /tmp) unless the caller names a directory.
        home = getattr(keystore, "home", None)
        wd = Path(workdir) if workdir is not None else (home.root if home is not None else None)
        with Spool(_SPOOL, dir=wd) as spool:
            try:
                age.decrypt([identity], src, spool, only=STANZA_TYPES[manifest.encryption])
            except age.AgeError as exc:
                raise _reject("package.tampered", f"the payload failed decryption ({exc.kind}: {exc})") from None
            opened = _finish(spool, manifest, sender, ring.party, at, FixedClock(created) if archive else clock,
                             out, attachments_dir, validate, overwrite, staged)
            opened.warnings = warnings
            return opened


def _verified_ahead(src: BinaryIO, verified: Verified) -> Opened | None:
    """`verified.opened` if the package's bytes from here on are those it verified (their SHA-256),
    else None; either way `src` is left where it was."""
    start = src.tell()
    data = src.read(MAX_VERIFIED_AHEAD + 1)
    src.seek(start)
    if len(data) > MAX_VERIFIED_AHEAD or hashlib.sha256(data).hexdigest() != verified.package_sha256:
        return None
    return verified.opened


def _payload_matches(src: BinaryIO, manifest: Manifest) -> bool:
    """Do the bytes from here to the end have the manifest's size and SHA-256? (Reads at most one
    buffer beyond the size the manifest gives.)"""
    h = hashlib.sha256()
    size = 0
    chunks: Iterator[bytes | memoryview]
    if hasattr(src, "readinto"):  # into one reused buffer, not a new object per read
        view = memoryview(bytearray(min(_COPY, manifest.payload_size + 1)))  # +1: to see a byte too many
        chunks = (view[:n] for n in iter(lambda: src.readinto(view), 0))
    else:
        chunks = iter(lambda: src.read(_COPY), b"")
    for chunk in chunks:
        h.update(chunk)
        size += len(chunk)
        if size > manifest.payload_size:
            break
    return size == manifest.payload_size and h.hexdigest() == manifest.payload_sha256


def _statement_line(plain: Spool) -> tuple[bytes, int, BinaryIO]:
    """(bytes, end, rest): the statement envelope is bytes[:end], and `rest` is positioned at the
    attachments after its line. In memory, nothing is copied."""
    data = plain.getvalue()
    rest: BinaryIO
    if data is not None:
        end = data.find(b"\n", 0, MAX_STATEMENT_BYTES + 1)
        rest = io.BytesIO(data)
        rest.seek(end + 1)
    else:
        rest = plain.reader()
        data = rest.readline(MAX_STATEMENT_BYTES + 1)
        end = len(data) - 1 if data.endswith(b"\n") else -1
    if end < 0:
        raise _reject("package.tampered", "the signed statement is truncated or too large")
    return data, end, rest


def _finish(spool: Spool, manifest: Manifest, sender: Partner, us: str, now: dt.datetime, clock: Clock,
            out: str | os.PathLike[str] | None, attachments_dir: str | os.PathLike[str] | None,
            validate: bool, overwrite: bool, staged: bool = False) -> Opened:
    line, end, plain = _statement_line(spool)
    try:
        env = dsse.parse_canonical(line, end)
        if env is None:  # not what laxchange writes: say why, or refuse it as not canonical (§1.1)
            env = dsse.parse(jsonio.loads_strict(line[:end], source="statement envelope",
                                                 max_bytes=MAX_STATEMENT_BYTES))
            if env.to_json() != line[:end]:
                raise dsse.DSSEError("its envelope is not canonical JSON")
    except (InvalidData, dsse.DSSEError) as exc:
        raise _reject("package.tampered",
                      f"the signed statement is malformed ({getattr(exc, 'message', exc)})") from None
    _verify_sender(env, sender, manifest, now, "statement")
    if [kid for kid, _ in env.signatures] != manifest.sender_key_ids:
        raise _reject("package.tampered", "the signed statement's signatures are not by the keys the manifest lists")
    # Verified: from here on the bytes are the sender's own.
    st = jsonio.loads_verbatim(env.payload, source="signed statement", max_bytes=MAX_STATEMENT_BYTES)
    if not isinstance(st, dict) or not STATEMENT_FIELDS <= set(st) <= STATEMENT_FIELDS | OPTIONAL_STATEMENT_FIELDS \
            or st["_type"] != STATEMENT_TYPE:
        raise InvalidData("the signed statement has unexpected fields", code="statement.malformed",
                          hint="the sender's software produced a malformed package; tell them")
    note = st.get("checkpoint")
    if "checkpoint" in st and (not isinstance(note, str) or len(note.encode()) > CHECKPOINT_MAX):
        raise InvalidData(f"the signed statement's checkpoint is not a string of at most {CHECKPOINT_MAX} bytes",
                          code="statement.malformed", hint="the sender's software produced a malformed package; "
                                                           "tell them")
    for k in ("transfer_id", "sender", "recipient", "created", "expires"):
        if st[k] != getattr(manifest, k):
            raise _reject("package.tampered", f"the signed statement's {k} does not match the manifest")
    if st["recipient"] != us:
        raise _reject("package.not-addressed-to-us", f"the signed statement is addressed to {st['recipient']}")
    doc = st["document"]
    name, version = schemastore.identify(doc, "record")
    if (name, version) != (st["message_type"], st["schema_version"]) or st["schema"] != doc["schema"] \
            or env.payload_type != payload_type_for(name, version):
        raise _reject("package.tampered", "the payloadType, statement and record disagree about the schema")
    atts = st["attachments"]
    if not isinstance(atts, list) or len(atts) > MAX_ATTACHMENTS:
        raise InvalidData("attachments list is malformed", code="statement.malformed")
    for i, a in enumerate(atts):
        if not isinstance(a, dict) or set(a) != {"index", "name", "size", "sha256"} \
                or type(a["index"]) is not int or a["index"] != i \
                or not isinstance(a["name"], str) or not _ATTACHMENT_NAME.fullmatch(a["name"]) \
                or type(a["size"]) is not int or a["size"] < 0 \
                or not isinstance(a["sha256"], str) or not _SHA256.fullmatch(a["sha256"]):
            raise InvalidData(f"attachment {i} is described wrongly", code="statement.malformed")
    if len({a["name"].lower() for a in atts}) != len(atts):
        raise InvalidData("two attachments have the same name", code="statement.malformed",
                          hint="ask the sender to give each attachment its own name")
    # Attachments follow the statement; check them all before writing anything.
    att_start = plain.tell()
    for a in atts:
        h = hashlib.sha256()
        left = a["size"]
        while left:
            chunk = plain.read(min(left, _COPY))
            if not chunk:
                break
            h.update(chunk)
            left -= len(chunk)
        if left or h.hexdigest() != a["sha256"]:
            raise _reject("package.tampered", f"attachment {a['index']} does not match its signed size and SHA-256")
    if plain.read(1):
        raise _reject("package.tampered", "unexpected bytes after the attachments")
    if validate:
        _validate(doc, name, clock, "received record")
    if atts:
        plain.seek(att_start)
    written = _deliver(doc, atts, plain, out, attachments_dir, overwrite, staged)
    return Opened(doc, manifest, f"{name}@{version}", atts, written, checkpoint=note)


def _deliver(doc: Any, atts: list[dict[str, Any]], plain: IO[bytes], out: str | os.PathLike[str] | None,
             attachments_dir: str | os.PathLike[str] | None, overwrite: bool, staged: bool) -> list[Path]:
    """Write a verified package's record to `out` and its attachments (read from `plain`, at the
    first) into `attachments_dir`, all or nothing: no attachments without their record, no record
    half-delivered. Returns what was written, the record first."""
    written: list[Path] = []
    try:
        if atts and attachments_dir is not None:
            adir = Path(attachments_dir)
            adir.mkdir(mode=0o700, parents=True, exist_ok=True)
            clash = [a["name"] for a in atts if (adir / a["name"]).exists()]
            if clash:
                raise UsageError(f"{adir} already has a file named {clash[0]}", code="attachments.exists",
                                 hint="open into an empty --attachments-dir; nothing was written")
            for a in atts:
                target = adir / a["name"]
                _write_stream_atomic(target, b"", _Limited(plain, a["size"]))
                written.append(target)
        if out is not None:
            check_output(out, overwrite=overwrite, what="output file")  # again: it may have appeared meanwhile
            data = pretty_json(doc)
            if staged:
                write_new(out, data, sync=False)
            else:
                jsonio.write_atomic(out, data)
            written.insert(0, Path(out))
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    return written


class _Limited(io.RawIOBase):
    def __init__(self, src: IO[bytes], n: int) -> None:
        self.src, self.left = src, n

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.src.read(n)
        self.left -= len(data)
        return data


def read_record(path: str | os.PathLike[str]) -> Any:
    """Read a record file for packing: strict JSON, size-capped."""
    return jsonio.load_file(path, max_bytes=MAX_RECORD_BYTES)
