"""`laxchange doctor`: is this home healthy, and will tonight's run work?

Each check looks at one thing a council's IT team would otherwise find out about from a failed
run or a partner's phone call, and says what to do about it: the home itself, the permissions of
its key files and folders, our keys and partners' cards expiring, every partner's SFTP server
(reachable, presenting the pinned host key), our own drop folder (writable), servers that still
accept only our previous SSH key during a `keys rotate --ssh` overlap, temporary uploads
left where no later run will remove them, the ledger (SQLite's integrity check, schema version),
the audit chain, free disk space and the clock.

Nothing here changes the home: the ledger is opened read-only, partners' servers are only
connected to (their host key checked, no authentication, so no passphrase is needed for them),
and the one write, a hidden test file in our own drop folder, is removed at once. The network
checks run in parallel with a short timeout, so one dead server costs seconds, not minutes.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import shutil
import stat
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from laxchange._util import timefmt
from laxchange._util.threads import thread_pool
from laxchange.clock import Clock, SystemClock
from laxchange.errors import ConfigError, ExitCode, LaxError
from laxchange.exchange import DirectoryEndpoints
from laxchange.exchange.ssh_logins import previous_only
from laxchange.exchange.ssh_logins import warning as ssh_warning
from laxchange.home import Home
from laxchange.ledger import LedgerHealth, inspect_ledger
from laxchange.passphrase import PassphraseSource, default_passphrase_source, source_of
from laxchange.transport import Endpoint, SftpSettings, Transport, check_endpoint, part_journal, transport_factory
from laxchange.transport.openssh import PQ_KEX, kex_preference, ssh_binary, ssh_version
from laxchange.trust import ENCRYPTION, SIGNING, KeyStore, Partner, PartnerDirectory
from laxchange.trust.keystore import EXPIRY_WARNING_DAYS

__all__ = ["MOUNTS", "NETWORK_FILESYSTEMS", "Check", "Limits", "Report", "run_checks"]

Severity = Literal["info", "warning", "error"]

#: the kernel's mount table (Linux): which file system the home is on
MOUNTS = Path("/proc/self/mounts")
#: file systems over a network, where SQLite's write-ahead log and `flock` cannot be relied on
NETWORK_FILESYSTEMS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "afs", "ceph", "glusterfs",
                                 "fuse.sshfs", "fuse.glusterfs", "fuse.cephfs", "fuse.s3fs", "davfs", "fuse.davfs"})
#: Problems named in one message before "and N more" (the details list all of them).
_SHOWN = 5


@dataclass(frozen=True)
class Check:
    """One check's result: `ok`, or a problem of `severity` warning or error with a `hint` (the fix)."""

    id: str
    ok: bool
    severity: Severity
    message: str
    hint: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "ok": self.ok, "severity": self.severity, "message": self.message,
                "hint": self.hint, "details": self.details}


def _ok(cid: str, message: str, **details: Any) -> Check:
    return Check(cid, True, "info", message, None, details)


def _problem(cid: str, severity: Severity, message: str, hint: str | None, **details: Any) -> Check:
    return Check(cid, False, severity, message, hint, details)


def _from_error(cid: str, exc: LaxError, prefix: str = "") -> Check:
    return _problem(cid, "error", prefix + exc.message, exc.hint, code=exc.code)


@dataclass(frozen=True)
class Limits:
    """The thresholds, as parameters (tests and cautious operators change them)."""

    #: keys (ours, and on partners' cards) expiring this soon with nothing to replace them
    expiring_within: dt.timedelta = dt.timedelta(days=EXPIRY_WARNING_DAYS)
    #: free space in the home's file system: below `low_disk` a warning, below `critical_disk` an error
    low_disk: int = 1_000_000_000
    critical_disk: int = 200_000_000
    #: how far our clock may be behind the newest time the home recorded, or differ from our SFTP server's
    clock_slack: dt.timedelta = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Report:
    home: Path
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def exit_code(self) -> int:
        """5 when there is no usable home (as every other command says), 10 when any check found a
        problem (warnings too: each needs doing), else 0."""
        if self.checks and self.checks[0].id == "home" and not self.checks[0].ok:
            return ExitCode.CONFIG
        return ExitCode.OK if self.ok else ExitCode.PARTIAL

    def to_dict(self) -> dict[str, Any]:
        problems = [c for c in self.checks if not c.ok]
        return {"home": str(self.home), "checks": [c.to_dict() for c in self.checks],
                "errors": sum(c.severity == "error" for c in problems),
                "warnings": sum(c.severity == "warning" for c in problems), "exit_code": self.exit_code}


Reach = Callable[[Endpoint, SftpSettings], str | None]
TransportFactory = Callable[[Endpoint], Transport]


def run_checks(home: Home, *, clock: Clock | None = None, passphrase: PassphraseSource | None = None,
               timeout: float = 5.0, limits: Limits | None = None, reach: Reach = check_endpoint,
               transports: TransportFactory | None = None, mounts: Path = MOUNTS) -> Report:
    """Run every check on `home`. `timeout` bounds each step of each connection (seconds).

    `reach(endpoint, settings)` checks a partner's server (default: connect and check the host
    key); `transports` makes the transport for our own drop folder (default: SFTP with the home's
    SSH key, unlocked with `passphrase`); `mounts` is the mount table in /proc/self/mounts' form.
    Never raises for what it finds: a problem is a check."""
    clock = clock or SystemClock()
    limits = limits or Limits()
    passphrase = _asked_once(passphrase or default_passphrase_source())
    settings = SftpSettings(timeout=timeout)
    first = _home(home)
    if not first.ok:
        return Report(home.root, [first])
    now = clock.now()
    store = KeyStore(home, passphrase=passphrase, clock=clock)
    directory = PartnerDirectory(home, clock=clock)
    endpoints = DirectoryEndpoints(home)
    factory = transports or transport_factory(home, passphrase, settings)
    with thread_pool(8, "laxchange-doctor") as pool:
        remote = _start_network(pool, endpoints, directory, settings, reach, factory)
        checks = [first, _guard("permissions.keys", lambda: _key_files(store)),
                  _guard("permissions.home", lambda: _home_files(home, store)),
                  _guard("keys.usable", lambda: _keys_usable(store, now)),
                  _guard("keys.unlock", lambda: _keys_unlock(store, now, passphrase)),
                  _guard("keys.expiry", lambda: _keys_expiry(store, now, limits)),
                  _guard("partners.keys", lambda: _partner_keys(directory, now, limits)),
                  _guard("ssh-client", lambda: _ssh_client(endpoints))]
        health, ledger_checks = _ledger(home)
        disk = _guard("disk", lambda: _disk(home, limits))
        filesystem = _guard("filesystem", lambda: _filesystem(home, mounts))
        leftovers = _guard("uploads.leftover", lambda: _leftover_uploads(home, endpoints))
        network = [(cid, future.result()) for cid, future in remote]
    drop = next((c for cid, c in network if cid == "drop-folder"), None)
    server_time = drop.details.get("server_time") if drop is not None else None
    rotation = _guard("keys.ssh-rotation", lambda: _ssh_rotation(store, directory, drop))
    clock_check = _guard("clock", lambda: _clock(store, health, now, server_time, limits))
    return Report(home.root, [*checks, *(c for _, c in network), rotation, leftovers, *ledger_checks, disk,
                              filesystem, clock_check])


def _guard(cid: str, run: Callable[[], Check]) -> Check:
    """A check that meets a LaxError (a damaged file, say) reports it instead of stopping the others."""
    try:
        return run()
    except LaxError as exc:
        return _from_error(cid, exc)


def _listing(items: list[str]) -> str:
    more = len(items) - _SHOWN
    return ", ".join(items[:_SHOWN]) + (f" and {more} more" if more > 0 else "")


# -- the home ---------------------------------------------------------------------------------

def _home(home: Home) -> Check:
    try:
        home.require("initialised")
        ring = KeyStore(home).ring()
    except ConfigError as exc:
        return _from_error("home", exc)
    return _ok("home", f"{home.root}: {ring.party} ({ring.name})", party=ring.party, name=ring.name)


def _mode_problems(path: Path, st: os.stat_result, want: int) -> list[str]:
    found = []
    if stat.S_IMODE(st.st_mode) & 0o077:
        found.append(f"mode {stat.S_IMODE(st.st_mode):o}, not {want:o}")
    if st.st_uid != os.geteuid():
        found.append(f"owned by uid {st.st_uid}, not {os.geteuid()} (this account)")
    return found


def _fix(items: list[tuple[Path, list[str], int]], home: Home) -> str:
    """chmod (and chown) lines for the paths found, or one recursive fix for many."""
    steps = []
    if any(any(w.startswith("owned") for w in why) for _, why, _ in items):
        steps.append(f"run laxchange as the account that owns {home.root}, or `chown -R` the home to it")
    loose = [(p, mode) for p, why, mode in items if any(w.startswith("mode") for w in why)]
    if len(loose) > 3:
        steps.append(f"chmod -R go-rwx {home.root}")
    else:
        for mode in sorted({m for _, m in loose}, reverse=True):
            steps.append(f"chmod {mode:o} " + " ".join(str(p) for p, m in loose if m == mode))
    return "; ".join(steps)


def _key_files(store: KeyStore) -> Check:
    """Private key files: 0600 and ours, or laxchange refuses them (and the nightly run fails)."""
    bad: list[tuple[Path, list[str], int]] = []
    files = store.private_files()
    for path in files:
        why = _mode_problems(path, path.stat(), 0o600)
        if why:
            bad.append((path, why, 0o600))
    if not bad:
        return _ok("permissions.keys", f"{len(files)} private key files, each 0600 and ours", files=len(files))
    named = [f"{p.relative_to(store.home.root)} ({', '.join(why)})" for p, why, _ in bad]
    return _problem("permissions.keys", "error",
                    f"private key files readable by others or not ours, which laxchange refuses to use: "
                    f"{_listing(named)}", _fix(bad, store.home),
                    files=[{"path": str(p), "problems": why} for p, why, _ in bad])


def _home_files(home: Home, store: KeyStore) -> Check:
    """Everything else in the home is private too (folders 0700, files 0600): it holds the ledger and,
    in received/, decrypted records. Public keys (*.pub) are meant to be shared and are left alone."""
    skip = {str(p) for p in store.private_files()}
    bad: list[tuple[Path, list[str], int]] = []
    count = 0
    for top, dirs, files in os.walk(home.root):
        base = Path(top)
        for name, want in [*((d, 0o700) for d in dirs), *((f, 0o600) for f in files)]:
            path = base / name
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode) or name.endswith(".pub") or str(path) in skip:
                continue
            count += 1
            why = _mode_problems(path, st, want)
            if why:
                bad.append((path, why, want))
    root_why = _mode_problems(home.root, home.root.stat(), 0o700)
    if root_why:
        bad.insert(0, (home.root, root_why, 0o700))
    if not bad:
        return _ok("permissions.home", f"the home and its {count} folders and files are private (0700 / 0600) "
                                       "and ours", entries=count)
    named = [f"{p.relative_to(home.root) if p != home.root else p} ({', '.join(why)})" for p, why, _ in bad]
    return _problem("permissions.home", "error",
                    f"not private to this account (the home holds the ledger and decrypted records): "
                    f"{_listing(named)}", _fix(bad, home),
                    paths=[{"path": str(p), "problems": why} for p, why, _ in bad])


# -- keys and cards ---------------------------------------------------------------------------

def _keys_usable(store: KeyStore, now: dt.datetime) -> Check:
    ring = store.ring()
    states = store.key_states(now)
    problems: list[str] = []
    hints: list[str] = []
    missing = [k for k in ring.keys if states[k.kid]["status"] == "missing-private-file"]
    if missing:
        problems.append("private key files missing: " + _listing([f"{k.use} key {k.kid}" for k in missing]))
        hints.append(f"restore {', '.join(f'keys/{k.kid}.age' for k in missing[:_SHOWN])} from your backup of the "
                     "home (without them, what partners sent to those keys cannot be opened)")
    for use, why in ((ENCRYPTION, "partners cannot encrypt to us"), (SIGNING, "we cannot sign packages or cards")):
        if not ring.keys_valid_at(now, use):
            problems.append(f"no {use} key is valid now: {why}")
            hints.append("run `laxchange keys rotate`, then send the new card to every partner")
    ssh = [s for s in store.ssh_key_states(now) if s["status"] == "missing-private-file"]
    if ssh:
        problems.append(f"the SSH client key {store.home.ssh_client_key} is missing")
        hints.append("restore it from your backup of the home (partners' servers know its public key)")
    if problems:
        return _problem("keys.usable", "error", "; ".join(problems), "; ".join(dict.fromkeys(hints)),
                        missing=[k.kid for k in missing])
    valid = ring.keys_valid_at(now)
    return _ok("keys.usable", f"{len(valid)} keys valid now, each with its private file: " + ", ".join(
        f"{k.use} {k.alg} until {k.not_after or 'no end'}" for k in valid), keys=[k.kid for k in valid])


class _AskedOnce:
    """A passphrase source that asks its source once, whoever asks first (the key files here, the
    SSH key in a network check's thread), and gives the same passphrase after: one prompt, not
    one per check. Keeps the source's `used` for the wrong-passphrase hint."""

    def __init__(self, source: PassphraseSource) -> None:
        self.source = source
        self._lock = threading.Lock()
        self._secret: bytes | None = None

    @property
    def used(self) -> str | None:
        return source_of(self.source)

    def __call__(self, purpose: str, /, *, confirm: bool = False) -> bytes:
        with self._lock:
            if self._secret is None:
                self._secret = self.source(purpose, confirm=confirm)
            return self._secret


def _asked_once(source: PassphraseSource) -> PassphraseSource:
    return source if isinstance(source, _AskedOnce) else _AskedOnce(source)


def _keys_unlock(store: KeyStore, now: dt.datetime, passphrase: PassphraseSource) -> Check:
    """Does the passphrase the nightly job would use open the private keys valid now? `keys.usable`
    sees the files; only opening them shows a wrong passphrase, or a home left split between two
    by an interrupted `keys passphrase`, before the night does."""
    ring = store.ring()
    valid = [k for k in ring.keys_valid_at(now) if k.use in (SIGNING, ENCRYPTION)]
    try:
        for k in valid:
            if k.use == SIGNING:
                store.signers(now)
            else:
                store.identity(k.kid)
    except ConfigError as exc:
        if exc.code in ("key.missing", "key.permissions"):  # said once, by keys.usable or permissions.keys
            return _ok("keys.unlock", f"not tried: {exc.message} (above)")
        raise
    where = source_of(passphrase)
    return _ok("keys.unlock", f"the passphrase opens the {len(valid)} private keys valid now"
               + (f" (read from {where})" if where else ""), keys=[k.kid for k in valid])


def _keys_expiry(store: KeyStore, now: dt.datetime, limits: Limits) -> Check:
    soon = store.expiring(limits.expiring_within, at=now)
    days = limits.expiring_within.days
    if not soon:
        return _ok("keys.expiry", f"none of our keys expires within {days} days without a successor")
    first = min(k.not_after or "" for k in soon)
    return _problem("keys.expiry", "warning",
                    "our keys expire soon and nothing replaces them: " + _listing(
                        [f"{k.use} key {k.kid} ({k.alg}) on {k.not_after}" for k in soon]),
                    f"run `laxchange keys rotate` before {first}, then send the new card to every partner",
                    keys=[{"kid": k.kid, "use": k.use, "not_after": k.not_after} for k in soon])


def _partner_keys(directory: PartnerDirectory, now: dt.datetime, limits: Limits) -> Check:
    partners = directory.list()
    errors: list[str] = []
    warnings: list[str] = []
    found: list[dict[str, Any]] = []
    for p in partners:
        for use, why in ((ENCRYPTION, "we cannot send to it"), (SIGNING, "nothing it sends can be verified")):
            if not p.keys_valid_at(now, use):
                errors.append(f"{_who(p)} has no {use} key valid now ({why})")
                found.append({"party": p.party, "problem": f"no-{use}-key"})
        for k in p.expiring(now, limits.expiring_within):
            warnings.append(f"{_who(p)}'s {k.use} key expires on {k.not_after}")
            found.append({"party": p.party, "problem": "expiring", "kid": k.kid, "not_after": k.not_after})
    if not partners:
        return _ok("partners.keys", "no partners yet (`laxchange partners add CARD --fingerprint FPR`)")
    if not errors and not warnings:
        cards = "1 partner's card" if len(partners) == 1 else f"{len(partners)} partners' cards"
        return _ok("partners.keys", f"{cards}: every key valid beyond {limits.expiring_within.days} days or "
                                    "replaced", partners=len(partners))
    parties = list(dict.fromkeys(f["party"] for f in found))
    return _problem("partners.keys", "error" if errors else "warning", _listing(errors + warnings),
                    f"ask {_listing(parties)} for a fresh card (with their new keys), then `laxchange partners add "
                    "CARD` (a card signed by their current key needs no new fingerprint)", partners=found)


def _who(p: Partner) -> str:
    return f"{p.party} ({p.name})"


# -- partners' servers and our drop folder ------------------------------------------------------

def _start_network(pool: ThreadPoolExecutor, endpoints: DirectoryEndpoints, directory: PartnerDirectory,
                   settings: SftpSettings, reach: Reach,
                   factory: TransportFactory) -> list[tuple[str, Future[Check]]]:
    """Submit one check per partner endpoint and one for our own drop folder; results in listing order."""
    started: list[tuple[str, Future[Check]]] = []
    try:
        rows = endpoints.effective()
        own = endpoints.collect_sources()
    except LaxError as exc:
        failed: Future[Check] = Future()
        failed.set_result(_from_error("endpoints", exc))
        return [("endpoints", failed)]
    names = {p.party: p.name for p in _partners_or_none(directory)}
    me = KeyStore(endpoints.home).ring().party
    for row in rows:
        if row["party"] == me:  # our own drop folder (from our card, or a config entry): checked below
            continue
        cid = f"endpoint.{row['party']}"
        started.append((cid, pool.submit(_guard, cid, functools.partial(_endpoint, endpoints, row, names, settings,
                                                                         reach))))
    started.append(("drop-folder", pool.submit(_guard, "drop-folder", lambda: _drop_folder(endpoints, own, factory))))
    return started


def _partners_or_none(directory: PartnerDirectory) -> list[Partner]:
    try:
        return directory.list()
    except LaxError:  # reported by partners.keys
        return []


def _endpoint(endpoints: DirectoryEndpoints, row: dict[str, Any], names: dict[str, str], settings: SftpSettings,
              reach: Reach) -> Check:
    party = row["party"]
    who = f"{party} ({names[party]})" if party in names else party
    cid = f"endpoint.{party}"
    if row.get("problem"):
        return _problem(cid, "error", f"{who}: {row['problem']}",
                        f"ask {who} for a card with its SFTP endpoint and host key, or pin one with `laxchange "
                        f"endpoints add {party} sftp://user@host:port/path --host-key-fingerprint SHA256:...`",
                        party=party)
    ep = endpoints.resolve(party)
    try:
        fpr = reach(ep, settings)
    except LaxError as exc:
        hint = exc.hint or ""
        if exc.code in ("ssh.connect-failed", "ssh.handshake-failed"):
            hint = (f"{hint}; if it stays down, contact {who}: `laxchange endpoints list` shows where its URL "
                    "comes from (its card, or our config.json)").lstrip("; ")
        return _problem(cid, "error", f"{who}: {exc.message}", hint or None, party=party, url=ep.url, code=exc.code,
                        **({"presented": exc.details["presented"]} if "presented" in exc.details else {}))
    where = ep.parsed
    if fpr is None:
        return _ok(cid, f"{who}: folder {where.path} is there", party=party, url=ep.url)
    return _ok(cid, f"{who}: {where.host}:{where.port} reachable, host key {fpr} is the pinned one", party=party,
               url=ep.url, host_key_fingerprint=fpr)


def _drop_folder(endpoints: DirectoryEndpoints, own: list[str], factory: TransportFactory) -> Check:
    if not own:
        return _problem("drop-folder", "warning",
                        "we have no drop folder of our own: partners cannot deliver to us, nor send us receipts",
                        "publish one on our card: `laxchange keys export-card --sftp-url sftp://user@host:22/inbox "
                        "--host-key-fingerprint SHA256:... -o card.json`, and send the card to every partner")
    ep = endpoints.resolve(own[0])
    try:
        with factory(ep) as t:
            mtime = t.probe()
        previous = bool(getattr(t, "used_previous_identity", False))  # an SFTP login: which of our keys it took
    except ConfigError as exc:
        if exc.code == "passphrase.unavailable":
            return _problem("drop-folder", "warning", f"not checked: {exc.message} (the login to it needs our SSH key)",
                            exc.hint, url=ep.url)
        return _from_error("drop-folder", exc, prefix=f"our drop folder {ep.url}: ")
    except LaxError as exc:
        return _problem("drop-folder", "error", f"our drop folder {ep.url}: {exc.message}", exc.hint, url=ep.url,
                        code=exc.code)
    return _ok("drop-folder", f"our drop folder {ep.url} is writable (a test file was written and removed)",
               url=ep.url, server_time=mtime, used_previous_ssh_key=previous)


def _ssh_rotation(store: KeyStore, directory: PartnerDirectory, drop: Check | None) -> Check:
    """During a `keys rotate --ssh` overlap: servers that took only our previous SSH key, which fail
    once `keys prune` destroys it. Our own drop folder as `drop-folder` just logged in to it; the
    partners' (never logged in to here) as the last nightly run found them (`exchange.ssh_logins`)."""
    ring = store.ring()
    if not ring.ssh_previous_public_key:
        return _ok("keys.ssh-rotation", "no SSH key rotation under way")
    seen: dict[str, str | None] = dict(previous_only(store.home, ring))
    if drop is not None and drop.ok and "used_previous_ssh_key" in drop.details:
        if drop.details["used_previous_ssh_key"]:
            seen[ring.party] = None  # just now, by the drop-folder check
        else:
            seen.pop(ring.party, None)
    until = ring.ssh_previous_until or "the end of the overlap"
    if not seen:
        return _ok("keys.ssh-rotation", f"SSH key rotation under way until {until}: every server the last nightly "
                   "run (and this check, for our drop folder) logged in to accepted our new key", until=until)
    names = {p.party: p.name for p in _partners_or_none(directory)}
    found = [ssh_warning(ring, party, names.get(party), at) for party, at in sorted(seen.items())]
    reason = found[0]["code"]  # ssh.previous-key-only, as each server's entry gives it
    shown = [f"our own drop folder's server ({w['party']})" if w["party"] == ring.party
             else f"{w['party']} ({w['name']})" if w["name"] else w["party"] for w in found]
    return _problem("keys.ssh-rotation", "warning",
                    f"{_listing(shown)} accepted only our previous SSH key; it is pruned on {until}, and every "
                    "connection to them then fails", "; ".join(w["hint"] for w in found),
                    code=reason, until=ring.ssh_previous_until, servers=found)


def _ssh_client(endpoints: DirectoryEndpoints) -> Check:
    """Which SSH client the SFTP endpoints use, and whether the system's `ssh` is there for those that want it."""
    default = endpoints.config.default_backend() or "paramiko"
    rows = [r for r in endpoints.effective() if not r.get("problem") and str(r.get("url") or "").startswith("sftp:")]
    wanting = sorted(r["party"] for r in rows if (endpoints.resolve(r["party"]).backend or default) == "openssh")
    ssh, version = ssh_binary(), ssh_version()
    pq = [k for k in kex_preference() if k in PQ_KEX]
    details = {"default_backend": default, "openssh_endpoints": wanting, "ssh": ssh, "ssh_version": version,
               "pq_kex": pq}
    if wanting and ssh is None:
        return _problem("ssh-client", "error", f"SFTP backend openssh is chosen for {_listing(wanting)}, but the "
                        "OpenSSH client `ssh` is not on PATH", 'install openssh-client, or set "sftp_backend": '
                        '"paramiko" in config.json', **details)
    have = f"ssh found ({version}; post-quantum key exchange: {', '.join(pq) or 'none'})" if ssh else "no ssh on PATH"
    uses = f"; openssh for {_listing(wanting)}" if wanting and default != "openssh" else ""
    return _ok("ssh-client", f"SFTP backend {default}{uses}; {have}", **details)


# -- ledger, audit, disk, clock -----------------------------------------------------------------

def _ledger(home: Home) -> tuple[LedgerHealth | None, list[Check]]:
    path = home.ledger_db
    if not path.exists():
        return None, [_ok("ledger", "no ledger yet (the first pack or import makes it)"),
                      _ok("audit", "no audit log yet")]
    try:
        health = inspect_ledger(path)
    except LaxError as exc:
        return None, [_from_error("ledger", exc),
                      _problem("audit", "error", "not checked: the ledger cannot be read (see ledger)", exc.hint)]
    checks = [_ledger_check(path, health)]
    if health.audit_problems:
        checks.append(_problem("audit", "error", "audit log does not verify: " + "; ".join(health.audit_problems),
                               "restore the ledger from backup and investigate who changed it",
                               entries=health.audit_entries))
    else:
        checks.append(_ok("audit", f"audit chain intact: {health.audit_entries} entries, head {health.audit_head}",
                          entries=health.audit_entries, head=health.audit_head))
    return health, checks


def _ledger_check(path: Path, health: LedgerHealth) -> Check:
    version = {"schema_version": health.schema_version, "current_version": health.current_version}
    if health.integrity:
        return _problem("ledger", "error", f"ledger {path} fails SQLite's integrity check: "
                        f"{_listing(health.integrity)}",
                        "restore it from backup; do not delete it (it holds the replay history)",
                        findings=health.integrity, **version)
    if health.schema_version > health.current_version:
        return _problem("ledger", "error", f"ledger {path} has schema version {health.schema_version}; this "
                        f"laxchange reads up to {health.current_version}",
                        "upgrade laxchange: a newer version wrote this ledger (do not downgrade a home)", **version)
    if health.migrations_pending:
        return _problem("ledger", "warning", f"ledger {path} has schema version {health.schema_version}; this "
                        f"laxchange uses {health.current_version} ({health.migrations_pending} migrations pending)",
                        f"back up {path}; the next command that opens the ledger (e.g. `laxchange status`) "
                        "migrates it, in one transaction", **version)
    return _ok("ledger", f"ledger sound (SQLite integrity check), schema version {health.schema_version}", **version)


def _leftover_uploads(home: Home, endpoints: DirectoryEndpoints) -> Check:
    """Temporary files our ended connections left on servers (docs/transport.md "Temporary files").
    At an endpoint in use the next upload there removes them; at one no longer in use (a partner's
    URL changed, a partner gone) nothing ever will, so say where they are."""
    try:
        found = part_journal(home).leftovers()
    except OSError as exc:
        return _problem("uploads.leftover", "error", f"cannot read the logs of temporary uploads: {exc}",
                        f"the home folder must be readable by the user that runs laxchange ({home.root})")
    in_use = {str(r["url"]) for r in endpoints.effective() if r.get("url")}
    stale = [x for x in found if x.url not in in_use]
    pending = sum(x.names for x in found if x.url in in_use)
    details = {"pending": pending,
               "stale": [{"url": x.url, "names": x.names, "folder": str(x.folder)} for x in stale]}
    if not stale:
        if not pending:
            return _ok("uploads.leftover", "no temporary uploads left on partners' servers", **details)
        return _ok("uploads.leftover", f"{pending} temporary upload{'s' if pending != 1 else ''} left by ended "
                   "connections: each goes with the next upload to its endpoint", **details)
    where = [f"{x.url or 'an endpoint from before its URL was recorded'} ({x.names})" for x in stale]
    n = sum(x.names for x in stale)
    return _problem("uploads.leftover", "warning",
                    f"{n} temporary upload{'s' if n != 1 else ''} left at endpoints no longer in use, which no "
                    f"later run will remove: {_listing(where)}",
                    "these are hidden `.NAME.part-*` files of uploads that never completed (nothing was delivered "
                    "from them). If that server is still in use, remove there the files named in the logs under "
                    f"{_listing([str(x.folder) for x in stale])}; then remove that folder", **details)


def _disk(home: Home, limits: Limits) -> Check:
    usage = shutil.disk_usage(home.root)
    free = {"free_bytes": usage.free, "total_bytes": usage.total}
    text = f"{usage.free / 1e9:.1f} GB free of {usage.total / 1e9:.1f} GB where the home is"
    hint = f"free space on the file system of {home.root} (a run writes packages, records and the ledger there)"
    if usage.free < limits.critical_disk:
        return _problem("disk", "error", f"only {text}", hint, **free)
    if usage.free < limits.low_disk:
        return _problem("disk", "warning", f"only {text}", hint, **free)
    return _ok("disk", text, **free)


def _filesystem(home: Home, mounts: Path) -> Check:
    """The home must be on a local file system (docs/operators.md "What is in a home"): over a
    network SQLite's write-ahead log can corrupt the ledger, and two machines' locks do not meet."""
    try:
        table = mounts.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return _ok("filesystem", f"not checked: no mount table at {mounts} (not Linux)")
    where = home.root.resolve()
    best: tuple[Path, str] | None = None
    for line in table.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = Path(_unescape_mount(fields[1]))
        if (where == point or point in where.parents) and (best is None or len(point.parts) >= len(best[0].parts)):
            best = (point, fields[2])
    if best is None:
        return _ok("filesystem", f"not checked: {where} is under no mount point in {mounts}")
    point, fstype = best
    info = {"mount_point": str(point), "type": fstype}
    if fstype in NETWORK_FILESYSTEMS:
        return _problem("filesystem", "error",
                        f"the home is on a network file system ({fstype}, mounted at {point}): SQLite's write-ahead "
                        "log can corrupt the ledger there, and runs on two machines would not see each other's locks",
                        f"move the home to a local disk (ext4, xfs): stop the nightly timer, move {home.root}, "
                        "point LAXCHANGE_HOME at the new place, and run `laxchange doctor` again", **info)
    return _ok("filesystem", f"the home is on a local file system ({fstype}, mounted at {point})", **info)


def _unescape_mount(field: str) -> str:
    """A mount table's field, with its octal escapes (space is \\040) undone."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _clock(store: KeyStore, health: LedgerHealth | None, now: dt.datetime, server_time: int | None,
           limits: Limits) -> Check:
    """Our clock must not be behind what we ourselves recorded (it went backwards: expiry, replay
    windows and receipt deadlines would go wrong), and our SFTP server's should agree with it."""
    stamps = {f"our {k.use} key {k.kid} made": k.not_before for k in store.ring().keys}
    if health is not None and health.newest:
        stamps["the ledger's newest entry"] = health.newest
    what, newest = max(stamps.items(), key=lambda kv: kv[1])
    details: dict[str, Any] = {"now": timefmt.fmt(now), "newest": newest, "server_time": server_time}
    if timefmt.parse(newest) > now + limits.clock_slack:
        return _problem("clock", "error", f"the system clock says {timefmt.fmt(now)}, before {what} at {newest}: "
                        "it went backwards or is wrong",
                        "set the clock right (is NTP running? `timedatectl status`) before the next run: expiry, "
                        "replay and receipt deadlines depend on it", **details)
    if server_time is not None:
        skew = dt.datetime.fromtimestamp(server_time, dt.UTC) - now
        if abs(skew) > limits.clock_slack:
            ahead = "ahead of" if skew > dt.timedelta(0) else "behind"
            return _problem("clock", "warning", f"our SFTP server's clock is {abs(skew).total_seconds() / 60:.0f} "
                            f"minutes {ahead} ours", "ask whoever runs the server to check its clock (NTP): "
                            "the times on files in the drop folder are the server's", **details)
    return _ok("clock", f"system clock {timefmt.fmt(now)} is after everything this home recorded (newest {newest})"
               + (", and agrees with our SFTP server's" if server_time is not None else ""), **details)
