"""Signed checkpoints of the audit log: C2SP tlog-checkpoint bodies in C2SP signed notes (Ed25519).

A checkpoint says "our audit log had N entries and this Merkle tree head" under our signing key.
A partner that keeps one can later tell whether our log was cut short or rewritten: the log
must still hold N entries whose tree head is that root (docs/ledger.md). The formats are the
published ones (c2sp.org/signed-note, c2sp.org/tlog-checkpoint), so a checkpoint can be checked
with any signed-note implementation, given our Ed25519 public key from our card.

Checkpoints are kept as files, written once and never replaced: HOME/checkpoints/own/ for the
ones we signed, HOME/checkpoints/partners/<party>/ for those partners sent us.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from laxchange import dsse
from laxchange._util.fs import private_dirs, write_new_atomic
from laxchange.errors import InvalidData, SecurityError
from laxchange.ledger import merkle

#: A checkpoint's origin and its signature's key name: the log of party P is `laxchange/P`.
ORIGIN_PREFIX = "laxchange/"
#: The signature type byte of an Ed25519 signed-note key (c2sp.org/signed-note)
ED25519_TYPE = b"\x01"
#: A note is refused beyond this size (our checkpoints are about 200 bytes).
MAX_NOTE_BYTES = 64 * 1024
_SIG_LINE = re.compile(r"\u2014 (\S+) ([A-Za-z0-9+/=]+)")
_SIZE = re.compile(r"0|[1-9][0-9]*")


class CheckpointMalformed(InvalidData):
    """Not a signed note holding a tlog checkpoint (exit 1)."""

    code = "checkpoint.malformed"


class CheckpointUnverified(SecurityError):
    """No signature on the checkpoint verifies under a key we know for its origin (exit 3)."""

    code = "checkpoint.bad-signature"


class CheckpointForked(SecurityError):
    """A partner's checkpoint records the size of one we hold with another root: its log forked (exit 3)."""

    code = "checkpoint.partner-inconsistent"


def origin_for(party: str) -> str:
    return ORIGIN_PREFIX + party


def key_id(name: str, public: bytes) -> bytes:
    """SHA-256(key name || 0x0A || 0x01 || Ed25519 public key)[:4], as c2sp.org/signed-note recommends."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519_TYPE + public).digest()[:4]


def verifier_key(name: str, public: bytes) -> str:
    """The `name+hexid+base64(0x01 || key)` verifier key string Go's sumdb/note and others read."""
    return f"{name}+{key_id(name, public).hex()}+{base64.b64encode(ED25519_TYPE + public).decode()}"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        """The note text: origin, tree size, base64 root hash, each ending in a newline."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @property
    def party(self) -> str:
        return self.origin.removeprefix(ORIGIN_PREFIX)


@dataclass(frozen=True)
class Note:
    """A parsed signed note: its text and its (key name, key id, signature) lines."""

    text: str
    signatures: tuple[tuple[str, bytes, bytes], ...]


def sign_note(text: str, name: str, signer: dsse.Signer, public: bytes) -> str:
    """`text` with one Ed25519 signature line by `signer` (whose public key is `public`)."""
    if signer.alg != dsse.ED25519:
        raise ValueError(f"signed notes are signed with Ed25519 here, not {signer.alg}")
    if not text.endswith("\n") or not name or any(c.isspace() or c == "+" for c in name):
        raise ValueError("a note text ends in a newline and a key name has no spaces or '+'")
    sig = base64.b64encode(key_id(name, public) + signer.sign(text.encode())).decode()
    return f"{text}\n\u2014 {name} {sig}\n"


def parse_note(data: bytes | str, *, source: str = "checkpoint") -> Note:
    """Split a signed note into its text and signature lines (c2sp.org/signed-note §Format)."""
    raw = data.encode() if isinstance(data, str) else data
    bad = f"{source} is not a signed note"
    hint = "a checkpoint is the text `laxchange audit checkpoint` prints: three lines, a blank line, signature lines"
    if len(raw) > MAX_NOTE_BYTES:
        raise CheckpointMalformed(f"{bad}: larger than {MAX_NOTE_BYTES} bytes", hint=hint)
    try:
        note = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointMalformed(f"{bad}: not UTF-8", hint=hint) from None
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise CheckpointMalformed(f"{bad}: it holds control characters (a Windows line ending?)", hint=hint)
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        raise CheckpointMalformed(f"{bad}: no blank line before the signatures", hint=hint)
    text, lines = note[: cut + 1], note[cut + 2:].splitlines()
    sigs: list[tuple[str, bytes, bytes]] = []
    for line in lines:
        m = _SIG_LINE.fullmatch(line)
        blob = b""
        if m is not None:
            try:
                blob = base64.b64decode(m.group(2), validate=True)
            except binascii.Error:
                blob = b""
        if m is None or len(blob) < 5:
            raise CheckpointMalformed(f"{bad}: a signature line is not `\u2014 NAME BASE64`", hint=hint)
        sigs.append((m.group(1), blob[:4], blob[4:]))
    if not sigs:
        raise CheckpointMalformed(f"{bad}: no signature lines", hint=hint)
    return Note(text, tuple(sigs))


def open_note(note: Note, name: str, publics: Sequence[bytes]) -> str:
    """The note's text once a signature by one of these Ed25519 keys named `name` verifies.

    As the spec says: signatures by unknown keys are ignored, a known key's signature that fails
    rejects the note, and a note with no verified known signature is rejected."""
    known = {key_id(name, p): p for p in publics}
    verified = False
    for sig_name, kid, sig in note.signatures:
        public = known.get(kid) if sig_name == name else None
        if public is None:
            continue
        if not dsse.verify_raw(dsse.ED25519, public, note.text.encode(), sig):
            raise CheckpointUnverified(f"the signature by {name} on the checkpoint does not verify",
                                       hint="the checkpoint was altered; ask its sender for a fresh copy")
        verified = True
    if not verified:
        raise CheckpointUnverified(f"the checkpoint carries no signature by a key of {name} that we know",
                                   hint="check it is that party's checkpoint, and that its card is current"
                                        " (`laxchange partners show`)")
    return note.text


def parse_checkpoint(text: str, *, source: str = "checkpoint") -> Checkpoint:
    """The origin, size and root of a checkpoint's note text (c2sp.org/tlog-checkpoint §Note text)."""
    lines = text.split("\n")[:-1]
    hint = "a checkpoint's text is: origin, tree size, base64 root hash, one a line"
    if len(lines) < 3 or any(not line for line in lines):
        raise CheckpointMalformed(f"{source} is not a tlog checkpoint: it needs three non-empty lines", hint=hint)
    origin, size, root_b64 = lines[:3]
    if not _SIZE.fullmatch(size):
        raise CheckpointMalformed(f"{source}: tree size {size!r} is not a decimal number", hint=hint)
    try:
        root = base64.b64decode(root_b64, validate=True)
    except binascii.Error:
        root = b""
    if len(root) != merkle.HASH_SIZE:
        raise CheckpointMalformed(f"{source}: the root hash is not base64 of 32 bytes", hint=hint)
    return Checkpoint(origin, int(size), root)


def read_checkpoint(data: bytes | str, publics: Sequence[bytes], party: str, *,
                    source: str = "checkpoint") -> Checkpoint:
    """Parse and verify the checkpoint of `party`'s log, signed by one of `publics`."""
    note = parse_note(data, source=source)
    cp = parse_checkpoint(note.text, source=source)
    if cp.origin != origin_for(party):
        raise CheckpointUnverified(f"{source} is the checkpoint of {cp.origin!r}, not of {origin_for(party)!r}",
                                   code="checkpoint.wrong-origin",
                                   hint="check which party's checkpoint this file is")
    open_note(note, cp.origin, publics)
    return cp


def forks(checkpoints: Iterable[tuple[str, Checkpoint]]) -> Iterator[tuple[str, str, Checkpoint]]:
    """(source, earlier source, checkpoint) for each checkpoint that records the same size as an
    earlier one with another root: two signed heads of one log that cannot both be true, so the
    log was changed between them. Sizes alone prove nothing (receipts arrive in any order)."""
    roots: dict[int, tuple[bytes, str]] = {}
    for source, cp in checkpoints:
        seen = roots.setdefault(cp.size, (cp.root, source))
        if seen[0] != cp.root:
            yield source, seen[1], cp


_NOTE_NAME = re.compile(r"[0-9]{6,}-[0-9]+\.note")


class CheckpointStore:
    """Checkpoint notes kept as files under one folder, each written once (never replaced or edited)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def add(self, note: str, size: int) -> Path:
        """Keep `note` as the next file; a note identical to the newest kept one is not kept twice."""
        private_dirs(self.folder)
        existing = self.paths()
        if existing and existing[-1].read_text(encoding="utf-8") == note:
            return existing[-1]
        n = int(existing[-1].name.split("-", 1)[0]) + 1 if existing else 1
        while True:
            path = self.folder / f"{n:06d}-{size}.note"
            try:
                write_new_atomic(path, note.encode())
                return path
            except FileExistsError:
                n += 1  # another process kept one meanwhile: take the next number

    def fork_of(self, cp: Checkpoint) -> str | None:
        """The name of a kept checkpoint with `cp`'s size and another root (`forks`), if any. Only
        the files whose name records that size are read (`add` names each by its size; a partner
        keeps one a night, so reading them all made each receipt cost as much as the years kept);
        they are parsed, not verified again (they were when kept). `audit verify` reads and
        verifies every kept file by its content, whatever its name, and reports one that no
        longer parses."""
        held: list[tuple[str, Checkpoint]] = []
        for path in self.paths(size=cp.size):
            with contextlib.suppress(CheckpointMalformed, OSError):
                held.append((path.name, parse_checkpoint(parse_note(path.read_bytes()).text)))
        return next((earlier for name, earlier, _ in forks([*held, ("", cp)]) if not name), None)

    def keep_refused(self, note: bytes, code: str) -> Path:
        """Keep, as evidence, a checkpoint that came inside a package its sender signed and that did
        not verify (under `refused/`, named by its SHA-256 and why; never read as a checkpoint)."""
        folder = self.folder / "refused"
        private_dirs(folder)
        path = folder / f"{hashlib.sha256(note).hexdigest()[:32]}-{code.replace('.', '_')}.note"
        with contextlib.suppress(FileExistsError):  # the same bytes again: kept once
            write_new_atomic(path, note)
        return path

    def refused(self) -> list[Path]:
        folder = self.folder / "refused"
        return sorted(folder.glob("*.note")) if folder.is_dir() else []

    def paths(self, *, size: int | None = None) -> list[Path]:
        """The kept files in the order they were kept; with `size`, only those named for that size."""
        if not self.folder.is_dir():
            return []
        names = sorted(n for n in os.listdir(self.folder) if _NOTE_NAME.fullmatch(n)
                       and (size is None or n.split("-", 1)[1] == f"{size}.note"))
        return [self.folder / n for n in sorted(names, key=lambda n: int(n.split("-", 1)[0]))]


def own_store(home_root: Path) -> CheckpointStore:
    """The checkpoints we signed of our own log."""
    return CheckpointStore(home_root / "checkpoints" / "own")


def partner_store(home_root: Path, who: str) -> CheckpointStore:
    """Checkpoints of `who`'s audit log that `who` sent us (kept for them, append-only)."""
    return CheckpointStore(home_root / "checkpoints" / "partners" / who.replace(":", "_"))
