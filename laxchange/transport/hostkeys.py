"""Host key pinning: the server must present a key we were told about out of band.

Never trust on first use. Pins are OpenSSH-style SHA256 fingerprints (from the partner's card)
or an OpenSSH known_hosts file. The check runs after key exchange and before we authenticate,
so a wrong server never sees our identity.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import paramiko

from laxchange.errors import TransportError
from laxchange.transport.endpoints import Endpoint


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's `SHA256:<base64 without padding>` fingerprint of a public key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def _known_hosts_keys(path: Path, host: str, port: int) -> list[paramiko.PKey]:
    try:
        if any(line.lstrip().startswith("@") for line in path.read_text(errors="replace").splitlines()):
            # @revoked and @cert-authority change what a match means; paramiko ignores or trips on
            # them, so refuse rather than risk accepting a revoked key.
            raise TransportError(f"known_hosts file {path} uses @revoked or @cert-authority markers, which "
                                  "laxchange does not interpret", code="host-key.known-hosts",
                                  hint="pin the host key fingerprint instead (--host-key-fingerprint SHA256:...)")
        hk = paramiko.HostKeys(str(path))
    except TransportError:
        raise
    except Exception as exc:  # paramiko raises several unrelated types for a malformed line
        raise TransportError(f"cannot read known_hosts file {path}: {exc}", code="host-key.known-hosts",
                              hint="check the path in the endpoint configuration") from exc
    lookup = host if port == 22 else f"[{host}]:{port}"
    entry = hk.lookup(lookup)
    return list(entry.values()) if entry else []


def pinned_fingerprints(endpoint: Endpoint, host: str, port: int) -> set[str]:
    """Every fingerprint this endpoint is pinned to (card or config, and its known_hosts file);
    none is an error (never trust on first use), raised before anything is sent to the server."""
    pinned = set(endpoint.host_key_fingerprints)
    if endpoint.known_hosts_file is not None:
        pinned.update(fingerprint(k) for k in _known_hosts_keys(endpoint.known_hosts_file, host, port))
    if not pinned:
        raise TransportError(
            f"no pinned host key for {endpoint.party} ({host}:{port}); refusing to connect",
            code="host-key.unpinned",
            hint="add the partner's host key fingerprint, confirmed out of band: "
                 "laxchange endpoints add PARTY URL --host-key-fingerprint SHA256:...")
    return pinned


def check_presented(endpoint: Endpoint, host: str, port: int, got: str) -> str:
    """Return `got` (the fingerprint the server presented) if it is pinned; else raise (never transient)."""
    pinned = pinned_fingerprints(endpoint, host, port)
    if got not in pinned:
        err: TransportError = TransportError(
            f"host key of {host}:{port} for {endpoint.party} is not the pinned key "
            f"(server presented {got}); refusing to connect before authenticating",
            code="host-key.mismatch",
            hint="the server may have been replaced or attacked. Confirm the new fingerprint with the partner "
                 "out of band before updating the endpoint",
            details={"presented": got, "pinned": sorted(pinned)})
        raise err
    return got


def verify_host_key(endpoint: Endpoint, host: str, port: int, key: paramiko.PKey) -> str:
    """Return the fingerprint if `key` is pinned for this endpoint; else raise (never transient)."""
    return check_presented(endpoint, host, port, fingerprint(key))
