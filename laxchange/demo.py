"""The demo: the main job end to end on embedded defaults, with fictional children only.

Three fictional parties, each with its own home (keys encrypted at rest, partner directory,
inbox, quarantine): the placing council's virtual school, the host council's virtual school and
the new school. An embedded SFTP server on 127.0.0.1 holds each party's drop folder, in which
each sender can reach only its own sub-folder. The
placing VSH notifies the host virtual school of an out-of-authority placement and sends the PEP
to the school's Designated Teacher; both collect, verify and open what they were sent; the
school acknowledges with a signed receipt; a package damaged in transit is refused and
quarantined. Every step runs the same library code as the CLI; nothing is faked.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko

from laxchange import package, samples
from laxchange._util import jsonio, timefmt
from laxchange.clock import Clock, SystemClock
from laxchange.errors import InvalidData, LaxError, SecurityError
from laxchange.exchange import Party
from laxchange.home import Home
from laxchange.models.messages import RECEIPT_ID
from laxchange.transport import RetryPolicy, SftpSettings
from laxchange.transport.server import EmbeddedSftpServer, ServerAccess, load_or_create_host_key
from laxchange.trust import PartnerDirectory, build_card
from laxchange.trust.keystore import KeyStore
from laxchange.validate import validate_file

#: The demo's parties are fictional and their keys throwaway; this passphrase protects them at rest.
DEMO_PASSPHRASE = b"laxchange demo - fictional parties only"


def _passphrase(_purpose: str, *, confirm: bool = False) -> bytes:
    return DEMO_PASSPHRASE


@dataclass
class DemoParty:
    party: str
    name: str
    me: Party

    @property
    def home(self) -> Home:
        return self.me.home

    @property
    def store(self) -> KeyStore:
        return self.me.keystore

    @property
    def directory(self) -> PartnerDirectory:
        return self.me.directory


@dataclass
class DemoContext:
    workdir: Path
    clock: Clock = field(default_factory=SystemClock)
    say: Callable[[str], None] = print
    work_factor: int = 18
    results: dict[str, Any] = field(default_factory=dict)
    parties: dict[str, DemoParty] = field(default_factory=dict)


def step_samples(ctx: DemoContext, count: int = 25) -> list[Path]:
    """Write fictional records of every type, as a council's case system would export them."""
    out = ctx.workdir / "samples"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind in samples.GENERATORS:
        for i, doc in enumerate(samples.generate(kind, 7, count)):
            p = out / f"{kind}-{i:03d}.json"
            jsonio.write_atomic(p, jsonio.dumps_pretty(doc).encode("utf-8"), mode=0o644)
            paths.append(p)
    ctx.say(f"1. generated {len(paths)} fictional documents ({count} of each of {len(samples.GENERATORS)} types) "
            f"in {out}")
    return paths


def step_validate(ctx: DemoContext, paths: list[Path]) -> None:
    """Validate them all, and show that a corrupted UPN is caught with path, rule and hint."""
    t0 = time.perf_counter()
    reports = [validate_file(p, clock=ctx.clock) for p in paths]
    elapsed = time.perf_counter() - t0
    bad = [r for r in reports if not r.ok]
    if bad:
        raise InvalidData(f"demo: {len(bad)} generated document(s) failed validation: {bad[0].source}",
                          code="demo.invalid-sample", hint="this is a bug in the sample generator")
    warnings = sum(len(r.warnings) for r in reports)
    ctx.say(f"2. validated {len(reports)} documents in {elapsed:.2f} s: all valid, {warnings} guidance warning(s)")
    doc = next(d for d in (jsonio.load_file(p) for p in paths if p.name.startswith("education-record"))
               if "upn" in d["child"])
    upn = doc["child"]["upn"]
    doc["child"]["upn"] = ("A" if upn[0] != "A" else "B") + upn[1:]
    broken = ctx.workdir / "broken-upn.json"
    jsonio.write_atomic(broken, jsonio.dumps_pretty(doc).encode("utf-8"), mode=0o644)
    report = validate_file(broken, clock=ctx.clock)
    ctx.say("   a record with a mistyped UPN check letter is refused:")
    for f in report.errors:
        ctx.say("   " + f.format().replace("\n", "\n   "))
    ctx.results.update(validated=len(reports), warnings=warnings, broken_rules=[f.rule for f in report.errors])


def step_parties(ctx: DemoContext, notification: dict[str, Any]) -> EmbeddedSftpServer:
    """Initialise three parties, start the SFTP server for their drop folders, exchange cards."""
    placement = notification["record"]["placement"]
    school = notification["record"]["school"]
    specs = [
        (f"LA:{placement['placing_la']}", "Placing Virtual School (fictional)", "placing-vs"),
        (f"LA:{placement['host_la']}", "Host Virtual School (fictional)", "host-vs"),
        (f"URN:{school['urn']}", f"{school['name']} (fictional)", "school"),
    ]
    t0 = time.perf_counter()
    for party, name, slug in specs:
        home = Home(ctx.workdir / "homes" / slug)
        store = KeyStore(home, passphrase=_passphrase, clock=ctx.clock, work_factor=ctx.work_factor)
        store.init(party, name)
        me = Party.from_home(home, passphrase=_passphrase, clock=ctx.clock, sftp=SftpSettings(timeout=10.0),
                             retry=RetryPolicy(attempts=3, budget=30.0), keystore=store)
        ctx.parties[slug] = DemoParty(party, name, me)

    # One server holds every party's drop folder; each key is tied to its party, so a sender sees
    # only its own sub-folder of a partner's drop folder (`school/LA_919/`), and each owner all of its own.
    root = ctx.workdir / "sftp-server"
    server_key = _new_host_key(ctx.workdir / "sftp-server-host-key")
    access = ServerAccess.build([(p.party, paramiko.Ed25519Key(data=_pub_blob(p.home))) for p in ctx.parties.values()],
                                {slug: p.party for slug, p in ctx.parties.items()})
    server = EmbeddedSftpServer(root, server_key, access, host="127.0.0.1", port=0).start()
    fingerprint = server.fingerprint

    cards = {}
    for slug, p in ctx.parties.items():
        p.store.set_endpoint(f"sftp://{slug}@127.0.0.1:{server.port}/{slug}", [fingerprint])
        cards[slug] = build_card(p.store)
    for slug, p in ctx.parties.items():
        for other, (card, fpr) in cards.items():
            if other != slug:  # the fingerprint would be read out over the phone; here we pass it along
                p.directory.add(card, fingerprint=fpr)
    ctx.say(f"3. initialised {len(ctx.parties)} fictional parties in {time.perf_counter() - t0:.1f} s "
            f"(post-quantum age keys + Ed25519, private keys scrypt-encrypted, 0600):")
    for slug, p in ctx.parties.items():
        ctx.say(f"   {p.party:<12} {p.name}  card {cards[slug][1]}")
    ctx.say(f"   embedded SFTP server on 127.0.0.1:{server.port}, host key {fingerprint} (pinned on every card)")
    return server


def _new_host_key(path: Path) -> paramiko.PKey:
    return load_or_create_host_key(path)


def _pub_blob(home: Home) -> bytes:
    line = Path(str(home.ssh_client_key) + ".pub").read_text().split()
    return base64.b64decode(line[1])


def _pack(ctx: DemoContext, sender: DemoParty, doc: dict[str, Any], message_type: str, to: DemoParty) -> Path:
    sender.home.ensure()
    out = sender.home.outbox / f"{message_type}-{time.time_ns()}.lax"
    return sender.me.pack(doc, message_type=message_type, recipient=to.party, out=out).path or out


def _deliver(ctx: DemoContext, sender: DemoParty, files: dict[str, list[Path]]) -> None:
    for slug, paths in files.items():
        result = sender.me.send(ctx.parties[slug].party, paths)
        if not result.ok:
            raise SecurityError(f"demo: delivery to {slug} failed: {result.first_error()}", code="demo.send")


def _receive(ctx: DemoContext, receiver: DemoParty) -> list[package.Opened]:
    """Collect from our drop folder, then verify and open each package (quarantining failures)."""
    results = receiver.me.collect()
    if not all(r.ok for r in results):
        raise SecurityError(f"demo: collect failed: {[str(r.first_error()) for r in results if not r.ok]}",
                            code="demo.collect")
    names = [f.name for r in results for f in r.files]
    inbox = receiver.me.open_inbox(receiver.home.root / "received", names)
    for name, exc in inbox.refused:
        ctx.say(f"   {receiver.party}: REFUSED {name}: {exc.message} [{exc.code}]")
        ctx.results.setdefault("quarantined", []).append(exc.code)
    return inbox.opened


def step_exchange(ctx: DemoContext, notification: dict[str, Any], pep: dict[str, Any]) -> package.Opened:
    """The VSH's job: notify the host virtual school and send the PEP to the new school."""
    vsh, host, school = ctx.parties["placing-vs"], ctx.parties["host-vs"], ctx.parties["school"]
    t0 = time.perf_counter()
    last: package.Opened | None = None
    note_pkg = _pack(ctx, vsh, notification, "placement-notification", host)
    pep_pkg = _pack(ctx, vsh, pep, "pep-transfer", school)
    _deliver(ctx, vsh, {"host-vs": [note_pkg], "school": [pep_pkg]})
    ctx.say(f"4. {vsh.party} validated, signed (DSSE, Ed25519) and encrypted (age, ML-KEM-768+X25519) a placement "
            f"notification for {host.party} and a PEP transfer for {school.party}, and delivered both over SFTP")
    for receiver in (host, school):
        for o in _receive(ctx, receiver):
            m = o.manifest
            ctx.say(f"   {receiver.party}: verified {o.schema} from {m.sender} (transfer {m.transfer_id[:8]}…), "
                    f"record {o.document['record']['child'].get('local_child_id', '?')} saved")
            last = o
    elapsed = time.perf_counter() - t0
    ctx.say(f"   notification and PEP delivered and opened in {elapsed:.1f} s (statutory guidance: within 48 hours)")
    ctx.results["exchange_seconds"] = round(elapsed, 2)
    if last is None or last.manifest.sender != vsh.party:
        raise SecurityError("demo: the PEP transfer was not opened", code="demo.not-opened")
    return last


def step_receipt(ctx: DemoContext, opened: package.Opened) -> None:
    """The school acknowledges with a signed receipt, which travels back the same way."""
    vsh, school = ctx.parties["placing-vs"], ctx.parties["school"]
    stamp = timefmt.fmt(ctx.clock.now())
    receipt = {"schema": RECEIPT_ID, "in_reply_to": opened.manifest.transfer_id,
               "payload_sha256": opened.manifest.payload_sha256, "status": "accepted",
               "received_at": stamp, "processed_at": stamp}
    pkg = _pack(ctx, school, receipt, "receipt", vsh)
    _deliver(ctx, school, {"placing-vs": [pkg]})
    got = _receive(ctx, vsh)
    status = got[0].document["status"] if got else "missing"
    ctx.say(f"5. {school.party} acknowledged with a signed receipt; {vsh.party} verified it "
            f"(in reply to transfer {opened.manifest.transfer_id[:8]}…): {status}")
    ctx.results["receipt"] = status


def step_tamper(ctx: DemoContext, pep: dict[str, Any]) -> None:
    """A package damaged in transit (one byte) is refused and quarantined, never imported or deleted."""
    vsh, school = ctx.parties["placing-vs"], ctx.parties["school"]
    buf = io.BytesIO()
    package.pack(pep, message_type="pep-transfer", recipient=school.party, keystore=vsh.store,
                 directory=vsh.directory, out=buf, clock=ctx.clock)
    data = bytearray(buf.getvalue())
    data[len(data) // 2] ^= 0x40
    damaged = vsh.home.outbox / "damaged.lax"
    damaged.write_bytes(bytes(data))
    _deliver(ctx, vsh, {"school": [damaged]})
    ctx.say("6. a PEP package with one byte changed in transit:")
    opened = _receive(ctx, school)
    if opened:
        raise SecurityError("demo: a damaged package was opened", code="demo.tamper-accepted")


def run(workdir: Path | None = None, *, clock: Clock | None = None, say: Callable[[str], None] = print,
        work_factor: int = 18) -> dict[str, Any]:
    """Run every demo step; returns a summary (also printed step by step)."""
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="laxchange-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(workdir=workdir, clock=clock or SystemClock(), say=say, work_factor=work_factor)
    ctx.say(f"laxchange demo: fictional children and parties only; working in {workdir}")
    paths = step_samples(ctx)
    step_validate(ctx, paths)
    as_of = ctx.clock.today() - dt.timedelta(days=1)
    notification = samples.placement_notification(7, as_of=as_of)
    pep = samples.pep_transfer(7, as_of=as_of)
    pep["record"] = notification["record"]  # the same child: the PEP goes to the school named in the record
    server = step_parties(ctx, notification)
    try:
        opened = step_exchange(ctx, notification, pep)
        step_receipt(ctx, opened)
        step_tamper(ctx, pep)
    finally:
        server.stop()
    home = workdir / "homes" / "school"
    ctx.say(f"done. Homes are in {workdir / 'homes'}; try `laxchange --home {home} status`, "
            f"`... audit verify` or `... quarantine list`")
    ctx.results["workdir"] = str(workdir)
    ctx.results["parties"] = {slug: p.party for slug, p in ctx.parties.items()}
    return ctx.results


__all__ = ["DEMO_PASSPHRASE", "DemoContext", "LaxError", "run"]
