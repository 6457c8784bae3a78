"""Where each partner's drop folder is, and which host key it must present.

`EndpointResolver` is the seam: today `ConfigEndpoints` reads the home's config.json; the
partner directory (signed cards) can satisfy the same protocol later without changing callers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from ..errors import ConfigError, UsageError
from ..home import Home
from ..jsonio import dumps_pretty, load_file, write_atomic

FINGERPRINT_RE = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}$")


@dataclass(frozen=True)
class Url:
    """A parsed endpoint URL: scheme "sftp" (user, host, port, path) or "file" (path)."""

    scheme: str
    path: str
    user: str = ""
    host: str = ""
    port: int = 22


@dataclass(frozen=True)
class Endpoint:
    """One partner's drop folder and the host key(s) it is pinned to."""

    party: str
    url: str
    host_key_fingerprints: tuple[str, ...] = ()
    known_hosts_file: Path | None = None
    identity: Path | None = None

    @property
    def parsed(self) -> Url:
        return parse_url(self.url)


class EndpointResolver(Protocol):
    def resolve(self, party: str) -> Endpoint: ...


def parse_url(url: str) -> Url:
    """Parse `sftp://user@host:port/path` or `file:///path`; raise UsageError otherwise."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise UsageError(f"bad file URL {url!r}", code="url.invalid", hint="use file:///absolute/path")
        return Url("file", unquote(parts.path))
    if parts.scheme == "sftp":
        try:
            port = parts.port or 22
        except ValueError:
            raise UsageError(f"bad port in {url!r}", code="url.invalid", hint="use sftp://user@host:port/path") from None
        if not parts.username or not parts.hostname:
            raise UsageError(f"SFTP URL {url!r} needs a user and a host", code="url.invalid",
                             hint="use sftp://user@host:port/path")
        if parts.password:
            raise UsageError("SFTP URLs must not carry a password", code="url.password",
                             hint="laxchange authenticates with an SSH key only")
        path = unquote(parts.path) or "."
        path = path.removeprefix("/~/")
        return Url("sftp", path, unquote(parts.username), parts.hostname, port)
    raise UsageError(f"unsupported endpoint URL {url!r}", code="url.scheme",
                     hint="use sftp://user@host:port/path or file:///path")


def check_fingerprint(fpr: str) -> str:
    fpr = fpr.strip()
    if not FINGERPRINT_RE.match(fpr):
        raise UsageError(f"{fpr!r} is not an SSH SHA256 fingerprint", code="fingerprint.invalid",
                         hint="copy it from `ssh-keygen -lf HOSTKEY.pub`: SHA256: followed by 43 base64 characters")
    return fpr


class ConfigEndpoints:
    """Endpoints stored in the home's config.json under "endpoints"."""

    def __init__(self, home: Home) -> None:
        self.home = home

    def _load(self) -> dict[str, Any]:
        path = self.home.config_file
        if not path.exists():
            return {}
        data = load_file(path)
        if not isinstance(data, dict):
            raise ConfigError(f"{path} is not a JSON object", code="config.invalid", hint="fix or remove the file")
        return data

    def _entries(self) -> dict[str, Any]:
        entries = self._load().get("endpoints", {})
        if not isinstance(entries, dict):
            raise ConfigError(f"{self.home.config_file}: \"endpoints\" is not an object", code="config.invalid",
                              hint="fix the file")
        return entries

    def resolve(self, party: str) -> Endpoint:
        entry = self._entries().get(party)
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise ConfigError(f"no transport endpoint configured for {party}", code="endpoint.missing",
                              hint=f"run `laxchange endpoints add {party} sftp://user@host:port/path "
                                   f"--host-key-fingerprint SHA256:...`")
        fprs = entry.get("host_key_fingerprints", [])
        kh = entry.get("known_hosts")
        ident = entry.get("identity")
        return Endpoint(party=party, url=entry["url"],
                        host_key_fingerprints=tuple(str(f) for f in fprs),
                        known_hosts_file=Path(kh) if kh else None,
                        identity=Path(ident) if ident else None)

    def parties(self) -> list[str]:
        return sorted(self._entries())

    def add(self, endpoint: Endpoint) -> None:
        url = parse_url(endpoint.url)
        fprs = [check_fingerprint(f) for f in endpoint.host_key_fingerprints]
        if url.scheme == "sftp" and not fprs and endpoint.known_hosts_file is None:
            raise UsageError("an SFTP endpoint needs a pinned host key", code="endpoint.unpinned",
                             hint="pass --host-key-fingerprint SHA256:... (confirmed with the partner out of band) "
                                  "or --known-hosts FILE")
        data = self._load()
        entries = data.setdefault("endpoints", {})
        entry: dict[str, Any] = {"url": endpoint.url, "host_key_fingerprints": fprs}
        if endpoint.known_hosts_file:
            entry["known_hosts"] = str(endpoint.known_hosts_file)
        if endpoint.identity:
            entry["identity"] = str(endpoint.identity)
        entries[endpoint.party] = entry
        self.home.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(self.home.config_file, dumps_pretty(data).encode("utf-8"))

    def all(self) -> list[Endpoint]:
        return [self.resolve(p) for p in self.parties()]


@dataclass
class StaticEndpoints:
    """A fixed mapping, for library callers and tests."""

    endpoints: dict[str, Endpoint] = field(default_factory=dict)

    def resolve(self, party: str) -> Endpoint:
        try:
            return self.endpoints[party]
        except KeyError:
            raise ConfigError(f"no transport endpoint configured for {party}", code="endpoint.missing",
                              hint="add the partner's endpoint first") from None


class DirectoryEndpoints:
    """The home's config.json first (a local override), else our own keyring for our own drop
    folder, else the partner's verified card.

    A card carries the partner's SFTP URL and host-key fingerprints, signed by the partner and
    accepted only with an out-of-band fingerprint, so sending to a partner needs no extra
    set-up once `partners add` has been done.
    """

    def __init__(self, home: Home, config: ConfigEndpoints | None = None) -> None:
        self.home = home
        self.config = config or ConfigEndpoints(home)

    def own(self) -> Endpoint | None:
        """Our own drop folder (where partners deliver to us), from our keyring, if it has one."""
        from ..keys import KeyStore

        store = KeyStore(self.home)
        if not store.exists():
            return None
        ring = store.ring()
        if not ring.sftp_url or not ring.host_key_fingerprints:
            return None
        return Endpoint(party=ring.party, url=ring.sftp_url, host_key_fingerprints=tuple(ring.host_key_fingerprints))

    def collect_sources(self) -> list[str]:
        """Where `collect` looks by default: configured endpoints, else our own drop folder."""
        parties = self.config.parties()
        if parties:
            return parties
        own = self.own()
        return [own.party] if own else []

    def resolve(self, party: str) -> Endpoint:
        if party in self.config.parties():
            return self.config.resolve(party)
        own = self.own()
        if own is not None and own.party == party:
            return own
        from ..trust import PartnerDirectory

        partner = PartnerDirectory(self.home).get_optional(party)
        if partner is None or not partner.sftp_url:
            what = "has no SFTP endpoint on its card" if partner is not None else "is not a known partner"
            raise ConfigError(f"{party} {what}, and no endpoint is configured for it", code="endpoint.missing",
                              hint=f"add the partner's card (`laxchange partners add`) or run "
                                   f"`laxchange endpoints add {party} sftp://user@host:port/path "
                                   f"--host-key-fingerprint SHA256:...`")
        if not partner.host_key_fingerprints:
            raise ConfigError(f"{party}'s card has an SFTP URL but no host-key fingerprint", code="endpoint.unpinned",
                              hint=f"ask the partner for a card with its host key, or pin it with "
                                   f"`laxchange endpoints add {party} URL --host-key-fingerprint SHA256:...`")
        return Endpoint(party=party, url=partner.sftp_url,
                        host_key_fingerprints=tuple(partner.host_key_fingerprints))
