"""The state directory (`--home` / `LAXCHANGE_HOME`): keys, partners, inbox, outbox, ledger."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from laxchange._util import jsonio
from laxchange.errors import ConfigError, InvalidData, SecurityError, UsageError

ENV_HOME = "LAXCHANGE_HOME"

#: What a caller needs of a home (`Home.require`): the folder to exist; to be set up (it holds a
#: keyring, config.json or the SSH client key: a transport-only home made by `endpoints add` or
#: `endpoints ssh-key` counts); or to be initialised (`laxchange init` made its keyring).
HomeLevel = Literal["exists", "set-up", "initialised"]

T = TypeVar("T")


def json_object(data: Any) -> dict[str, Any]:
    """The shape check every home file shares: a JSON object."""
    if not isinstance(data, dict):
        raise ValueError(f"it holds a JSON {type(data).__name__.replace('dict', 'object')}, not an object")
    return data


def load_home_file(path: Path, parse: Callable[[Any], T], *, what: str,
                   hint: str | None = None) -> T:
    """Read one file of a home (keyring, partner record, config, quarantine record): strict JSON,
    then `parse`, which checks its shape and builds what the caller wants. Any problem on the
    way, unreadable, truncated, not JSON, a missing field or a wrong type, is a ConfigError
    (exit 5) naming the file: the home is damaged, which is not the user's input being invalid."""
    try:
        return parse(jsonio.load_file(path))
    except (InvalidData, UsageError, SecurityError, KeyError, TypeError, ValueError, AttributeError,
            IndexError) as exc:
        if isinstance(exc, KeyError):
            why = f"the field {exc} is missing"
        elif isinstance(exc, (InvalidData, UsageError, SecurityError)):
            why = exc.message.removeprefix(f"{path}: ")
        else:
            why = str(exc) or type(exc).__name__
        raise ConfigError(f"{what} {path} is damaged: {why}", code="home.file-damaged",
                          hint=hint or f"restore {path.name} from your backup of the home") from None


def default_home() -> Path:
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "laxchange"


@dataclass(frozen=True)
class Home:
    """Paths inside one party's state directory. Nothing here touches the disk until asked."""

    root: Path

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def partners(self) -> Path:
        return self.root / "partners"

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def outbox(self) -> Path:
        return self.root / "outbox"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def ssh_client_key(self) -> Path:
        """This party's SSH client identity for SFTP (OpenSSH format, passphrase-encrypted)."""
        return self.keys / "ssh_ed25519"

    @property
    def ledger_db(self) -> Path:
        return self.root / "ledger.sqlite3"

    @property
    def run_lock(self) -> Path:
        """Held by the nightly run (`laxchange.ledger.lock`); released by the kernel if it dies."""
        return self.root / "run.lock"

    @property
    def config_file(self) -> Path:
        return self.root / "config.json"

    def ensure(self) -> None:
        """Create the directory tree, private to the owner."""
        for d in (self.root, self.keys, self.partners, self.inbox, self.outbox, self.quarantine):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(d, 0o700)

    @property
    def keyring(self) -> Path:
        """Our keys' public record, written by `laxchange init`: its presence is what makes a home initialised."""
        return self.keys / "keyring.json"

    def initialised(self) -> bool:
        return os.path.lexists(self.keyring)

    def set_up(self) -> bool:
        """Holds at least one of a home's own files (keyring, config.json, SSH client key)."""
        return any(os.path.lexists(p) for p in (self.keyring, self.config_file, self.ssh_client_key))

    def require(self, level: HomeLevel = "exists") -> None:
        """Fail clearly (exit 5) when the home is not there, or is not what `level` needs, so a
        mistyped `--home` is refused instead of read as an empty home."""
        where = f"check --home / ${ENV_HOME} (is {self.root} the right folder?)"
        if not self.root.is_dir():
            raise ConfigError(
                f"laxchange home {self.root} does not exist",
                code="home.missing",
                hint=f"run `laxchange --home DIR init --party LA:NNN --name ...` first, or {where}",
            )
        if level == "initialised" and not self.initialised():
            raise ConfigError(
                f"{self.root} is not an initialised laxchange home: it has no keys ({self.keyring} is missing)",
                code="keyring.missing",
                hint=f"run `laxchange --home {self.root} init --party LA:NNN --name ...` first, or {where}",
            )
        if level == "set-up" and not self.set_up():
            raise ConfigError(
                f"{self.root} is not a laxchange home: it has no keys, no config.json and no SSH client key",
                code="keyring.missing",
                hint=f"run `laxchange --home {self.root} init ...` (or `endpoints add` for a transport-only "
                     f"home) first, or {where}",
            )
