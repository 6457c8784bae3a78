"""This party's SSH client identity: an ed25519 key in OpenSSH format, passphrase-encrypted."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..errors import ConfigError
from ..home import Home
from ..jsonio import write_atomic
from ..passphrase import PassphraseSource

IdentityLoader = Callable[[], paramiko.PKey]


def public_line(key: paramiko.PKey, comment: str = "laxchange") -> str:
    return f"{key.get_name()} {key.get_base64()} {comment}"


def create_ssh_identity(path: Path, passphrase: bytes | None, comment: str = "laxchange") -> str:
    """Write a new ed25519 key (0600, encrypted when a passphrase is given) and its .pub; return the .pub line."""
    if path.exists():
        raise ConfigError(f"{path} already exists", code="ssh-key.exists", hint="remove it first to replace it")
    key = Ed25519PrivateKey.generate()
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, enc)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, private, mode=0o600)
    line = public.decode("ascii") + f" {comment}"
    write_atomic(path.with_name(path.name + ".pub"), (line + "\n").encode("ascii"), mode=0o644)
    return line


def ensure_ssh_identity(home: Home, passphrase: PassphraseSource) -> str:
    """Create the home's SSH client key if missing; return its public key line for authorized_keys."""
    path = home.ssh_client_key
    if path.exists():
        return public_line(load_ssh_identity(path, passphrase))
    return create_ssh_identity(path, passphrase("encrypt the new SSH client key", confirm=True))


def load_ssh_identity(path: Path, passphrase: PassphraseSource) -> paramiko.PKey:
    """Load an ed25519 private key, refusing files that group or others can read."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"SSH client key {path} does not exist", code="ssh-key.missing",
                          hint="run `laxchange endpoints ssh-key` to create one") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"SSH client key {path} is readable by others (mode {stat.S_IMODE(st.st_mode):o})",
                          code="ssh-key.permissions", hint=f"run: chmod 600 {path}")
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
