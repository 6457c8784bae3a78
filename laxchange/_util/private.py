"""Private files on disk: readable by their owner only, or refused.

One place for the rule "refuse a private key or passphrase file that group or others can access".
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Literal

from laxchange.errors import ConfigError

__all__ = ["PrivateKind", "check_private_file"]

PrivateKind = Literal["key", "ssh-key", "passphrase"]

#: (missing, permissions) reason codes per kind of private file, spelled out for the code registry.
_CODES: dict[str, tuple[str, str]] = {
    "key": ("key.missing", "key.permissions"),
    "ssh-key": ("ssh-key.missing", "ssh-key.permissions"),
    "passphrase": ("passphrase.missing", "passphrase.permissions"),
}


def check_private_file(path: Path, *, what: str, kind: PrivateKind, missing_hint: str) -> None:
    """Raise ConfigError unless `path` exists and only its owner can access it."""
    missing, loose = _CODES[kind]
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} is missing", code=missing, hint=missing_hint) from None
    except OSError as exc:  # a folder on the way we may not enter: said, not an internal error
        raise ConfigError(f"{what} {path} cannot be reached: {exc.strerror or exc}", code="file.permission",
                          hint="check the permissions of the file and of the folders above it") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{what} {path} is accessible by group or others (mode {stat.S_IMODE(st.st_mode):o})",
                          code=loose, hint=f"run: chmod 600 {path}")
