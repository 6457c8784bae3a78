"""This party's SSH client identity: an ed25519 key in OpenSSH format, passphrase-encrypted."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from laxchange._util.fs import write_atomic
from laxchange._util.private import check_private_file
from laxchange.errors import ConfigError
from laxchange.home import Home
from laxchange.passphrase import PassphraseSource, wrong_passphrase_hint

__all__ = ["authorized_keys_line", "create_ssh_identity", "ensure_ssh_identity", "identity_loader", "load_ssh_identity",
           "public_line", "reencrypt_ssh_identity", "ssh_identity_fingerprint"]

IdentityLoader = Callable[[], paramiko.PKey]


def public_line(key: paramiko.PKey, comment: str = "laxchange") -> str:
    return f"{key.get_name()} {key.get_base64()} {comment}"


def authorized_keys_line(line: str, party: str) -> str:
    """An OpenSSH public key line with `party` as its comment: `ssh-ed25519 AAAA... LA:919`.

    `serve-sftp --authorized-keys` knows whose key a line is only from its comment, and OpenSSH
    ignores the comment, so this one form pastes into either server's authorized_keys."""
    parts = line.split()
    if len(parts) < 2:
        raise ValueError(f"not an OpenSSH public key line: {line[:40]!r}")
    return f"{parts[0]} {parts[1]} {party}"


def create_ssh_identity(path: Path, passphrase: bytes | None, comment: str = "laxchange", *,
                        kdf_rounds: int | None = None, overwrite: bool = False) -> str:
    """Write a new ed25519 key (0600, bcrypt-KDF encrypted when a passphrase is given) and its .pub.

    Returns the public line for the server's authorized_keys. `kdf_rounds` lowers the bcrypt
    cost for tests only.
    """
    if path.exists() and not overwrite:
        raise ConfigError(f"{path} already exists", code="ssh-key.exists", hint="remove it first to replace it")
    key = Ed25519PrivateKey.generate()
    enc: serialization.KeySerializationEncryption = serialization.NoEncryption()
    if passphrase:
        enc = _encryption(passphrase, kdf_rounds)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, enc)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, private, mode=0o600)
    line = public.decode("ascii") + f" {comment}"
    write_atomic(path.with_name(path.name + ".pub"), (line + "\n").encode("ascii"), mode=0o644)
    return line


def _encryption(passphrase: bytes, kdf_rounds: int | None) -> serialization.KeySerializationEncryption:
    if kdf_rounds is not None:
        return serialization.PrivateFormat.OpenSSH.encryption_builder().kdf_rounds(kdf_rounds).build(passphrase)
    return serialization.BestAvailableEncryption(passphrase)


def reencrypt_ssh_identity(data: bytes, old: bytes, new: bytes, *, kdf_rounds: int | None = None) -> bytes | None:
    """The OpenSSH private key `data` encrypted under `new`; None if `old` does not unlock it.

    Raises ValueError if `data` is not an OpenSSH private key at all."""
    if not data.lstrip().startswith(b"-----BEGIN OPENSSH " + b"PRIVATE KEY-----"):
        raise ValueError("not an OpenSSH private key")
    try:
        key = serialization.load_ssh_private_key(data, password=old)
    except ValueError:  # a wrong passphrase shows only as a broken check inside the decrypted part
        return None
    except TypeError:  # not encrypted, but a password was given
        key = serialization.load_ssh_private_key(data, password=None)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                             _encryption(new, kdf_rounds))


def ssh_identity_fingerprint(public_line: str) -> str:
    """SHA256:... of an OpenSSH public key line, as `ssh-keygen -l` prints it."""
    blob = base64.b64decode(public_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


def ensure_ssh_identity(home: Home, passphrase: PassphraseSource) -> str:
    """Create the home's SSH client key if missing; return its public key line for authorized_keys."""
    path = home.ssh_client_key
    if path.exists():
        return public_line(load_ssh_identity(path, passphrase))
    return create_ssh_identity(path, passphrase("encrypt the new SSH client key", confirm=True))


def load_ssh_identity(path: Path, passphrase: PassphraseSource) -> paramiko.PKey:
    """Load an ed25519 private key, refusing files that group or others can read."""
    check_private_file(path, what="SSH client key", kind="ssh-key",
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
        return paramiko.Ed25519Key(filename=os.fspath(path), password=secret)  # type: ignore[arg-type]  # takes bytes
    except (paramiko.SSHException, ValueError) as exc:
        raise ConfigError(f"cannot unlock SSH client key {path}: wrong passphrase?", code="ssh-key.passphrase",
                          hint=wrong_passphrase_hint(passphrase)) from exc


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
