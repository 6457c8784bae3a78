"""The state directory (`--home` / `LAXCHANGE_HOME`): keys, partners, inbox, outbox, ledger."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from laxchange.errors import ConfigError

ENV_HOME = "LAXCHANGE_HOME"


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
    def config_file(self) -> Path:
        return self.root / "config.json"

    def ensure(self) -> None:
        """Create the directory tree, private to the owner."""
        for d in (self.root, self.keys, self.partners, self.inbox, self.outbox, self.quarantine):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(d, 0o700)

    def require(self) -> None:
        """Fail clearly when the home has not been initialised."""
        if not self.root.is_dir():
            raise ConfigError(
                f"laxchange home {self.root} does not exist",
                code="home.missing",
                hint="run `laxchange --home DIR init --party LA:NNN --name ...` first, or set LAXCHANGE_HOME",
            )
