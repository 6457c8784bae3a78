"""One error hierarchy for the library and the CLI.

Every failure a user can cause or meet is a `LaxError` subclass carrying a stable exit code, a
message that says what went wrong and where, and a hint that says what to do. The CLI prints
these without a traceback; library callers catch them by class.
"""

from __future__ import annotations

from typing import Any


class ExitCode:
    """Documented process exit codes (README, `laxchange --help`)."""

    OK = 0
    INVALID_DATA = 1
    USAGE = 2
    SECURITY = 3
    TRANSPORT = 4
    CONFIG = 5
    INTERNAL = 70


EXIT_CODE_TABLE: list[tuple[int, str]] = [
    (ExitCode.OK, "success"),
    (ExitCode.INVALID_DATA, "invalid data: a record or message failed validation"),
    (ExitCode.USAGE, "usage error: bad command line"),
    (ExitCode.SECURITY, "security failure: signature, encryption, trust, expiry or replay check failed"),
    (ExitCode.TRANSPORT, "transport failure: SFTP/host key/connection/remote file problem"),
    (ExitCode.CONFIG, "configuration or key problem: missing home, key, passphrase or partner"),
    (ExitCode.INTERNAL, "internal error: a bug in laxchange (please report it; re-run with --verbose for details)"),
]


class LaxError(Exception):
    """Base of all laxchange errors. `code` is a short stable machine-readable reason."""

    exit_code: int = ExitCode.INVALID_DATA
    code: str = "error"

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

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "error": self.code,
            "kind": type(self).__name__,
            "message": self.message,
            "exit_code": self.exit_code,
        }
        if self.hint:
            out["hint"] = self.hint
        if self.details:
            out["details"] = self.details
        return out


class InvalidData(LaxError):
    """Input data is malformed or fails schema/domain validation (exit 1)."""

    exit_code = ExitCode.INVALID_DATA
    code = "invalid-data"


class UsageError(LaxError):
    """The command line or API call is wrong (exit 2)."""

    exit_code = ExitCode.USAGE
    code = "usage"


class SecurityError(LaxError):
    """A cryptographic or trust check failed; the input must not be used (exit 3)."""

    exit_code = ExitCode.SECURITY
    code = "security"


class TransportError(LaxError):
    """Moving files to or from a partner failed (exit 4)."""

    exit_code = ExitCode.TRANSPORT
    code = "transport"

    #: True when retrying the same operation later may succeed (timeouts, dropped links).
    transient: bool = False


class ConfigError(LaxError):
    """Home directory, keys, passphrases or partner configuration are missing or wrong (exit 5)."""

    exit_code = ExitCode.CONFIG
    code = "config"
