"""Where each partner's drop folder is: a local override in config.json, else the signed card.

This is the composition of transport endpoints with trust (our keyring, partners' cards), so it
lives above both: the transport only sees the `Endpoint` it is handed.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from laxchange._util.jsonio import dumps_pretty, write_atomic
from laxchange.errors import ConfigError, UsageError
from laxchange.home import Home, json_object, load_home_file
from laxchange.transport.endpoints import BACKENDS, Endpoint, check_fingerprint, parse_url
from laxchange.transport.openssh import check_ssh_endpoint
from laxchange.transport.sftp import SftpSettings
from laxchange.trust import PartnerDirectory
from laxchange.trust.keystore import KeyStore, check_party

__all__ = ["ConfigEndpoints", "DirectoryEndpoints"]


def _check_config(data: Any) -> dict[str, Any]:
    """config.json: an object whose "endpoints" (if any) map party ids to entries of the right types."""
    config = json_object(data)
    entries = config.get("endpoints", {})
    if not isinstance(entries, dict):
        raise ValueError('"endpoints" is not an object')
    for party, entry in entries.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise ValueError(f"the endpoint for {party} has no URL")
        fprs = entry.get("host_key_fingerprints", [])
        if not isinstance(fprs, list) or not all(isinstance(f, str) for f in fprs):
            raise ValueError(f"the endpoint for {party}: host_key_fingerprints must be a list of strings")
        for name in ("known_hosts", "identity", "ssh_config"):
            if not isinstance(entry.get(name), str | None):
                raise ValueError(f"the endpoint for {party}: {name} must be a path")
        if entry.get("backend") not in (None, *BACKENDS):
            raise ValueError(f"the endpoint for {party}: backend must be one of {', '.join(BACKENDS)}")
    if config.get("sftp_backend") not in (None, *BACKENDS):
        raise ValueError(f'"sftp_backend" must be one of {", ".join(BACKENDS)}')
    return config


class ConfigEndpoints:
    """Endpoints stored in the home's config.json under "endpoints"."""

    def __init__(self, home: Home) -> None:
        self.home = home

    def _load(self) -> dict[str, Any]:
        path = self.home.config_file
        if not path.exists():
            return {}
        return load_home_file(path, _check_config, what="configuration file")

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
        ssh_config = entry.get("ssh_config")
        return Endpoint(party=party, url=entry["url"],
                        host_key_fingerprints=tuple(str(f) for f in fprs),
                        known_hosts_file=Path(kh) if kh else None,
                        identity=Path(ident) if ident else None,
                        backend=entry.get("backend"), ssh_config=Path(ssh_config) if ssh_config else None)

    def default_backend(self) -> str | None:
        """config.json's "sftp_backend": the SSH client for every SFTP endpoint that names none."""
        backend = self._load().get("sftp_backend")
        return str(backend) if backend else None

    def parties(self) -> list[str]:
        return sorted(self._entries())

    def add(self, endpoint: Endpoint) -> None:
        url = parse_url(endpoint.url)
        fprs = [check_fingerprint(f) for f in endpoint.host_key_fingerprints]
        if url.scheme == "sftp" and not fprs and endpoint.known_hosts_file is None:
            raise UsageError("an SFTP endpoint needs a pinned host key", code="endpoint.unpinned",
                             hint="pass --host-key-fingerprint SHA256:... (confirmed with the partner out of band) "
                                  "or --known-hosts FILE")
        if url.scheme == "sftp" and (endpoint.backend or self.default_backend() or SftpSettings().backend) == "openssh":
            check_ssh_endpoint(endpoint, error=UsageError)  # what connecting would refuse, refused now
        data = self._load()
        entries = data.setdefault("endpoints", {})
        entry: dict[str, Any] = {"url": endpoint.url, "host_key_fingerprints": fprs}
        if endpoint.known_hosts_file:
            entry["known_hosts"] = str(endpoint.known_hosts_file)
        if endpoint.identity:
            entry["identity"] = str(endpoint.identity)
        if endpoint.backend:
            entry["backend"] = endpoint.backend
        if endpoint.ssh_config:
            entry["ssh_config"] = str(endpoint.ssh_config)
        entries[endpoint.party] = entry
        self.home.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(self.home.config_file, dumps_pretty(data).encode("utf-8"))

    def remove(self, party: str) -> Endpoint:
        """Remove `party`'s override from config.json and return it; UsageError if it has none."""
        data = self._load()
        entries = data.get("endpoints", {})
        if party not in entries:
            raise UsageError(f"no endpoint override for {party} in {self.home.config_file}",
                             code="endpoint.not-configured",
                             hint="`laxchange endpoints list` shows each partner's endpoint and where it comes from; "
                                  "one from a partner's card changes only with a new card")
        removed = self.resolve(party)
        del entries[party]
        write_atomic(self.home.config_file, dumps_pretty(data).encode("utf-8"))
        return removed

    def all(self) -> list[Endpoint]:
        return [self.resolve(p) for p in self.parties()]


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
        store = KeyStore(self.home)
        if not store.exists():
            return None
        ring = store.ring()
        if not ring.sftp_url or not ring.host_key_fingerprints:
            return None
        return Endpoint(party=ring.party, url=ring.sftp_url, host_key_fingerprints=tuple(ring.host_key_fingerprints))

    def collect_sources(self) -> list[str]:
        """Where `collect` looks by default: our own drop folder, always and only.

        Endpoints are where we *send*: collecting from a partner's drop folder would take our own
        just-sent packages back out of it. Our own folder comes from our keyring, or from a config
        entry for our own party id when the keyring publishes none.
        """
        own = self.own()
        if own is not None:
            return [own.party]
        if self.home.keys.is_dir() and (me := self._own_party()) in self.config.parties():
            return [me]
        return []

    def _own_party(self) -> str | None:
        store = KeyStore(self.home)
        return store.ring().party if store.exists() else None

    def effective(self) -> list[dict[str, Any]]:
        """Every endpoint in effect: each partner's, and our own drop folder, with where it comes from.

        One row per party: `party`, `url`, `host_key_fingerprints`, `backend` (the SSH client, for
        an SFTP endpoint), `source` (config: an override
        in config.json; card: the partner's signed card; own: our keyring, where partners deliver
        to us), `card_url` when an override hides a card's URL, and `problem` when it cannot be used.
        """
        store = KeyStore(self.home)
        own_party = store.ring().party if store.exists() else None
        overrides = set(self.config.parties())
        directory = PartnerDirectory(self.home)
        partners = {p.party: p for p in directory.list()}
        rows = []
        for party in sorted(overrides | set(partners) | ({own_party} if own_party else set())):
            source = "config" if party in overrides else "own" if party == own_party else "card"
            row: dict[str, Any] = {"party": party, "source": source, "url": None, "host_key_fingerprints": []}
            if source == "own":
                ring = store.ring()
                row.update(url=ring.sftp_url, host_key_fingerprints=list(ring.host_key_fingerprints))
                own = self.resolve(party) if self.own() is not None else None
                if own is not None and own.url.startswith("sftp://"):
                    row["backend"] = own.backend or SftpSettings().backend
                if own is None:
                    row["problem"] = ("no SFTP endpoint on our card (`laxchange keys export-card --sftp-url URL "
                                      "--host-key-fingerprint SHA256:...`)" if not ring.sftp_url
                                      else "our card has no host-key fingerprint (`laxchange keys export-card "
                                           "--host-key-fingerprint SHA256:...`)")
            else:
                try:
                    ep = self.resolve(party)
                except ConfigError as exc:
                    row["problem"] = exc.message
                    if source == "card":
                        p = partners[party]
                        row.update(url=p.sftp_url, host_key_fingerprints=list(p.host_key_fingerprints))
                else:
                    row.update(url=ep.url, host_key_fingerprints=list(ep.host_key_fingerprints))
                    if ep.url.startswith("sftp://"):
                        row["backend"] = ep.backend or SftpSettings().backend
            card = partners.get(party)
            if source == "config" and card is not None and card.sftp_url and card.sftp_url != row["url"]:
                row["card_url"] = card.sftp_url
            rows.append(row)
        return rows

    def resolve(self, party: str) -> Endpoint:
        """The endpoint, with config.json's "sftp_backend" filled in where it names no backend."""
        ep = self._resolve(party)
        default = self.config.default_backend()
        return replace(ep, backend=default) if ep.backend is None and default else ep

    def _resolve(self, party: str) -> Endpoint:
        if party in self.config.parties():
            return self.config.resolve(party)
        own = self.own()
        if own is not None and own.party == party:
            return own
        partner = PartnerDirectory(self.home).get_optional(check_party(party))
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
