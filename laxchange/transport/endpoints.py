"""Where each partner's drop folder is, and which host key it must present.

`EndpointResolver` is the seam: the transport asks it for a party's `Endpoint` and knows
nothing of where the answer comes from (config overrides and signed partner cards are resolved
in `laxchange.exchange.endpoints`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from laxchange.errors import ConfigError, UsageError

#: the SSH clients an SFTP endpoint can be reached with (see docs/transport.md "Backends")
BACKENDS = ("paramiko", "openssh")

FINGERPRINT_RE = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")


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
    #: which SSH client makes the connection: "paramiko" (in-process) or "openssh" (the system's
    #: `ssh`); None leaves it to the home's default (config.json "sftp_backend")
    backend: str | None = None
    #: openssh only: an ssh_config file to read (proxies, jump hosts); None reads none (`-F /dev/null`)
    ssh_config: Path | None = None

    @property
    def parsed(self) -> Url:
        return parse_url(self.url)


class EndpointResolver(Protocol):
    def resolve(self, party: str) -> Endpoint: ...


def _check_path(url: str, path: str, example: str) -> str:
    """An endpoint path names one folder plainly: absolute, no `.`/`..` or empty segments (a
    single trailing slash is dropped). Checked after percent-decoding, so `%2e%2e` is `..` too."""
    if not path.startswith("/"):
        raise UsageError(f"the path {path!r} in URL {url!r} is not absolute", code="url.invalid",
                         hint=f"start the path with /, for example {example}")
    body = path[1:-1] if path.endswith("/") else path[1:]
    for segment in body.split("/") if body else []:
        if segment in (".", ".."):
            raise UsageError(f"the path {path!r} in URL {url!r} has a {segment!r} segment", code="url.invalid",
                             hint=f"name the drop folder directly, without . or .., for example {example}")
        if not segment:
            raise UsageError(f"the path {path!r} in URL {url!r} has an empty segment (//)", code="url.invalid",
                             hint=f"remove the doubled slash, for example {example}")
    return "/" + body


def parse_url(url: str) -> Url:
    """Parse `sftp://user@host:port/path` or `file:///path`; raise UsageError otherwise.

    Paths must be absolute and plain (no `.`, `..` or empty segments); `sftp://u@h/~/inbox`
    names `inbox` in the login folder, and `sftp://u@h` the login folder itself."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise UsageError(f"bad file URL {url!r}", code="url.invalid", hint="use file:///absolute/path")
        return Url("file", _check_path(url, unquote(parts.path), "file:///srv/laxchange/drop"))
    if parts.scheme == "sftp":
        try:
            port = parts.port or 22
        except ValueError:
            raise UsageError(f"bad port in {url!r}", code="url.invalid",
                             hint="use sftp://user@host:port/path") from None
        if not parts.username or not parts.hostname:
            raise UsageError(f"SFTP URL {url!r} needs a user and a host", code="url.invalid",
                             hint="use sftp://user@host:port/path")
        if parts.password:
            raise UsageError("SFTP URLs must not carry a password", code="url.password",
                             hint="laxchange authenticates with an SSH key only")
        path = unquote(parts.path)
        in_login = path.startswith("/~/")  # relative to the login folder
        if path:
            path = _check_path(url, "/" + path[3:] if in_login else path, "sftp://user@host:22/inbox")
            path = path[1:] if in_login else path
        return Url("sftp", path or ".", unquote(parts.username), parts.hostname, port)
    raise UsageError(f"unsupported endpoint URL {url!r}", code="url.scheme",
                     hint="use sftp://user@host:port/path or file:///path")


def check_fingerprint(fpr: object) -> str:
    """The one check of an SSH host-key fingerprint, for cards, config and the command line alike."""
    if not isinstance(fpr, str) or not FINGERPRINT_RE.fullmatch(fpr):
        raise UsageError(f"host-key fingerprint {fpr!r} is not of the form SHA256:<43 base64 characters>",
                         code="host-key.fingerprint-invalid",
                         hint="copy it from `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`")
    return fpr


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
