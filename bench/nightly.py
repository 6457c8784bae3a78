#!/usr/bin/env python3
"""Benchmark: the nightly job at national scale, one council to many schools, by the job itself.

    .venv/bin/python bench/nightly.py --quick            # 200 records, 4 schools (< 60 s)
    .venv/bin/python bench/nightly.py                    # 83,000 records, 150 schools (England's LAC)
    .venv/bin/python bench/nightly.py --transport local  # the same over local folders (no SSH)
    .venv/bin/python bench/nightly.py --backend openssh  # the SFTP side through the system's ssh

One placing council (LA:919) and N schools, each with its own home, keys and drop folder, on one
real OpenSSH sshd on 127.0.0.1 (tests/support/sshd.py; `--transport local` uses folders instead).
Every record is a fictional education record placed at one of the schools. The stages are the
users' own calls, not a special path: `notify_placement` (queued, as `--queue-only`), then
`run_nightly` on the council (sends), on every school (collects, verifies, files under
received/, sends delivered receipts), and on the council again (collects and applies the
receipts). Afterwards both sides' ledgers are counted: every record must be imported exactly
once and every transfer `delivered`; anything lost or duplicated is reported (and exits 1).

The ceiling (DESIGN.md §12): what the same records need at the least, measured in the same run
on a sample of them: validation, the format's public-key and symmetric operations (the pack and
open of each PEP and of its receipt: `package.pack` + `package.open_package` in memory, no files,
no ledger), and OpenSSH's own `sftp` moving the same files up and down on the same sshd. The
run's ratio to that ceiling and each stage's seconds are reported. One process, one core for the
laxchange side (sshd and OpenSSH's sftp run as their own processes).

The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from laxchange import package, samples
from laxchange.clock import FixedClock
from laxchange.exchange import Party
from laxchange.exchange.notify import notify_placement
from laxchange.exchange.receipts import build_receipt
from laxchange.exchange.run import run_nightly
from laxchange.models import wrap
from laxchange.transport import Endpoint, LocalFolderTransport, RetryPolicy, Runner, SftpSettings, StaticEndpoints
from laxchange.validate import validate_document
from tests.support.parties import PASSPHRASE, make_party
from tests.support.sshd import Sshd

COUNCIL = "LA:919"


def _say(msg: str) -> None:
    """Progress to stderr as it happens, so a run cut short still says how far it got and how fast."""
    print(f"[{time.strftime('%H:%M:%S')} load {' '.join(f'{x:.1f}' for x in os.getloadavg())}] {msg}",
          file=sys.stderr, flush=True)


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _records(n: int, schools: list[str], seed: int) -> list[dict[str, Any]]:
    """n fictional records, record i placed at school i mod len(schools), placed by our council."""
    out = []
    for i, doc in enumerate(samples.generate("education-record", seed, n)):
        doc["placement"]["placing_la"] = COUNCIL.split(":")[1]
        doc["school"]["urn"] = schools[i % len(schools)].split(":")[1]
        out.append(doc)
    return out


def _parties(root: Path, n_schools: int, clock: FixedClock,
             server: Sshd | None) -> tuple[Any, list[Any], dict[str, Path]]:
    drops: dict[str, Path] = {}
    made = []
    for who, name in [(COUNCIL, "Bench Council (fictional)"),
                      *((f"URN:{100001 + k}", f"Bench School {k} (fictional)") for k in range(n_schools))]:
        drops[who] = root / "drops" / who.replace(":", "_")
        drops[who].mkdir(parents=True)
        init: dict[str, Any] = {}
        if server is not None:
            init = {"sftp_url": server.url(drops[who]), "host_key_fingerprints": [server.fingerprint]}
        p = make_party(root / "homes", who, name, clock, **init)
        made.append(p)
        if server is not None:
            with server.authorized.open("a") as fh:
                fh.write(Path(str(p.home.ssh_client_key) + ".pub").read_text())
    council, schools = made[0], made[1:]
    for s in schools:
        council.trust(s)
        s.trust(council)
    return council, schools, drops


def _party(p: Any, transport: str, drops: dict[str, Path], backend: str | None = None) -> Party:
    if transport == "local":
        endpoints = StaticEndpoints({k: Endpoint(k, f"file://{v}") for k, v in drops.items()})
        return Party(home=p.home, keystore=p.store, directory=p.directory, clock=p.clock,
                     transports=Runner(endpoints, LocalFolderTransport, RetryPolicy(attempts=1)))
    return Party.from_home(p.home, passphrase=lambda *_a, **_k: PASSPHRASE, clock=p.clock, keystore=p.store,
                           directory=p.directory, sftp=_sftp_settings(backend), retry=RetryPolicy(attempts=2))


def _sftp_settings(backend: str | None) -> SftpSettings:
    """The run's SFTP settings; `backend` (paramiko, openssh) overrides the library's default."""
    return SftpSettings(timeout=30, **({"backend": backend} if backend else {}))


def _ceiling_crypto(council: Any, schools: list[Any], sample: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds per record of each operation the run cannot avoid, in memory (no files, ledger or
    network): validating the record, packing and opening its PEP, packing and opening its receipt."""
    by_urn = {s.party: s for s in schools}
    spent = dict.fromkeys(("validate", "pack_pep", "open_pep", "pack_receipt", "open_receipt"), 0.0)
    for doc in sample:
        to = by_urn[f"URN:{doc['school']['urn']}"]
        pep = samples_pep(doc, to.party)
        t = time.perf_counter()
        validate_document(doc)
        spent["validate"] += time.perf_counter() - t
        buf = io.BytesIO()
        t = time.perf_counter()
        package.pack(pep, message_type="pep-transfer", recipient=to.party, keystore=council.store,
                     directory=council.directory, out=buf, clock=council.clock)
        spent["pack_pep"] += time.perf_counter() - t
        t = time.perf_counter()
        opened = package.open_package(io.BytesIO(buf.getvalue()), keystore=to.store, directory=to.directory,
                                      clock=to.clock)
        spent["open_pep"] += time.perf_counter() - t
        receipt = build_receipt(in_reply_to=opened.manifest.transfer_id, payload_sha256=opened.manifest.payload_sha256,
                                received_at=to.clock.now(), processed_at=to.clock.now())
        rbuf = io.BytesIO()
        t = time.perf_counter()
        package.pack(receipt, message_type="receipt", recipient=COUNCIL, keystore=to.store, directory=to.directory,
                     out=rbuf, clock=to.clock)
        spent["pack_receipt"] += time.perf_counter() - t
        t = time.perf_counter()
        package.open_package(io.BytesIO(rbuf.getvalue()), keystore=council.store, directory=council.directory,
                             clock=council.clock)
        spent["open_receipt"] += time.perf_counter() - t
    return {k: v / len(sample) for k, v in spent.items()}


def samples_pep(record: dict[str, Any], to: str) -> dict[str, Any]:
    """The PEP transfer for `record` as `notify_placement` sends it (its message shape, same record)."""
    doc, _ = wrap.prepare(record, "pep-transfer", sender=COUNCIL, recipient=to, reason="new-placement",
                          message=None, source="record")
    return doc


def _ceiling_sftp(server: Sshd, root: Path, files: list[Path]) -> dict[str, float]:
    """Seconds per file for OpenSSH `sftp` to put each file and rename it into place (what atomic
    publication needs), and to get it back, each way in one batch session on the same sshd."""
    key = root / "ceiling-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    with server.authorized.open("a") as fh:
        fh.write(Path(str(key) + ".pub").read_text())
    up, down = root / "ceiling-up", root / "ceiling-down"
    up.mkdir()
    down.mkdir()
    batches = {
        "put": "".join(f"put {f} {up}/.{f.name}.part\nrename {up}/.{f.name}.part {up}/{f.name}\n" for f in files),
        "get": "".join(f"get {up}/{f.name} {down}/{f.name}\n" for f in files),
    }
    out = {}
    for name, batch in batches.items():
        script = root / f"batch-{name}"
        script.write_text(batch)
        t = time.perf_counter()
        subprocess.run(["sftp", "-q", "-b", str(script), "-i", str(key), "-o", "StrictHostKeyChecking=no",
                        "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-P", str(server.port),
                        f"{server.user}@127.0.0.1"], check=True, stdout=subprocess.DEVNULL, timeout=600)
        out[name] = (time.perf_counter() - t) / len(files)
    return out


def _stage_ceilings(crypto: dict[str, float], sftp: dict[str, float] | None) -> dict[str, float]:
    """Seconds per record each stage needs at the least (its own ceiling)."""
    put = sftp["put"] if sftp else 0.0
    get = sftp["get"] if sftp else 0.0
    return {
        "notify": crypto["validate"] + crypto["pack_pep"],
        "council_send": put,
        "schools_import_and_receipt": get + crypto["open_pep"] + crypto["pack_receipt"] + put,
        "council_receipts": get + crypto["open_receipt"],
    }


def _count(council: Party, schools: list[Party], n: int) -> dict[str, int]:
    imported: dict[tuple[str, str], int] = {}
    for s in schools:
        for e in s.ledger.audit_entries():
            if e["event"] == "in.imported" and e["data"].get("party") == COUNCIL:
                key = (s.keystore.ring().party, str(e["data"].get("transfer_id")))
                imported[key] = imported.get(key, 0) + 1
    out = [t for t in council.ledger.transfers(direction="out") if t.message_type == "pep-transfer"]
    delivered = sum(1 for t in out if t.state == "delivered")
    return {"records": n, "imported": len(imported), "duplicated": sum(v - 1 for v in imported.values()),
            "lost": n - len(imported), "delivered": delivered, "not_delivered": len(out) - delivered}


def bench(n: int, n_schools: int, transport: str, sample_n: int, seed: int,
          backend: str | None = None) -> dict[str, Any]:
    clock = FixedClock(dt.datetime.now(dt.UTC).replace(microsecond=0))
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="laxbench-nightly-") as tmp:
        root = Path(tmp)
        server = Sshd(root / "sshd", []).start() if transport == "sftp" else None
        try:
            t0 = time.perf_counter()
            raw_council, raw_schools, drops = _parties(root, n_schools, clock, server)
            council = _party(raw_council, transport, drops, backend)
            schools = [_party(s, transport, drops, backend) for s in raw_schools]
            records = _records(n, [s.party for s in raw_schools], seed)
            setup_s = time.perf_counter() - t0

            stages: dict[str, float] = {}
            cpu0 = _cpu_s()
            t = time.perf_counter()
            for doc in records:
                res = notify_placement(council, doc, to=[f"URN:{doc['school']['urn']}"], reason="new-placement",
                                       purpose="Benchmark: PEP for the new school's Designated Teacher", send=False)
                if not res.ok:
                    raise SystemExit(f"notify failed: {res.first_error()}")
            stages["notify"] = time.perf_counter() - t
            _say(f"{transport}: notify {n} records: {stages['notify']:.1f} s")
            t = time.perf_counter()
            sent = run_nightly(council)
            stages["council_send"] = time.perf_counter() - t
            _say(f"{transport}: council_send: {stages['council_send']:.1f} s")
            t = time.perf_counter()
            failures = [f.to_dict() for f in sent.failures]
            for k, s in enumerate(schools, 1):
                report = run_nightly(s)
                failures += [f.to_dict() for f in report.failures]
                if k % 10 == 0 or k == len(schools):
                    _say(f"{transport}: schools {k}/{len(schools)}: {time.perf_counter() - t:.1f} s")
            stages["schools_import_and_receipt"] = time.perf_counter() - t
            t = time.perf_counter()
            back = run_nightly(council)
            failures += [f.to_dict() for f in back.failures]
            stages["council_receipts"] = time.perf_counter() - t
            _say(f"{transport}: council_receipts: {stages['council_receipts']:.1f} s")
            wall = sum(stages.values())
            cpu = _cpu_s() - cpu0
            print(f"{transport}: stages {stages}", file=sys.stderr)
            counts = _count(council, schools, n)
            rss = _rss_mb()
            load_end = os.getloadavg()

            sample = records[:sample_n]
            crypto = _ceiling_crypto(raw_council, raw_schools, sample)
            sftp = None
            if server is not None:
                files = sorted((raw_council.home.outbox).glob("*.lax"))[:sample_n]
                receipts = sorted(p for s in raw_schools for p in (s.home.outbox / "receipts").glob("*.lax"))
                sftp = _ceiling_sftp(server, root, files + receipts[:sample_n])
            per_stage = _stage_ceilings(crypto, sftp)
            ceiling_s = sum(per_stage.values()) * n
            for c in (council, *schools):
                c.close()
        finally:
            if server is not None:
                server.stop()
    return {
        "transport": transport, "sftp_backend": _sftp_settings(backend).backend if server is not None else None,
        "records": n, "schools": n_schools, "setup_s": round(setup_s, 1),
        "wall_s": round(wall, 2), "records_per_s": round(n / wall, 1), "peak_rss_mb": round(rss, 1),
        "cpu_s": round(cpu, 1),  # this process's user + system CPU over the stages (sshd's not included)
        "stages_s": {k: round(v, 2) for k, v in stages.items()},
        "ceiling": {"sample": len(sample), "what": "validate + pack/open in memory (the format's own code, no "
                    "files, ledger or network) + OpenSSH sftp put+rename and get of the same files",
                    "s_per_record": {k: round(v, 6) for k, v in crypto.items()},
                    "openssh_sftp_s_per_file": {k: round(v, 6) for k, v in sftp.items()} if sftp else None,
                    "whole_run_s": round(ceiling_s, 2)},
        "ratio_to_ceiling": round(ceiling_s / wall, 3),
        "stage_ratio_to_ceiling": {k: round(per_stage[k] * n / v, 3) for k, v in stages.items() if v > 0},
        "counts": counts, "failures": failures[:5], "failure_count": len(failures),
        "load_avg": {"start": [round(x, 2) for x in load_start], "end": [round(x, 2) for x in load_end]},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 records to 4 schools (< 60 s)")
    ap.add_argument("--records", type=int, help="records (default 83000; quick 200)")
    ap.add_argument("--schools", type=int, help="partner schools (default 150; quick 4)")
    ap.add_argument("--transport", choices=["sftp", "local", "both"], default="sftp")
    ap.add_argument("--sample", type=int, help="records in the ceiling sample (default 2000; quick 50)")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--backend", choices=["paramiko", "openssh"],
                    help="the SFTP backend (SSH client) for every party; default: the library's default")
    args = ap.parse_args()
    n = args.records or (200 if args.quick else 83_000)
    n_schools = args.schools or (4 if args.quick else 150)
    sample_n = min(n, args.sample or (50 if args.quick else 2000))
    transports = ["sftp", "local"] if args.transport == "both" else [args.transport]
    results = [bench(n, n_schools, t, sample_n, args.seed, args.backend) for t in transports]
    for r in results:
        print(f"{r['transport']}: {r['records']} records to {r['schools']} schools in {r['wall_s']} s "
              f"({r['records_per_s']}/s), {r['ratio_to_ceiling']}x the ceiling; stages {r['stages_s']}; "
              f"counts {r['counts']}", file=sys.stderr)
    out = results[0] if len(results) == 1 else {"runs": results, **{k: results[0][k] for k in
                                                                     ("records_per_s", "wall_s", "peak_rss_mb")}}
    print(json.dumps(out))
    bad = any(r["counts"]["lost"] or r["counts"]["duplicated"] or r["counts"]["not_delivered"] for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
