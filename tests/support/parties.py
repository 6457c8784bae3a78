"""Test helpers: parties with throwaway keys (scrypt work factor 2^10), a fixed clock, records."""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from laxchange import package, samples
from laxchange.clock import FixedClock
from laxchange.exchange import Party as ExchangeParty
from laxchange.exchange.endpoints import ConfigEndpoints
from laxchange.home import Home
from laxchange.ledger.db import Ledger
from laxchange.transport import Endpoint, LocalFolderTransport, RetryPolicy, Runner, StaticEndpoints
from laxchange.trust import PartnerDirectory, build_card
from laxchange.trust.keystore import KeyStore

if TYPE_CHECKING:
    from tests.support.sshd import Sshd

T0 = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
PASSPHRASE = b"test passphrase, not a secret"
WORK_FACTOR = 10
REPO = Path(__file__).resolve().parents[2]


def _shared_dir() -> Path:
    """The project's shared folder (test vectors): $LAXCHANGE_SHARED, else ../shared beside the
    repository, else /work/shared (where CI's clone may live elsewhere). Absence fails the tests."""
    candidates = [os.environ.get("LAXCHANGE_SHARED"), str(REPO.parent / "shared"), "/work/shared"]
    for c in candidates:
        if c and (Path(c) / "vectors").is_dir():
            return Path(c)
    return REPO.parent / "shared"


SHARED = _shared_dir()


def passphrase(purpose: str, *, confirm: bool = False) -> bytes:
    return PASSPHRASE


@dataclass
class Party:
    party: str
    home: Home
    store: KeyStore
    directory: PartnerDirectory
    clock: FixedClock

    def card(self) -> tuple[dict[str, Any], str]:
        return build_card(self.store)

    def trust(self, other: Party) -> None:
        card, fpr = other.card()
        self.directory.add(card, fingerprint=fpr)

    def pack(self, doc: dict[str, Any], to: str, **kw: Any) -> bytes:
        buf = io.BytesIO()
        package.pack(doc, message_type=kw.pop("message_type", "pep-transfer"), recipient=to, keystore=self.store,
                     directory=self.directory, out=buf, clock=self.clock, **kw)
        return buf.getvalue()

    def open(self, data: bytes, **kw: Any) -> package.Opened:
        return package.open_package(io.BytesIO(data), keystore=self.store, directory=self.directory,
                                    clock=self.clock, **kw)


def make_party(root: Path, party: str, name: str, clock: FixedClock | None = None, **init: Any) -> Party:
    clock = clock or FixedClock(T0)
    home = Home(root / party.replace(":", "_"))
    store = initialise(home, party, name, clock, **init)
    return Party(party, home, store, PartnerDirectory(home, clock=clock), clock)


def initialise(home: Home, party: str = "LA:919", name: str = "Example Council (fictional)",
               clock: FixedClock | None = None, **init: Any) -> KeyStore:
    """`laxchange init` in `home` (which may already hold a ledger), with throwaway keys."""
    store = KeyStore(home, passphrase=passphrase, clock=clock or FixedClock(T0), work_factor=WORK_FACTOR,
                     ssh_kdf_rounds=1)
    store.init(party, name, **init)
    return store


def world(root: Path, **init: Any) -> tuple[Party, Party, Party]:
    """A council A and a school B that trust each other, and a council C that trusts both."""
    clock = FixedClock(T0)
    a = make_party(root, "LA:919", "Example Council", clock, **init)
    b = make_party(root, "URN:123456", "Example School", clock, **init)
    c = make_party(root, "LA:920", "Other Council", clock)
    a.trust(b)
    b.trust(a)
    c.trust(a)
    c.trust(b)
    a.trust(c)
    return a, b, c


def over_drops(p: Party, drops: dict[str, Path], ledger: Ledger | None = None) -> ExchangeParty:
    """`p` as the library's Party, reaching each party of `drops` through its local drop folder
    (one attempt per operation: a test sees the first failure)."""
    endpoints = StaticEndpoints({k: Endpoint(k, f"file://{v}") for k, v in drops.items()})
    return ExchangeParty(home=p.home, keystore=p.store, directory=p.directory, clock=p.clock,
                         transports=Runner(endpoints, LocalFolderTransport, RetryPolicy(attempts=1)), ledger=ledger)


def drop_world(tmp: Path) -> tuple[Party, Party, dict[str, Path]]:
    """A council (LA:919) and a school (URN:123456) trusting each other, and a drop folder each."""
    a = make_party(tmp, "LA:919", "Example Council")
    b = make_party(tmp, "URN:123456", "Example School", a.clock)
    a.trust(b)
    b.trust(a)
    drops = {a.party: tmp / "drop-a", b.party: tmp / "drop-b"}
    for d in drops.values():
        d.mkdir()
    return a, b, drops


def drop_pair(tmp: Path) -> tuple[ExchangeParty, ExchangeParty]:
    """`drop_world`'s council and school as the library's Parties (`over_drops`)."""
    a, b, drops = drop_world(tmp)
    return over_drops(a, drops), over_drops(b, drops)


def placement_world(tmp: Path) -> tuple[Party, Party, Party, dict[str, Any]]:
    """A placing council, the host council and the placement school of one sample record, each
    trusting the others and reaching them through local drop folders under `tmp/drop`."""
    rec = samples.education_record(11)
    placing, host = rec["placement"]["placing_la"], rec["placement"]["host_la"]
    vsh = make_party(tmp, f"LA:{placing}", "Placing VS")
    hvs = make_party(tmp, f"LA:{host}", "Host VS", vsh.clock)
    school = make_party(tmp, f"URN:{rec['school']['urn']}", "School", vsh.clock)
    for a in (vsh, hvs, school):
        for b in (vsh, hvs, school):
            if a is not b:
                a.trust(b)
                ConfigEndpoints(a.home).add(Endpoint(b.party, f"file://{tmp / 'drop' / b.party.replace(':', '_')}"))
    return vsh, hvs, school, rec


def council_and_school(tmp: Path, server: Sshd | None = None, *, council: str = "LA:919",
                       school: str = "URN:123456") -> tuple[Party, Party, dict[str, Path]]:
    """A fictional council and school trusting each other, each with its drop folder under
    `tmp/drops`: on `server` (a real sshd, their SSH keys authorised there), or local folders."""
    drops = {who: tmp / "drops" / who.replace(":", "_") for who in (council, school)}
    made = []
    for who, name in ((council, "Example Council (fictional)"), (school, "Example School (fictional)")):
        drops[who].mkdir(parents=True)
        init = {"sftp_url": server.url(drops[who]), "host_key_fingerprints": [server.fingerprint]} if server else {}
        p = make_party(tmp / "homes", who, name, **init)
        if server is not None:
            with server.authorized.open("a") as fh:
                fh.write(Path(str(p.home.ssh_client_key) + ".pub").read_text())
        made.append(p)
    a, b = made
    a.trust(b)
    b.trust(a)
    return a, b, drops


def record(seed: int = 1, kind: str = "pep-transfer") -> dict[str, Any]:
    return samples.generate(kind, seed, 1)[0]


NODE_DIR = REPO / "tests" / "interop" / "node"


def node_oracle(*args: str, identity: str | None = None, env_extra: dict[str, str] | None = None) -> str:
    """Run the npm age-encryption helper (tests/interop/node/age_oracle.mjs); fail if unavailable.
    `env_extra` sets its other inputs (AGE_PASSPHRASE, AGE_IDENTITY_FILE)."""
    assert shutil.which("node"), "node is required for the post-quantum interop tests"
    assert (NODE_DIR / "node_modules" / "age-encryption").is_dir(), "run ./scripts/setup (npm ci in tests/interop/node)"
    env = {**os.environ, **(env_extra or {})}
    if identity is not None:
        env["AGE_IDENTITY"] = identity
    r = subprocess.run(["node", str(NODE_DIR / "age_oracle.mjs"), *args], capture_output=True, text=True, env=env,
                       timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    return r.stdout
