"""One error hierarchy for the library and the CLI, and the registry of reason codes.

Every failure a user can cause or meet is a `LaxError` subclass carrying a stable exit code, a
message that says what went wrong and where, and a hint that says what to do. The CLI prints
these without a traceback; library callers catch them by class, scripts match on `code`.

Reason codes have one spelling scheme, `area.problem` in lower-case kebab words
(`host-key.mismatch`, `package.replayed`), and every code the library raises is registered in
`CODES` below with what it means (a test fails on an unregistered, misspelt or duplicate code).
Codes are a contract: scripts, quarantine sidecars and receipts carry them, so a released code
is never renamed or reused for another meaning.
"""

from __future__ import annotations

import copy
import re
from typing import Any, ClassVar, Self


class ExitCode:
    """Documented process exit codes (README, `laxchange --help`)."""

    OK = 0
    INVALID_DATA = 1
    USAGE = 2
    SECURITY = 3
    TRANSPORT = 4
    CONFIG = 5
    PARTIAL = 10
    INTERNAL = 70
    INTERRUPTED = 130  # 128 + SIGINT, as shells report it
    TERMINATED = 143  # 128 + SIGTERM


EXIT_CODE_TABLE: list[tuple[int, str]] = [
    (ExitCode.OK, "success"),
    (ExitCode.INVALID_DATA, "invalid data: a record or message failed validation"),
    (ExitCode.USAGE, "usage error: bad command line"),
    (ExitCode.SECURITY, "security failure: signature, encryption, trust, expiry or replay check failed"),
    (ExitCode.TRANSPORT, "transport failure: SFTP/host key/connection/remote file problem"),
    (ExitCode.CONFIG, "configuration or key problem: missing home, key, passphrase or partner"),
    (ExitCode.PARTIAL, "partial: the job ran, but something needs a look (see its report)"),
    (ExitCode.INTERNAL, "internal error: a bug in laxchange (please report it; re-run with --verbose for details)"),
    (ExitCode.INTERRUPTED, "interrupted (Ctrl-C): what was done is kept; the message says what is left"),
    (ExitCode.TERMINATED, "stopped by SIGTERM (a service stop, `systemctl stop`): as 130"),
]


class LaxError(Exception):
    """Base of all laxchange errors. `code` is a short stable machine-readable reason."""

    exit_code: ClassVar[int] = ExitCode.INVALID_DATA
    code: str = "error.unspecified"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code is not None:
            self.code = code
        self.details = details or {}

    def annotated(self, note: str = "", *, prefix: str = "", **details: Any) -> Self:
        """A copy with `prefix` before and `note` after the message and `details` added; the original
        is untouched.

        For adding what a higher layer knows (e.g. where a package was quarantined) while keeping
        the class, code and exit code of the original error: `raise exc.annotated(...) from exc`.
        """
        new = self.restated(prefix + (f"{self.message} {note}" if note else self.message))
        new.details = {**self.details, **details}
        return new

    def restated(self, message: str, *, hint: str | None = None) -> Self:
        """A copy with its own `message` (and `hint`, if given), keeping the class, code, exit code and
        details of this one: a summary of several errors that exits as the first of them would."""
        new = copy.copy(self)
        new.message = message
        new.args = (message,)
        if hint is not None:
            new.hint = hint
        return new

    def to_dict(self, *, redact: bool = False) -> dict[str, Any]:
        """The error as JSON. `redact` is for reports about packages other parties sent (the nightly
        run's, import's: they end up in logs and mail): an invalid-data error's message and per-rule
        messages may quote the record, so they are replaced by `safe_message` and paths and rules only."""
        out: dict[str, Any] = {
            "error": self.code,
            "kind": type(self).__name__,
            "message": self.safe_message if redact else self.message,
            "exit_code": self.exit_code,
        }
        if self.hint:
            out["hint"] = self.hint
        details = self.details
        if redact and self.exit_code == ExitCode.INVALID_DATA and "errors" in details:
            found = [e for e in details["errors"] if isinstance(e, dict)]
            details = {**details, "errors": [{k: e.get(k) for k in ("path", "rule", "severity")} for e in found]}
        if details:
            out["details"] = details
        return out

    @property
    def safe_message(self) -> str:
        """The message, unless it may quote a record's content (invalid data): then what failed, without values."""
        if self.exit_code != ExitCode.INVALID_DATA:
            return self.message
        found = [e for e in self.details.get("errors", []) if isinstance(e, dict)]
        where = "; ".join(f"{e.get('path')} [{e.get('rule')}]" for e in found[:5])
        more = f" and {len(found) - 5} more" if len(found) > 5 else ""
        return (f"the package's content is not valid ({self.code})" + (f": at {where}{more}" if where else "")
                + " (the values are not repeated here; the quarantine record has the paths and rules)")


class InvalidData(LaxError):
    """Input data is malformed or fails schema/domain validation (exit 1)."""

    exit_code = ExitCode.INVALID_DATA
    code = "data.invalid"


class UsageError(LaxError):
    """The command line or API call is wrong (exit 2)."""

    exit_code = ExitCode.USAGE
    code = "usage.invalid"


class SecurityError(LaxError):
    """A cryptographic or trust check failed; the input must not be used (exit 3)."""

    exit_code = ExitCode.SECURITY
    code = "security.failed"


class TransportError(LaxError):
    """Moving files to or from a partner failed (exit 4)."""

    exit_code = ExitCode.TRANSPORT
    code = "transport.failed"

    #: Whether retrying the same operation may succeed; fixed by the class, never set on an instance.
    transient: ClassVar[bool] = False


class TransientTransportError(TransportError):
    """A transport failure that retrying the same idempotent operation may cure (timeouts, dropped links)."""

    transient: ClassVar[bool] = True


class ConfigError(LaxError):
    """Home directory, keys, passphrases or partner configuration are missing or wrong (exit 5)."""

    exit_code = ExitCode.CONFIG
    code = "config.error"


class InternalError(LaxError):
    """A bug in laxchange (exit 70): an invariant broke. Reported, never silently absorbed."""

    exit_code = ExitCode.INTERNAL
    code = "internal.error"


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, as the CLI reports it (exit 130). A plain KeyboardInterrupt counts as one. Not a
    LaxError: every `except LaxError` lets it through, and it unwinds like Ctrl-C. A step that knows
    what an interrupt leaves (a batch queued but not sent) says so with `add_note`, which the CLI
    prints as the hint."""

    exit_code: ClassVar[int] = ExitCode.INTERRUPTED
    code = "run.interrupted"


class Terminated(Interrupted):
    """SIGTERM (a service stop), raised in the main thread by the CLI's handler (`cli.main`) so that
    a stop unwinds and reports as Ctrl-C does (exit 143), where it used to end the process at once
    with no message and no `command.finished` log line."""

    exit_code: ClassVar[int] = ExitCode.TERMINATED
    code = "run.terminated"


#: `area.problem`: lower-case words joined by hyphens, one dot.
CODE_RE = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*\.[a-z0-9]+(-[a-z0-9]+)*")

#: Every reason code laxchange raises, with its meaning. Add a line here with every new code.
CODES: dict[str, str] = {
    # the classes' defaults, for an error raised without a specific code
    "error.unspecified": "an error without a more specific code",
    "data.invalid": "input data is malformed or fails validation",
    "usage.invalid": "the command line or API call is wrong",
    # the command line parser (laxchange.cli; with --json, as one JSON object)
    "usage.missing-parameter": "a required option or argument is missing",
    "usage.unknown-option": "no such option",
    "usage.unknown-command": "no such command",
    "usage.missing-command": "a command group was given no command",
    "usage.bad-option": "an option is used wrongly (e.g. without its value)",
    "usage.bad-argument": "an argument is used wrongly",
    "usage.bad-value": "an option or argument has a bad value (wrong type, not a choice, no such file)",
    "security.failed": "a cryptographic or trust check failed",
    "transport.failed": "moving files to or from a partner failed",
    "config.error": "home, keys, passphrase or partner configuration is missing or wrong",
    "internal.error": "a bug in laxchange",
    "run.interrupted": "the command was interrupted (Ctrl-C): exit 130",
    "run.terminated": "the command was stopped by SIGTERM (a service stop): exit 143",
    # strict JSON (laxchange._util.jsonio)
    "json.bom": "the JSON starts with a byte-order mark",
    "json.duplicate-key": "an object repeats a key",
    "json.empty": "the input is empty",
    "json.encoding": "the input is not UTF-8",
    "json.non-finite": "NaN, Infinity or an out-of-range number",
    "json.number-too-long": "a number has more characters than the limit",
    "json.too-deep": "nesting is deeper than the limit",
    "json.too-large": "the document is larger than the limit",
    "json.truncated": "the JSON ends early",
    "json.syntax": "the input is not valid JSON",
    "json.surrogate": "a string holds a lone UTF-16 surrogate escape (not a character)",
    # files given to a command
    "file.directory": "a directory was given where a file is expected",
    "file.missing": "the file does not exist",
    "file.not-regular": "a FIFO, device or socket was given where a regular file is expected",
    "file.permission": "the file cannot be read (permissions)",
    "file.symlink": "a symbolic link was given where the real file is required",
    "file.unreadable": "the file cannot be read",
    "file.too-large": "the file is larger than anything of its kind can be",
    "output.exists": "the output file already exists (pass --force to replace it)",
    "output.no-folder": "the folder an output file would go in does not exist",
    "output.is-input": "the output file is one of the command's input files",
    "output.not-regular": "the output path is a block device or socket, or a FIFO nobody reads",
    "record.invalid": "the record or message fails validation",
    "record.too-large": "the record is larger than the limit",
    "validate.empty-dir": "a folder to validate holds no JSON files",
    "sample.output-dir": "the sample output folder cannot be used",
    "sample.output-file": "the sample output file cannot be written",
    "sample.schema-version": "laxchange cannot write samples at that schema version",
    # schemas and migrations (laxchange.models)
    "schema.export-not-empty": "the export folder is not empty",
    "schema.lock-mismatch": "a released schema file differs from the lock file",
    "schema.missing": "the document names no schema",
    "schema.not-object": "the document is not a JSON object",
    "schema.released-changed": "a released schema file was changed",
    "schema.unknown": "no such schema",
    "schema.unknown-id": "the document's $schema is not a laxchange schema",
    "schema.version": "this schema version is not supported",
    "type.unknown": "no such message type",
    "migrate.downgrade": "migrating to an older version was asked for",
    "migrate.invalid-result": "a migrated document fails validation",
    "migrate.missing": "no migration exists between these versions",
    "migrate.unknown-version": "the target version is unknown",
    # the home and its keys (laxchange.home, laxchange.trust)
    "home.exists": "the home is already initialised",
    "home.missing": "the home does not exist",
    "home.file-damaged": "a file of the home (keyring, partner record, config) cannot be read or has the wrong shape",
    "home.unwritable": "a file of the home (the log of temporary uploads) cannot be written, read or removed",
    "config.invalid": "the home's config.json is malformed",
    "keyring.missing": "the home has no keyring (not initialised)",
    "key.damaged": "a private key file cannot be decrypted or parsed",
    "key.malformed": "a key entry in the keyring is malformed",
    "key.missing": "a private key file is missing",
    "key.permissions": "a private key file is readable by group or others",
    "key.no-signing-key": "no signing key is valid now",
    "key.revoked": "the key is revoked",
    "key.unknown": "no key with this id",
    "kdf.work-factor": "the scrypt work factor is out of range",
    "alg.unknown": "an unknown key algorithm",
    "expires.range": "an expiry outside the allowed range",
    "reason.missing": "a revocation needs a reason",
    "party.invalid": "a party id is not LA:NNN or URN:NNNNNN",
    "passphrase.empty": "the passphrase is empty",
    "passphrase.missing": "the passphrase file is missing",
    "passphrase.permissions": "the passphrase file is readable by group or others",
    "passphrase.unavailable": "a passphrase is needed and there is no way to ask for it",
    "passphrase.wrong": "the passphrase does not unlock the key",
    "passphrase.unchanged": "the new passphrase is the same as the old one",
    "passphrase.weak": "the new passphrase is too easy to guess",
    "ssh-key.exists": "the SSH client key already exists",
    "ssh-key.invalid": "the SSH client key cannot be parsed",
    "ssh-key.missing": "the SSH client key is missing",
    "ssh-key.passphrase": "the SSH client key cannot be unlocked",
    "ssh-key.overlap": "the previous SSH client key is still in its rotation overlap",
    "ssh-key.permissions": "the SSH client key is readable by group or others",
    # partner cards and the directory
    "card.changed": "a new card for a known partner is not signed by its current keys",
    "card.fingerprint-malformed": "a card fingerprint is not 32 base32 characters",
    "card.fingerprint-mismatch": "the card does not match the fingerprint confirmed out of band",
    "card.fingerprint-required": "adding a partner needs its fingerprint, confirmed out of band",
    "card.invalid": "the card is malformed or its signatures do not verify",
    "partner.damaged": "a stored partner record is damaged",
    "partner.no-key": "the partner has no key valid now",
    "partner.unknown": "the party is not in the partner directory",
    "partner.withdrawn": "a school introduced to us was withdrawn (its introducer withdrew it or was removed)",
    "area.invalid": "an area directory is malformed, or a card in it is",
    "area.signature": "an area directory is not signed by its introducer's current keys",
    "area.introducer-mismatch": "an area directory is another council's than the one named",
    "area.stale": "an area directory is not newer than the one we hold of that council",
    "area.school-outside": "a school in the list to publish is not in our LA",
    "area.not-council": "only a council publishes an area directory",
    "area.schools-file": "the list of our schools to publish (CSV) is malformed",
    "introduction.introducer-untrusted": "the introducer is not a council whose fingerprint we confirmed ourselves",
    "introduction.not-listed": "the school is not in the introducer's area directory",
    "introduction.outside-area": "the school's LA (as the area directory gives it) is not the introducer's",
    "sftp-url.invalid": "an SFTP URL on a card is malformed",
    "sftp-url.host-key-needed": "our SFTP URL names a new host or port, and no host-key fingerprint for it was given",
    # packages (laxchange.package); on the wire a rejection carries only these coarse codes
    "package.bad-signature": "a signature does not verify",
    "package.expired": "the package has expired",
    "package.key-not-valid": "the sender's key was not valid when the package was made",
    "package.not-a-package": "the file is not a laxchange package (no LAXCHANGE/1 line)",
    "package.not-addressed-to-us": "the package is for another party",
    "package.not-yet-valid": "the package was made in the future",
    "package.replayed": "this transfer was already imported",
    "package.revoked-key": "the package is signed with a revoked key",
    "package.tampered": "the package is damaged or was altered",
    "package.unknown-sender": "the sender is not a partner",
    "package.wrong-format-version": "the package format version is not supported",
    # what archive verification (open --archive) reports without refusing: warnings, never raised
    "archive.revoked-later": "a key that signed the package was revoked after the package was created",
    "archive.partner-removed": "the sender has been removed from the partner directory since",
    "statement.malformed": "the signed statement inside the package is malformed",
    "attachment.name": "an attachment name is not a plain unique file name",
    "attachment.changed": "an attachment changed while it was being packed",
    "attachments.exists": "an attachment would overwrite an existing file",
    "attachments.too-many": "more attachments than the limit",
    "pack.type-mismatch": "--type names another message than the document is (or cannot wrap it)",
    "pack.reason-missing": "wrapping an education record in a message needs a valid --reason",
    "send.plain-record": "the file is a laxchange record in plain text, not a package: pack it first",
    "send.not-a-package": "the file is not a laxchange package: only packages are sent (attach it to a record)",
    "send.wrong-recipient": "the package is addressed to another party than the one sent to",
    "send.not-in-outbox": "a queued package is not in the outbox, so the nightly run cannot send it",
    "withdraw.which": "the transfer is queued for more than one party: say which (--to)",
    "withdraw.sent": "the transfer was sent already: what is sent cannot be taken back",
    "withdraw.unknown": "no queued transfer of that id",
    "partner.is-us": "the card is our own, not a partner's",
    "quarantine.unknown": "no quarantined package of that name",
    "quarantine.open": "a quarantined package is not opened from quarantine (release it instead)",
    "notify.not-placing-council": "the record names another council as the placing council (placement.placing_la)",
    "notify.respond-by": "--respond-by names a date that has passed",
    # notify-placement and notify-exclusion (laxchange.exchange.notify)
    "notify.misdirected": "a recipient is not the record's placement school or host council",
    "notify.no-recipient": "a placement notification names no recipient",
    "notify.purpose": "the purpose is empty, too long, or names the child",
    "notify.reason": "an unknown reason for a placement notification",
    "notify.attachments-without-school": "attachments were given but no school (which gets the PEP) is a recipient",
    "notify.duplicate": "a batch gives the same record to the same recipient twice (the later line is left out)",
    "notify.batch-line": "a line of a placements file is not a placement (not an object, a key unknown or missing)",
    "collect.background": "the child process collecting our drop folder (run --jobs) died or fell silent; what "
                          "it fetched is imported, the rest next run",
    "worker.lost": "a worker process of a batch (--jobs) died or stopped answering; nothing of the batch was kept",
    "exclusion.facts": "the exclusion's facts are missing, unknown or of the wrong type",
    "exclusion.not-a-school": "an exclusion notice is sent from a home that is not a school",
    "exclusion.no-child": "an exclusion notice names no child",
    "exclusion.no-recipient": "an exclusion notice has no responsible council to go to",
    "exclusion.no-contact": "an exclusion notice has no contact to report it",
    # endpoints and URLs
    "endpoint.missing": "no endpoint for this partner",
    "endpoint.none": "no endpoints to collect from",
    "endpoint.not-configured": "the partner has no endpoint override in config.json to remove",
    "endpoint.unpinned": "an SFTP endpoint has no pinned host key",
    "endpoint.ssh-config": "an ssh_config file was given for an endpoint that does not use the openssh backend",
    "endpoint.ssh-config-unsafe": "an endpoint's ssh_config is missing, not a file, or others may change it",
    "url.invalid": "a malformed endpoint URL",
    "url.password": "an endpoint URL carries a password",
    "url.scheme": "an unsupported endpoint URL scheme",
    # SSH and SFTP (laxchange.transport)
    "host-key.fingerprint-invalid": "a host-key fingerprint is not SHA256:<43 base64 characters>",
    "host-key.known-hosts": "the known_hosts file cannot be used",
    "host-key.mismatch": "the server's host key is not the pinned one",
    "host-key.unpinned": "no host key is pinned for this server",
    "ssh.auth-failed": "SSH authentication failed",
    "ssh.auth-refused": "the server refused our SSH key",
    "ssh.auth-timeout": "SSH authentication timed out",
    "ssh.previous-key-only": "a server accepted only our previous SSH key (a warning during a `keys rotate --ssh` "
                             "overlap: it fails once that key is pruned)",
    "ssh.connect-failed": "the TCP connection could not be made",
    "ssh.connection-lost": "the connection dropped",
    "ssh.handshake-failed": "the SSH handshake failed",
    "ssh.no-sftp": "the server offers no SFTP subsystem",
    "ssh.no-client": "the openssh backend is chosen but the OpenSSH client `ssh` is not on PATH",
    "ssh.protocol-error": "the server's SFTP reply made no sense",
    "ssh.timeout": "the server stalled past the timeout",
    "name.invalid": "an unsafe remote file name",
    "name.missing": "a file name is missing",
    "remote.bad-name": "a remote file name is not UTF-8",
    "remote.exists": "the remote file already exists",
    "remote.failure": "the server refused an operation",
    "remote.missing": "the remote file does not exist",
    "remote.no-size": "the server gave no file size",
    "remote.not-regular": "the remote entry is not a regular file",
    "remote.permission": "the server denied access",
    "remote.too-large": "the remote file is larger than the limit",
    "local.exists": "the local file already exists",
    "local.io": "a local disk error",
    "verify.hash": "the file's hash does not match after transfer",
    "verify.local-hash": "the local copy's hash does not match",
    "verify.size": "the file's size does not match after transfer",
    "server.authorized-keys": "the authorized_keys file cannot be used (each key's comment must be its party id)",
    "server.folder": "a drop folder to serve is misnamed, or its owner has no authorised key",
    "server.host-key": "the server host key cannot be used",
    "server.listen": "the server cannot listen on that address",
    "server.log-file": "the server's log file cannot be opened",
    "server.party": "a party id given to the server is malformed",
    "server.root": "the server root folder cannot be used",
    # the structured log (laxchange.logs; `laxchange --log-file`)
    "log.file": "the JSON log file cannot be opened for appending (or is not a regular file)",
    # the ledger
    "ledger.corrupt": "the ledger database cannot be opened",
    "ledger.busy": "another laxchange process holds the ledger; retry shortly",
    "ledger.illegal-transition": "a transfer state change the transition table does not allow (a bug)",
    "ledger.io": "the ledger cannot be read or written (disk, permissions)",
    "ledger.too-new": "the ledger was written by a newer laxchange",
    "run.locked": "another laxchange run holds this home's run lock",
    # import, received, receipts (laxchange.exchange.inbound)
    "received.not-found": "no imported transfer with that id in HOME/received",
    "received.ambiguous": "that transfer id was imported from more than one sender",
    "received.exists": "the folder an imported transfer would go in already exists",
    "receipt.of-receipt": "an applied receipt was asked for a receipt (receipts are never acknowledged)",
    "receipt.not-sent": "a receipt was packed but the send did not report it",
    "receipt.no-common-version": "the partner's card lists no receipt version this release writes",
    "receipt.stage-missing": "`laxchange receipt` needs the stage to send (--applied)",
    "audit.broken": "the audit chain does not verify",
    # the transparency audit log (laxchange.ledger.merkle, .checkpoint, laxchange.exchange.transparency)
    "audit.truncated": "a checkpoint of our log records more entries than the log holds: the newest were removed",
    "audit.rewritten": "the log's entries up to a checkpoint's size are not the ones that checkpoint signed",
    "audit.inconsistent": "a checkpoint we signed is not an extension of the one before it",
    "audit.no-entry": "`audit prove` was given an entry number the log does not hold",
    "audit.proof-malformed": "an inclusion proof document is not what `audit prove` writes",
    "audit.proof-invalid": "an inclusion proof does not show its entry in the signed log",
    "audit.bad-reference": "`audit acknowledge` was given a reference that is not a ticket or incident number",
    "audit.no-such-evidence": "`audit acknowledge` named checkpoint evidence that `audit verify` does not report",
    "checkpoint.malformed": "not a C2SP signed note holding a tlog checkpoint",
    "checkpoint.bad-signature": "no signature on a checkpoint verifies under a key we know for its log",
    "checkpoint.wrong-origin": "a checkpoint is of another party's log than the one expected",
    "checkpoint.no-key": "there is no Ed25519 signing key to sign a checkpoint with",
    "checkpoint.partner-inconsistent": "two checkpoints a partner sent record the same size with different roots",
    "checkpoint.none-held": "we hold no checkpoint of that partner's audit log",
    "checkpoint.io": "a checkpoint file could not be written (permissions, disk full)",
    "checkpoint.refused": "a partner signed into a message a checkpoint that does not verify (kept as evidence)",
    # the statutory clocks (laxchange.deadlines; docs/deadlines.md)
    "deadlines.config": "config.json's deadlines section names a folder that cannot be used",
    "deadlines.records": "the records folder the deadlines are computed from cannot be used",
    "deadlines.policy-invalid": "a deadline policy file is malformed",
    "deadlines.policy-looser": "a local deadline policy would lengthen a statutory deadline (it may only shorten)",
    "deadlines.term-dates": "a term-dates file (ICS or CSV) cannot be used",
    "deadlines.unreadable": "a record or notice the deadlines are computed from cannot be read (skipped)",
    # the readable PEP (laxchange.render)
    "render.no-record": "the document or package carries no education record to render",
    "render.output-exists": "the HTML output file already exists (pass --force to replace it)",
    "render.output-unwritable": "the HTML output file cannot be written",
    # what a school MIS loads: the CTF, CSV tables, records from a spreadsheet (laxchange.mis)
    "output.unwritable": "an output file cannot be written (folder missing or not writable)",
    "ctf.version": "a CTF version laxchange does not write",
    "ctf.no-school": "the record names no school, so there is no MIS to load a CTF into",
    "ctf.no-laestab": "the record's school has no DfE number (LAESTAB), which a CTF header needs",
    "ctf.invalid-character": "a value holds a character XML cannot carry (a control character)",
    "export.format": "`laxchange export` was given neither or both of --ctf and --csv",
    "export.no-output": "`laxchange export` needs -o (the CTF file or the CSV folder)",
    "export.no-record": "the document or transfer carries no education record to export",
    "export.source": "the export source is neither a file nor an imported transfer id",
    "csv.encoding": "the CSV file is not UTF-8",
    "csv.syntax": "the CSV file cannot be read (unbalanced quotes)",
    "csv.empty": "the CSV file has no header, or no rows",
    "csv.too-large": "the CSV file has more bytes or rows than the limit",
    "csv.unknown-column": "the CSV header names a column the template does not have",
    "csv.duplicate-column": "the CSV header names a column twice",
    "csv.missing-column": "the CSV header lacks a column every record needs",
    # the demo
    "demo.invalid-sample": "a generated sample failed validation (a bug)",
    "demo.notify": "the demo's notify-placement failed",
    "demo.run": "a nightly run in the demo failed",
}
