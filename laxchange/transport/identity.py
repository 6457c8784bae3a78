"""This party's SSH client identity: an ed25519 key in OpenSSH format, passphrase-encrypted."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import paramiko

from ..errors import ConfigError
from ..home import Home
from ..passphrase import PassphraseSource
from ..privatefiles import check_private_file, create_ssh_identity

__all__ = ["create_ssh_identity", "ensure_ssh_identity", "identity_loader", "load_ssh_identity", "public_line"]

IdentityLoader = Callable[[], paramiko.PKey]


def public_line(key: paramiko.PKey, comment: str = "laxchange") -> str:
    return f"{key.get_name()} {key.get_base64()} {comment}"


def ensure_ssh_identity(home: Home, passphrase: PassphraseSource) -> str:
    """Create the home's SSH client key if missing; return its public key line for authorized_keys."""
    path = home.ssh_client_key
    if path.exists():
        return public_line(load_ssh_identity(path, passphrase))
    return create_ssh_identity(path, passphrase("encrypt the new SSH client key", confirm=True))


def load_ssh_identity(path: Path, passphrase: PassphraseSource) -> paramiko.PKey:
    """Load an ed25519 private key, refusing files that group or others can read."""
    check_private_file(path, what="SSH client key", code="ssh-key",
                       missing_hint="run `laxchange init` or `laxchange endpoints ssh-key` to create one")
    try:
        return paramiko.Ed25519Key(filename=os.fspath(path))
    except paramiko.PasswordRequiredException:
        pass
    except (paramiko.SSHException, ValueError) as exc:
        raise ConfigError(f"cannot read SSH client key {path}: {exc}", code="ssh-key.invalid",
                          hint="it must be an ed25519 key in OpenSSH format") from exc
    secret = passphrase("unlock the SSH client key")
    try:
        return paramiko.Ed25519Key(filename=os.fspath(path), password=secret)
    except (paramiko.SSHException, ValueError) as exc:
        raise ConfigError(f"cannot unlock SSH client key {path}: wrong passphrase?", code="ssh-key.passphrase",
                          hint="check LAXCHANGE_PASSPHRASE / LAXCHANGE_PASSPHRASE_FILE") from exc


def identity_loader(path: Path, passphrase: PassphraseSource) -> IdentityLoader:
    """Load lazily and once: the key is only unlocked after the server's host key has been accepted."""
    cache: list[paramiko.PKey] = []
    lock = threading.Lock()

    def load() -> paramiko.PKey:
        with lock:  # parallel partners share one prompt
            if not cache:
                cache.append(load_ssh_identity(path, passphrase))
            return cache[0]

    return load
