"""Private files on disk: keys readable by their owner only, and the SSH identity they include.

One place for the rule "refuse a private key file that group or others can access", and for
writing the OpenSSH-format ed25519 client key that both `init` and `endpoints ssh-key` create.
"""

from __future__ import annotations

import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .errors import ConfigError
from .jsonio import write_atomic


def check_private_file(path: Path, *, what: str, code: str, missing_hint: str) -> None:
    """Raise ConfigError unless `path` exists and only its owner can access it."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} is missing", code=f"{code}.missing", hint=missing_hint) from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{what} {path} is accessible by group or others (mode {stat.S_IMODE(st.st_mode):o})",
                          code=f"{code}.permissions", hint=f"run: chmod 600 {path}")


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
        enc = serialization.BestAvailableEncryption(passphrase)
        if kdf_rounds is not None:
            enc = serialization.PrivateFormat.OpenSSH.encryption_builder().kdf_rounds(kdf_rounds).build(passphrase)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, enc)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, private, mode=0o600)
    line = public.decode("ascii") + f" {comment}"
    write_atomic(path.with_name(path.name + ".pub"), (line + "\n").encode("ascii"), mode=0o644)
    return line
