"""The demo: the main job end to end on embedded defaults, with fictional children only.

Three fictional parties, each with its own home (keys encrypted at rest, partner directory,
inbox, quarantine): the placing council's virtual school, the host council's virtual school and
the new school. An embedded SFTP server on 127.0.0.1 holds each party's drop folder, in which
each sender can reach only its own sub-folder. The story is the users' jobs, run through the
same library calls as the CLI's commands: the placing VSH's `notify-placement` (a placement
notification for the host virtual school, the PEP with its signed PDF for the school's
Designated Teacher); the nightly `run` on each side (collect, verify, file under `received/`
with a readable `pep.html`, signed delivered receipts back, the sender's transfers `delivered`);
the school's `receipt --applied`; and a package damaged in transit, quarantined and answered
with a signed rejection. Nothing is faked.
"""

from __future__ import annotations

import base64
import datetime as dt
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko

from laxchange import samples
from laxchange._util import jsonio
from laxchange.clock import Clock, SystemClock
from laxchange.errors import InvalidData, LaxError, SecurityError
from laxchange.exchange import Party
from laxchange.exchange.inbound import send_applied
from laxchange.exchange.notify import notify_placement
from laxchange.exchange.run import RunReport, run_nightly
from laxchange.home import Home
from laxchange.passphrase import DEMO_PASSPHRASE
from laxchange.render import render_record_html, render_run_report_html, write_html
from laxchange.transport import RetryPolicy, SftpSettings
from laxchange.transport.server import EmbeddedSftpServer, ServerAccess, load_or_create_host_key
from laxchange.trust import PartnerDirectory, build_card
from laxchange.trust.keystore import KeyStore
from laxchange.validate import validate_file

#: The demo's parties are fictional and their keys throwaway; DEMO_PASSPHRASE (published, so refused
#: for any other home) protects them at rest.


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


def step_parties(ctx: DemoContext, record: dict[str, Any]) -> EmbeddedSftpServer:
    """Initialise three parties, start the SFTP server for their drop folders, exchange cards."""
    placement = record["placement"]
    school = record["school"]
    specs = [
        (f"LA:{placement['placing_la']}", "Placing Virtual School (fictional)", "placing-vs"),
        (f"LA:{placement['host_la']}", "Host Virtual School (fictional)", "host-vs"),
        (f"URN:{school['urn']}", f"{school['name']} (fictional)", "school"),
    ]
    t0 = time.perf_counter()
    for party, name, slug in specs:
        home = Home(ctx.workdir / "homes" / slug)
        store = KeyStore(home, passphrase=_passphrase, clock=ctx.clock, work_factor=ctx.work_factor)
        store.init(party, name, throwaway=True)
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


def _run(ctx: DemoContext, who: DemoParty) -> RunReport:
    """`laxchange run` on `who`'s home: the nightly job itself, not a special path."""
    report = run_nightly(who.me, render=render_record_html)
    if report.failures:
        first = report.failures[0]
        raise SecurityError(f"demo: {who.party}'s run failed at {first.step}: {first.error.message}",
                            code="demo.run", hint="this is a bug in the demo or the job")
    return report


def _states(who: DemoParty) -> dict[str, str]:
    """Outbound transfer id -> state, leaving out receipts (nobody acknowledges a receipt)."""
    return {t.transfer_id: t.state for t in who.me.ledger.transfers(direction="out") if t.message_type != "receipt"}


def step_notify(ctx: DemoContext, record: dict[str, Any]) -> dict[str, str]:
    """The VSH's job: `notify-placement` to the host virtual school and the new school, with the signed PEP."""
    vsh, host, school = ctx.parties["placing-vs"], ctx.parties["host-vs"], ctx.parties["school"]
    # The council keeps its children's records in a folder its deadlines read (config.json deadlines.records);
    # the demo's overdue clocks are reported, not a reason for its runs to need a look.
    records = vsh.home.root / "records"
    records.mkdir(mode=0o700, exist_ok=True)
    jsonio.write_atomic(records / f"{record['record_id']}.json", jsonio.dumps_pretty(record).encode("utf-8"))
    jsonio.write_atomic(vsh.home.config_file, jsonio.dumps_pretty(
        {"deadlines": {"records": "records", "run_exit_on_overdue": False}}).encode("utf-8"))
    pdf = ctx.workdir / "files" / "Signed PEP (fictional).pdf"
    pdf.parent.mkdir(parents=True, exist_ok=True)
    pdf.write_bytes(b"%PDF-1.4\n% a fictional signed PEP for the laxchange demo\n%%EOF\n")
    t0 = time.perf_counter()
    result = notify_placement(vsh.me, record, to=[host.party, school.party], reason="new-placement",
                              purpose="Out-of-authority placement: tell the host virtual school and hand the PEP "
                                      "to the new school's Designated Teacher", attachments=[pdf])
    if not result.ok:
        raise SecurityError(f"demo: notify-placement failed: {result.first_error()}", code="demo.notify")
    ctx.say(f"4. {vsh.party} (the placing VSH) ran `laxchange notify-placement`: one package per recipient, each "
            f"through its data-minimisation profile, signed (DSSE, Ed25519) and encrypted (age, ML-KEM-768+X25519), "
            f"sent over SFTP in {time.perf_counter() - t0:.1f} s:")
    for n in result.packages:
        ctx.say(f"   {n.message_type:<23} to {n.recipient:<11} ({n.role}), transfer {n.transfer_id}: {n.state}")
    return {n.recipient: n.transfer_id for n in result.packages}


def step_receive(ctx: DemoContext, tids: dict[str, str]) -> None:
    """Host and school run the nightly job: collect, verify, file under received/, send delivered receipts."""
    vsh, host, school = ctx.parties["placing-vs"], ctx.parties["host-vs"], ctx.parties["school"]
    for n, who in enumerate((host, school)):
        report = _run(ctx, who)
        imp = report.imported
        counts = imp.counts() if imp is not None else {}
        step = "5." if n == 0 else "  "
        ctx.say(f"{step} {who.party} ran `laxchange run`: imported {counts.get('imported', 0)}, sent "
                f"{len(imp.receipts_sent) if imp else 0} signed delivered receipt(s)")
    folder = school.home.root / "received" / tids[school.party]
    ctx.say(f"   the Designated Teacher's copy: {folder}/ (record.json, record.csv for the MIS, pep.html, "
            f"attachments/attachment-1.pdf, manifest.json)")
    _run(ctx, vsh)
    states = _states(vsh)
    ctx.say(f"6. {vsh.party} ran `laxchange run`: its receipts came back: "
            + ", ".join(f"{p} {states[t]}" for p, t in tids.items()))
    ctx.results["delivered"] = {p: states[t] for p, t in tids.items()}
    ctx.results["pep_html"] = str(folder / "pep.html")


def step_applied(ctx: DemoContext, tids: dict[str, str]) -> None:
    """The school puts the record into its MIS and sends the second, `applied` receipt."""
    vsh, school = ctx.parties["placing-vs"], ctx.parties["school"]
    tid = tids[school.party]
    sent = send_applied(school.me, tid)
    if sent.error is not None:
        raise sent.error
    _run(ctx, vsh)
    state = _states(vsh)[tid]
    ctx.say(f"7. {school.party} ran `laxchange receipt {tid} --applied` (the record is in its MIS); "
            f"{vsh.party}'s next run shows the PEP transfer {state}")
    ctx.results["applied"] = state


def step_tamper(ctx: DemoContext, record: dict[str, Any]) -> None:
    """A package damaged in transit is quarantined (never imported, never deleted) and answered with a rejection."""
    vsh, school = ctx.parties["placing-vs"], ctx.parties["school"]
    vsh.home.ensure()
    out = vsh.home.outbox / "damaged-in-transit.lax"
    res = vsh.me.pack(record, message_type="pep-transfer", recipient=school.party, out=out, reason="new-placement")
    data = bytearray(out.read_bytes())
    data[len(data) - 64] ^= 0x40  # inside the encrypted payload: the signed manifest still reads
    out.write_bytes(bytes(data))
    _run(ctx, vsh)  # sends what is queued, like any night
    report = run_nightly(school.me, render=render_record_html)
    imp = report.imported
    refused = [i for i in (imp.items if imp else []) if i.result == "quarantined"]
    for i in refused:
        reason = i.error.code if i.error else "?"
        ctx.say(f"8. a PEP package with one byte changed in transit: {school.party} quarantined it ({reason}), "
                "kept it, imported nothing, and sent a signed rejection")
        ctx.results.setdefault("quarantined", []).append(reason)
    last = _run(ctx, vsh)
    state = _states(vsh).get(res.manifest.transfer_id)
    ctx.say(f"   {vsh.party}'s next run shows that transfer {state}")
    ctx.results["tampered"] = state
    ctx.results["_last_run"] = last


def step_report(ctx: DemoContext) -> None:
    """The morning report and the statutory clocks, from the VSH's last nightly run (its --json, as a page)."""
    vsh = ctx.parties["placing-vs"]
    last: RunReport = ctx.results.pop("_last_run")
    data = last.to_dict()
    out = ctx.workdir / "reports" / "morning-report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_html(out, render_run_report_html(data))
    clocks = data["deadlines"]
    ctx.say(f"9. {vsh.party}'s morning report (what `laxchange run --report` writes): {out}")
    ctx.say(f"   statutory clocks for the child (by its pseudonymous record ref): {len(clocks['overdue'])} overdue, "
            f"{len(clocks['due_soon'])} due soon, {len(clocks['met'])} met"
            + (" (school days approximate: no term dates set)" if clocks.get("approximate") else ""))
    for item in clocks["met"][:3]:
        late = " LATE" if item.get("late") else ""
        ctx.say(f"   met{late:<6}{item['title']} (due {item['due']}), by {item['met_by']}")
    for item in clocks["due_soon"][:3]:
        ctx.say(f"   due soon {item['title']} (due {item['due']}) [{item['rule']}]")
    for item in clocks["overdue"][:3]:
        ctx.say(f"   OVERDUE  {item['title']} (due {item['due']}) [{item['rule']}]")
    ctx.results["morning_report"] = str(out)
    ctx.results["deadlines"] = {k: len(clocks[k]) for k in ("overdue", "due_soon", "met")}


def _explore(ctx: DemoContext) -> list[str]:
    school = ctx.parties["school"].home.root
    vsh = ctx.parties["placing-vs"].home.root
    return [
        f"export LAXCHANGE_PASSPHRASE='{DEMO_PASSPHRASE.decode()}'   # the demo's fictional homes only",
        f"laxchange --home {vsh} status",
        f"laxchange --home {school} received list",
        f"laxchange --home {school} quarantine list",
        f"laxchange --home {vsh} audit verify",
        f"laxchange --home {vsh} deadlines",
        f"# the readable PEP, in a browser: file://{ctx.results.get('pep_html')}",
        f"# the morning report: file://{ctx.results.get('morning_report')}",
    ]


def run(workdir: Path | None = None, *, clock: Clock | None = None, say: Callable[[str], None] = print,
        work_factor: int = 18, keep: Callable[[EmbeddedSftpServer], None] | None = None) -> dict[str, Any]:
    """Run the whole story; returns a summary (also told step by step through `say`).

    `keep`, when given, is called with the running SFTP server before it stops (the CLI's `--keep`
    waits there for Ctrl-C, so the homes can be explored with the server still up)."""
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="laxchange-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(workdir=workdir, clock=clock or SystemClock(), say=say, work_factor=work_factor)
    ctx.say(f"laxchange demo: fictional children and parties only; working in {workdir}")
    paths = step_samples(ctx)
    step_validate(ctx, paths)
    as_of = ctx.clock.today() - dt.timedelta(days=1)
    record = samples.placement_notification(7, as_of=as_of)["record"]
    # The child moved yesterday, to a new placement and a new school: the statutory clocks start now.
    record["placement"]["placement_start"] = record["school"]["start_date"] = as_of.isoformat()
    server = step_parties(ctx, record)
    try:
        tids = step_notify(ctx, record)
        step_receive(ctx, tids)
        step_applied(ctx, tids)
        step_tamper(ctx, record)
        step_report(ctx)
        ctx.results["explore"] = _explore(ctx)
        ctx.say(f"done. Everything is under {workdir}; keep exploring:")
        for line in ctx.results["explore"]:
            ctx.say(f"   {line}")
        if keep is not None:
            keep(server)
    finally:
        server.stop()
    ctx.results["workdir"] = str(workdir)
    ctx.results["parties"] = {slug: p.party for slug, p in ctx.parties.items()}
    ctx.results["sftp"] = {"host": "127.0.0.1", "port": server.port, "fingerprint": server.fingerprint}
    return ctx.results


__all__ = ["DEMO_PASSPHRASE", "DemoContext", "LaxError", "run"]
