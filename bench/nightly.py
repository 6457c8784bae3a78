#!/usr/bin/env python3
"""Benchmark: the nightly job at national scale, one council to many schools, by the job itself.

    .venv/bin/python bench/nightly.py --quick            # 200 records, 4 schools (< 60 s)
    .venv/bin/python bench/nightly.py                    # 83,000 records, 150 schools (England's LAC)
    .venv/bin/python bench/nightly.py --transport local  # the same over local folders (no SSH)
    .venv/bin/python bench/nightly.py --backend openssh  # the SFTP side through the system's ssh

One placing council (LA:919) and N schools, each with its own home, keys and drop folder, on one
real OpenSSH sshd on 127.0.0.1 (tests/support/sshd.py; `--transport local` uses folders instead).
Every record is a fictional education record placed at one of the schools. The stages are the
users' own calls, not a special path: council IT's placements file (JSON Lines, made before any stage
is timed: the export from the case-management system) read by `read_placements` and given to
`notify_placements` in batches of 5,000 (`--notify-chunk`; `notify-batch --queue-only` does just this;
`--notify-per-call`: `notify_placement` per line read, as `notify-placement --queue-only`), then
`run_nightly` on the council (sends), on every school (collects, verifies, files under
received/, sends delivered receipts), and on the council again (collects and applies the
receipts). Afterwards both sides' ledgers are counted: every record must be imported exactly
once and every transfer `delivered`; anything lost or duplicated is reported (and exits 1).

The ceiling (DESIGN.md §12): what the same records need at the least, measured in the same run
on a sample of them: validation (the record where it is sent, the PEP where it is opened, the
receipt where it is made and where it is opened), the bare public-key, symmetric and hash operations of each PEP's
package and of its receipt's (`bench/support/primitives.py`: straight on `cryptography` and
`hashlib`, with the byte counts of the real packages), and OpenSSH's own `sftp` moving the same
files up and down on the same sshd. The run's ratio to that ceiling and each stage's seconds are
reported. A second reference, `format_ceiling`, puts the format's own `package.pack` and
`package.open_package` in memory (which validate inside) in place of the bare operations and of
the PEP's and receipt's validation: what the run would need if nothing but the format's code
cost anything (the ceiling until 2026-12-02; the ratios to it are `*_to_format_ceiling`).

Processes (`--jobs N`, default os.cpu_count()): each of the schools runs its own nightly job on its
own machine at the same time, so the schools' stage runs their `run_nightly` calls in N worker
processes at once (each school still its own home, keys, ledger and drop folder, opened by the
worker; the job itself, not a special path). Council IT's batches are `notify_placements(...,
jobs=N)` (`notify-batch --jobs N`: packed in N forked workers, written and committed here). The
council's nightly stages are one job and stay in this process. `--jobs 1` runs every school in
this process one after another, and packs the batches here. Honest
ceilings under parallelism: a stage run on N processes cannot beat its summed unavoidable work
divided by min(N, cores), so that is its ceiling (`stage_ceiling_s.parallel`); the ratio to it is
`stage_ratio_to_ceiling`, and the ratio to the undivided, one-core work is
`stage_ratio_to_sequential_ceiling` (above 1 only because of the extra cores). The schools'
stage's CPU is summed over its workers (their rusage), so CPU per record stays honest.

Before a run of 1,000 records or more, the disk it needs is estimated from a small sample run
(bytes per school and per record) and the run refuses to start if the temporary folder's file
system has not that much free (set TMPDIR elsewhere, or use fewer --records). Each stage's wall
time is printed to stderr as it finishes, with progress within the long ones.

The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import itertools
import json
import multiprocessing
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support.primitives import Bare, shape_of
from laxchange import package, samples
from laxchange.clock import FixedClock
from laxchange.errors import LaxError
from laxchange.exchange import Party
from laxchange.exchange.notify import Placement, notify_placement, notify_placements, read_placements
from laxchange.exchange.receipts import build_receipt
from laxchange.exchange.run import run_nightly
from laxchange.home import Home
from laxchange.ledger import Ledger
from laxchange.models import wrap
from laxchange.transport import Endpoint, LocalFolderTransport, RetryPolicy, Runner, SftpSettings, StaticEndpoints
from laxchange.trust import PartnerDirectory
from laxchange.trust.keystore import KeyStore
from laxchange.validate import validate_document
from tests.support.parties import PASSPHRASE, WORK_FACTOR, make_party, passphrase
from tests.support.parties import Party as RawParty
from tests.support.sshd import Sshd

COUNCIL = "LA:919"
SCHOOLS_STAGE = "schools_import_and_receipt"
#: runs smaller than this are not sized up front (they need well under a gigabyte)
SPACE_CHECK_FROM = 1000
#: Records a notify_placements call in the notify stage: council IT's night's placements in batches
#: (docs/integrators.md). 500 until the seventh round; each call starts and drains its worker pool
#: once, so fewer, longer calls keep the workers busy (12,000 records, paired: 1.14 / 1.22 / 1.43).
NOTIFY_CHUNK = 5000
#: a ledger's write-ahead log once SQLite checkpoints it (1,000 pages of 4 KiB, then reused)
WAL_BYTES = 1000 * 4096


def _say(msg: str) -> None:
    """Progress to stderr as it happens, so a run cut short still says how far it got and how fast."""
    print(f"[{time.strftime('%H:%M:%S')} load {' '.join(f'{x:.1f}' for x in os.getloadavg())}] {msg}",
          file=sys.stderr, flush=True)


def _quiet(msg: str) -> None:
    """No progress (the sample run that sizes the disk)."""


@contextmanager
def _heartbeat(say: Callable[[str], None], label: str, every: float = 60.0) -> Iterator[None]:
    """A line every `every` seconds while one long call runs (a council's night over 83,000 transfers
    takes minutes and says nothing until it returns), so a watcher can tell slow from stuck."""
    stop = threading.Event()
    t0 = time.perf_counter()

    def beat() -> None:
        while not stop.wait(every):
            say(f"{label}: still running, {time.perf_counter() - t0:.0f} s")

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _cpu_s(who: int = resource.RUSAGE_SELF) -> float:
    """User + system CPU of this process, or (RUSAGE_CHILDREN) of its children that have exited."""
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def _idle_core_s() -> float | None:
    """Core-seconds the whole machine has spent idle since boot (idle + iowait in /proc/stat), or
    None where there is no /proc/stat. A stage's difference says how much of the cores it left unused:
    the room more processes could still take."""
    try:
        with open("/proc/stat", "rb") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    return (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak RSS of this process, or (RUSAGE_CHILDREN) of the largest child that has exited."""
    return resource.getrusage(who).ru_maxrss / 1024


def _cores() -> int:
    """The CPUs this process may run on (what parallel processes can use at once)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _record(i: int, schools: list[str], seed: int) -> dict[str, Any]:
    """The i-th fictional record, placed at school i mod len(schools) by our council. Made one at a
    time (the same document `samples.generate(…, seed, n)[i]` is), so 83,000 are never all in memory."""
    doc = samples.generate("education-record", seed + i, 1)[0]
    doc["placement"]["placing_la"] = COUNCIL.split(":")[1]
    doc["school"]["urn"] = schools[i % len(schools)].split(":")[1]
    return doc


def _records(n: int, schools: list[str], seed: int) -> Iterator[dict[str, Any]]:
    return (_record(i, schools, seed) for i in range(n))


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


@dataclass(frozen=True)
class SchoolNight:
    """What a worker process needs to run one school's nightly job (picklable: paths, not objects)."""

    party: str
    home: str
    transport: str
    drops: dict[str, str]
    now: dt.datetime
    backend: str | None = None  # the SFTP backend, when not the library's default
    jobs: int = 1  # the school's own `run --jobs` (2: it collects and verifies in a second process)


@dataclass(frozen=True)
class SchoolDone:
    """One school's night, back from its worker: the run's failures, or the worker's own error."""

    party: str
    failures: list[dict[str, Any]]
    seconds: float
    error: str | None = None
    user_s: float = 0.0  # the worker's CPU in this night, user and system (os.times)
    sys_s: float = 0.0


def school_night(job: SchoolNight) -> SchoolDone:
    """One school's `run_nightly` in a worker process, on its own home, keys, ledger and drop folder,
    all opened here as the school's own machine would. Any error comes back as text (an exception
    object might not survive pickling, and then the parent would never hear of it)."""
    t, cpu = time.perf_counter(), os.times()
    try:
        clock = FixedClock(job.now)
        home = Home(Path(job.home))
        store = KeyStore(home, passphrase=passphrase, clock=clock, work_factor=WORK_FACTOR, ssh_kdf_rounds=1)
        raw = RawParty(job.party, home, store, PartnerDirectory(home, clock=clock), clock)
        with _party(raw, job.transport, {k: Path(v) for k, v in job.drops.items()}, job.backend) as school:
            report = run_nightly(school, jobs=job.jobs)
        end = os.times()
        return SchoolDone(job.party, [f.to_dict() for f in report.failures], time.perf_counter() - t,
                          user_s=end.user - cpu.user, sys_s=end.system - cpu.system)
    except Exception:  # every error must reach the parent, as text (a dead worker: BrokenProcessPool)
        return SchoolDone(job.party, [], time.perf_counter() - t, error=traceback.format_exc())


def _schools_in_processes(jobs: list[SchoolNight], n_procs: int, say: Callable[[str], None],
                          label: str) -> tuple[list[dict[str, Any]], float, list[SchoolDone]]:
    """Every school's night in `n_procs` worker processes at once (spawned: no SQLite connection or
    lock of this process is inherited). A failed worker stops the stage and the benchmark with its
    message; nothing is swallowed. Returns the runs' failures, the seconds the schools took in all, and
    each night as it finished."""
    failures: list[dict[str, Any]] = []
    nights: list[SchoolDone] = []
    busy = 0.0
    t = time.perf_counter()
    pool = ProcessPoolExecutor(max_workers=n_procs, mp_context=multiprocessing.get_context("spawn"))
    try:
        pending: set[Future[SchoolDone]] = {pool.submit(school_night, j) for j in jobs}
        done_n = 0
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                try:
                    res = fut.result()
                except BrokenProcessPool as exc:
                    raise SystemExit(f"bench/nightly.py: a worker process of the schools' stage died ({exc}); "
                                     f"{done_n} of {len(jobs)} schools had finished") from exc
                if res.error is not None:
                    raise SystemExit(f"bench/nightly.py: school {res.party}'s nightly job failed in its worker "
                                     f"process:\n{res.error}")
                failures += res.failures
                nights.append(res)
                busy += res.seconds
                done_n += 1
                if done_n % 10 == 0 or done_n == len(jobs):
                    say(f"{label}: schools {done_n}/{len(jobs)} ({n_procs} processes): "
                        f"{time.perf_counter() - t:.1f} s")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return failures, busy, nights


def _night_trend(nights: list[SchoolDone]) -> dict[str, Any] | None:
    """Whether a school's night gets slower as the stage goes on (the file system filling, a worker's
    state growing): median wall, user and system seconds of the first and the last tenth of nights."""
    if not nights:
        return None
    k = max(1, len(nights) // 10)

    def med(part: list[SchoolDone]) -> dict[str, float]:
        return {f: round(statistics.median(getattr(n, f) for n in part), 3) for f in ("seconds", "user_s", "sys_s")}

    walls = [n.seconds for n in nights]
    return {"n": len(nights), "wall_s": {"min": round(min(walls), 3), "median": round(statistics.median(walls), 3),
                                         "max": round(max(walls), 3)},
            "first_tenth": med(nights[:k]), "last_tenth": med(nights[-k:])}


def _ceiling_crypto(council: Any, schools: list[Any], sample: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds per record of each operation the run cannot avoid, in memory (no files, ledger or
    network): validating the record where it is sent, the PEP where it is opened and the receipt on both sides, and the
    bare operations of packing and opening the PEP and its receipt (`bench/support/primitives.py`,
    on the shapes of the real packages); also, as a second reference (`format_*`), the format's own
    `package.pack` and `package.open_package` of them, which validate inside."""
    by_urn = {s.party: s for s in schools}
    keys = ("validate", "validate_pep", "validate_receipt", "bare_pack_pep", "bare_open_pep", "bare_pack_receipt",
            "bare_open_receipt", "pack_pep", "open_pep", "pack_receipt", "open_receipt")
    spent = dict.fromkeys(keys, 0.0)

    @contextmanager
    def timed(key: str) -> Iterator[None]:
        t = time.perf_counter()
        yield
        spent[key] += time.perf_counter() - t

    for doc in sample:
        to = by_urn[f"URN:{doc['school']['urn']}"]
        pep = samples_pep(doc, to.party)
        with timed("validate"):
            validate_document(doc)
        with timed("validate_pep"):
            validate_document(pep)
        buf = io.BytesIO()
        with timed("pack_pep"):
            package.pack(pep, message_type="pep-transfer", recipient=to.party, keystore=council.store,
                         directory=council.directory, out=buf, clock=council.clock)
        with timed("open_pep"):
            opened = package.open_package(io.BytesIO(buf.getvalue()), keystore=to.store, directory=to.directory,
                                          clock=to.clock)
        receipt = build_receipt(in_reply_to=opened.manifest.transfer_id, payload_sha256=opened.manifest.payload_sha256,
                                received_at=to.clock.now(), processed_at=to.clock.now())
        with timed("validate_receipt"):
            validate_document(receipt)
        rbuf = io.BytesIO()
        with timed("pack_receipt"):
            package.pack(receipt, message_type="receipt", recipient=COUNCIL, keystore=to.store,
                         directory=to.directory, out=rbuf, clock=to.clock)
        with timed("open_receipt"):
            package.open_package(io.BytesIO(rbuf.getvalue()), keystore=council.store, directory=council.directory,
                                 clock=council.clock)
        for kind, data, sender, opener in (("pep", buf, council, to), ("receipt", rbuf, to, council)):
            bare = Bare(shape_of(data.getvalue(), opener.store), sender.store.ring().required_signature_algorithms)
            with timed(f"bare_pack_{kind}"):
                sealed = bare.pack()
            with timed(f"bare_open_{kind}"):
                bare.open(sealed)
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


def _stage_ceilings(crypto: dict[str, float], sftp: dict[str, float] | None,
                    own_code: bool = False) -> dict[str, float]:
    """Seconds per record each stage needs at the least on one core (its own sequential ceiling):
    the bare operations and validation on both sides, or with `own_code` the format's own pack and
    open (which validate inside) in their place."""
    put = sftp["put"] if sftp else 0.0
    get = sftp["get"] if sftp else 0.0
    if own_code:
        return {
            "notify": crypto["validate"] + crypto["pack_pep"],
            "council_send": put,
            SCHOOLS_STAGE: get + crypto["open_pep"] + crypto["pack_receipt"] + put,
            "council_receipts": get + crypto["open_receipt"],
        }
    return {
        "notify": crypto["validate"] + crypto["bare_pack_pep"],
        "council_send": put,
        SCHOOLS_STAGE: get + crypto["bare_open_pep"] + crypto["validate_pep"] + crypto["validate_receipt"]
        + crypto["bare_pack_receipt"] + put,
        "council_receipts": get + crypto["bare_open_receipt"] + crypto["validate_receipt"],
    }


def _ceilings(per_stage: dict[str, float], n: int, parallel: dict[str, int]) -> tuple[dict[str, float],
                                                                                     dict[str, float]]:
    """Each stage's ceiling for `n` records: on one core, and over its processes (at most the cores)."""
    seq_s = {k: v * n for k, v in per_stage.items()}
    return seq_s, {k: seq_s[k] / parallel[k] for k in per_stage}


def _count(council_db: Path, schools: list[Any], clock: FixedClock, n: int) -> dict[str, int]:
    """Lost, duplicated and undelivered records, from both sides' ledgers, streaming: one school's
    imports at a time (a few hundred entries), and the council's outbound states counted by SQLite
    (83,000 transfers are never all in memory)."""
    imported: dict[tuple[str, str], int] = {}
    for s in schools:
        ledger = Ledger(s.home.ledger_db, clock=clock)
        try:
            for e in ledger.audit_entries(["in.imported"]):
                if e["data"].get("party") == COUNCIL:
                    key = (s.party, str(e["data"].get("transfer_id")))
                    imported[key] = imported.get(key, 0) + 1
        finally:
            ledger.close()
    db = sqlite3.connect(f"{council_db.as_uri()}?mode=ro", uri=True)
    try:
        states = dict(db.execute("SELECT state, COUNT(*) FROM transfers WHERE direction = 'out' AND "
                                 "message_type = 'pep-transfer' GROUP BY state").fetchall())
    finally:
        db.close()
    delivered = int(states.get("delivered", 0))
    return {"records": n, "imported": len(imported), "duplicated": sum(v - 1 for v in imported.values()),
            "lost": n - len(imported), "delivered": delivered, "not_delivered": sum(states.values()) - delivered}


@dataclass
class Stages:
    """What the four stages measured: wall seconds each, CPU (this process and its workers), failures."""

    seconds: dict[str, float]
    idle_core_s: dict[str, float | None]  # the machine's idle core-seconds during each stage
    cpu_s: float
    schools_cpu_s: float
    schools_busy_s: float
    worker_peak_rss_mb: float | None
    school_nights: dict[str, Any] | None
    failures: list[dict[str, Any]]


#: The purpose each placement's audit entry records.
PURPOSE = "Benchmark: PEP for the new school's Designated Teacher"


def write_placements(path: Path, n: int, schools: list[str], seed: int) -> int:
    """Council IT's export, made before any stage is timed: `n` fictional records as a placements
    file (JSON Lines, docs/integrators.md), one placement a line, to the record's school. Its bytes.
    Making fictional records is the benchmark's work, not laxchange's; reading and parsing this file
    is laxchange's, and the notify stage does it (`read_placements`, as `notify-batch` does)."""
    with path.open("wb") as fh:
        for doc in _records(n, schools, seed):
            fh.write(package.compact_json({"record": doc, "to": f"URN:{doc['school']['urn']}",
                                           "reason": "new-placement", "purpose": PURPOSE}) + b"\n")
    return path.stat().st_size


def _notify(council: Any, placements_file: Path, per_call: bool,
            done: Callable[[int], None], jobs: int = 1, chunk: int = NOTIFY_CHUNK) -> None:
    """The notify stage, from the placements file: council IT's batch call (`notify_placements` of
    `read_placements`, `chunk` lines a call, packed in `jobs` processes; each call reads its lines as
    it needs them, while the workers pack the ones before), or with `per_call` the VSH's one call per
    record (`notify_placement`, as `--queue-only`) for each line read."""
    it = iter(read_placements(placements_file))
    if per_call:
        for i, pl in enumerate(it, 1):
            if isinstance(pl, LaxError):
                raise SystemExit(f"notify failed: {pl}")
            one = notify_placement(council, pl.record, to=pl.to, reason=pl.reason, purpose=pl.purpose, send=False)
            if not one.ok:
                raise SystemExit(f"notify failed: {one.first_error()}")
            done(i)
        return
    total = 0
    while (first := next(it, None)) is not None:
        count = [0]

        def placements(first: Placement | LaxError = first, count: list[int] = count) -> Iterator[Placement | LaxError]:
            for pl in itertools.chain([first], itertools.islice(it, chunk - 1)):
                count[0] += 1
                yield pl

        res = notify_placements(council, placements(), send=False, jobs=jobs)
        if not res.ok:
            refused = res.refused[0].error if res.refused else None
            raise SystemExit(f"notify failed: {refused}")
        for i in range(1, count[0] + 1):
            done(total + i)
        total += count[0]


def _stages(raw_council: Any, raw_schools: list[Any], drops: dict[str, Path], transport: str, n: int, seed: int,
            n_procs: int, say: Callable[[str], None], backend: str | None = None,
            notify_per_call: bool = False, school_procs: int | None = None,
            notify_chunk: int = NOTIFY_CHUNK, school_run_jobs: int = 1) -> Stages:
    """The users' own calls, stage by stage: notify (queued), the council's night (sends), every school's
    night (in this process one after another, or in `n_procs` worker processes), the council's night
    again (receipts). Each stage's wall time is reported as it finishes. `school_procs` (default
    `n_procs`): the processes the schools' stage runs their nights in."""
    school_procs = school_procs or n_procs
    council = _party(raw_council, transport, drops, backend)
    schools = [_party(s, transport, drops, backend) for s in raw_schools] if school_procs == 1 else []
    urns = [s.party for s in raw_schools]
    seconds: dict[str, float] = {}
    idle: dict[str, float | None] = {}
    # council IT's export, made before any clock starts: neither the stages' time nor their CPU
    placements_file = raw_council.home.root.parent / "placements.jsonl"  # beside the homes, as an export would be
    tp = time.perf_counter()
    placements_bytes = write_placements(placements_file, n, urns, seed)
    say(f"{transport}: placements file of {n} records ({placements_bytes / 2**20:.0f} MB) written in "
        f"{time.perf_counter() - tp:.1f} s (before the stages, not timed)")
    cpu0, children0 = _cpu_s(), _cpu_s(resource.RUSAGE_CHILDREN)
    every = max(1000, n // 10)
    idle0 = _idle_core_s()

    def ended(stage: str, started: float, idle_before: float | None) -> float | None:
        """Note the stage's wall and idle core-seconds; return the idle counter now, for the next stage."""
        seconds[stage] = time.perf_counter() - started
        now = _idle_core_s()
        idle[stage] = None if now is None or idle_before is None else now - idle_before
        return now

    t = time.perf_counter()

    def done(i: int) -> None:
        if i % every == 0 and i < n:
            elapsed = time.perf_counter() - t
            say(f"{transport}: notify {i}/{n}: {elapsed:.1f} s ({i / elapsed:.1f} records/s)")

    _notify(council, placements_file, notify_per_call, done, n_procs, notify_chunk)
    idle0 = ended("notify", t, idle0)
    say(f"{transport}: notify {n} records: {seconds['notify']:.1f} s")
    t = time.perf_counter()
    with _heartbeat(say, f"{transport}: council_send"):
        sent = run_nightly(council, jobs=n_procs)
    idle0 = ended("council_send", t, idle0)
    say(f"{transport}: council_send: {seconds['council_send']:.1f} s")
    failures = [f.to_dict() for f in sent.failures]

    t = time.perf_counter()
    cpu_before, children_before = _cpu_s(), _cpu_s(resource.RUSAGE_CHILDREN)
    busy = 0.0
    worker_rss = None
    nights: list[SchoolDone] = []
    if school_procs == 1:
        for k, s in enumerate(schools, 1):
            ts, cpu_s = time.perf_counter(), os.times()
            report = run_nightly(s, jobs=school_run_jobs)
            end = os.times()
            nights.append(SchoolDone(raw_schools[k - 1].party, [], time.perf_counter() - ts,
                                     user_s=end.user - cpu_s.user, sys_s=end.system - cpu_s.system))
            busy += nights[-1].seconds
            failures += [f.to_dict() for f in report.failures]
            if k % 10 == 0 or k == len(schools):
                say(f"{transport}: schools {k}/{len(schools)}: {time.perf_counter() - t:.1f} s")
    else:
        night = [SchoolNight(s.party, str(s.home.root), transport, {k: str(v) for k, v in drops.items()},
                             raw_council.clock.now(), backend, school_run_jobs) for s in raw_schools]
        more, busy, nights = _schools_in_processes(night, school_procs, say, transport)
        failures += more
        worker_rss = _rss_mb(resource.RUSAGE_CHILDREN)
    idle0 = ended(SCHOOLS_STAGE, t, idle0)
    schools_cpu = (_cpu_s() - cpu_before) + (_cpu_s(resource.RUSAGE_CHILDREN) - children_before)
    say(f"{transport}: {SCHOOLS_STAGE}: {seconds[SCHOOLS_STAGE]:.1f} s ({school_procs} process"
        f"{'es' if school_procs > 1 else ''}, {schools_cpu:.1f} s CPU)")

    t = time.perf_counter()
    with _heartbeat(say, f"{transport}: council_receipts"):
        back = run_nightly(council, jobs=n_procs)
    failures += [f.to_dict() for f in back.failures]
    ended("council_receipts", t, idle0)
    say(f"{transport}: council_receipts: {seconds['council_receipts']:.1f} s")
    cpu = (_cpu_s() - cpu0) + (_cpu_s(resource.RUSAGE_CHILDREN) - children0)
    for c in (council, *schools):
        c.close()
    return Stages(seconds, idle, cpu, schools_cpu, busy, worker_rss, _night_trend(nights), failures)


def _allocated_bytes(root: Path) -> int:
    """Disk blocks in use under `root` (what the file system gives up, not the files' lengths), by
    `du` (a million small files: the walk in C takes seconds, in Python a minute)."""
    out = subprocess.run(["du", "-s", "-B1", str(root)], capture_output=True, text=True, check=False)
    if out.returncode != 0 or not out.stdout.split():
        raise SystemExit(f"bench/nightly.py: cannot measure the disk used under {root}: {out.stderr.strip()}")
    return int(out.stdout.split()[0])


def _disk_needed(n: int, n_schools: int, seed: int) -> tuple[int, float, float]:
    """Bytes the run will need, from a small run of the same job (3 schools, 30 records, local folders:
    over sshd the files land in the same drop folders): what a school's home takes before the night
    and what each record adds over all four stages, and each ledger's write-ahead log at its full
    size (SQLite checkpoints it at about 4 MB, far more than the sample's few records write). With a
    quarter on top and half a gigabyte spare."""
    sample_schools, sample_n = 3, 30
    with tempfile.TemporaryDirectory(prefix="laxbench-size-") as tmp:
        root = Path(tmp)
        clock = FixedClock(dt.datetime.now(dt.UTC).replace(microsecond=0))
        raw_council, raw_schools, drops = _parties(root, sample_schools, clock, None)
        before = _allocated_bytes(root)
        _stages(raw_council, raw_schools, drops, "local", sample_n, seed, 1, _quiet)
        after = _allocated_bytes(root)
    per_home = before / (sample_schools + 1)
    per_record = (after - before) / sample_n
    need = int(((per_home + WAL_BYTES) * (n_schools + 1) + per_record * n) * 1.25) + 512 * 2**20
    return need, per_record, per_home


def _check_space(n: int, n_schools: int, seed: int) -> int:
    """Refuse a run the temporary folder's disk cannot hold, before any of it is made; the bytes it needs."""
    where = Path(tempfile.gettempdir())
    need, per_record, per_home = _disk_needed(n, n_schools, seed)
    free = shutil.disk_usage(where).free
    gb = 2**30
    _say(f"disk: about {need / gb:.1f} GB needed in {where} ({per_record / 1024:.0f} KB a record, "
         f"{per_home / 1024:.0f} KB a home, from a 30-record sample run), {free / gb:.1f} GB free")
    if need > free:
        print(f"bench/nightly.py: {n} records to {n_schools} schools need about {need / gb:.1f} GB in {where} "
              f"({per_record / 1024:.0f} KB a record, {per_home / 1024:.0f} KB a school's home, measured on a "
              f"30-record sample run, plus a quarter), but only {free / gb:.1f} GB is free there. Set TMPDIR "
              f"to a folder on a larger disk, or use fewer --records.", file=sys.stderr)
        raise SystemExit(2)
    return need


def bench(n: int, n_schools: int, transport: str, sample_n: int, seed: int, n_procs: int,
          disk_estimate: int | None = None, backend: str | None = None,
          notify_per_call: bool = False, school_procs: int | None = None,
          notify_chunk: int = NOTIFY_CHUNK, school_run_jobs: int = 1) -> dict[str, Any]:
    school_procs = school_procs or n_procs
    clock = FixedClock(dt.datetime.now(dt.UTC).replace(microsecond=0))
    load_start = os.getloadavg()
    cores = _cores()
    with tempfile.TemporaryDirectory(prefix="laxbench-nightly-") as tmp:
        root = Path(tmp)
        server = Sshd(root / "sshd", []).start() if transport == "sftp" else None
        try:
            t0 = time.perf_counter()
            raw_council, raw_schools, drops = _parties(root, n_schools, clock, server)
            setup_s = time.perf_counter() - t0
            _say(f"{transport}: {n_schools + 1} homes set up: {setup_s:.1f} s")

            run = _stages(raw_council, raw_schools, drops, transport, n, seed, n_procs, _say, backend,
                          notify_per_call, school_procs, notify_chunk, school_run_jobs)
            stages = run.seconds
            disk_t = time.perf_counter()
            disk_used = _allocated_bytes(root)  # to check the estimate against; not in any stage's time
            _say(f"{transport}: {disk_used / 2**20:.0f} MB on disk after the stages "
                 f"({time.perf_counter() - disk_t:.1f} s to measure)")
            wall = sum(stages.values())
            print(f"{transport}: stages {stages}", file=sys.stderr)
            counts = _count(raw_council.home.ledger_db, raw_schools, clock, n)
            rss = _rss_mb()
            load_end = os.getloadavg()

            urns = [s.party for s in raw_schools]
            sample = [_record(i, urns, seed) for i in range(sample_n)]
            crypto = _ceiling_crypto(raw_council, raw_schools, sample)
            sftp = None
            if server is not None:
                files = sorted((raw_council.home.outbox).glob("*.lax"))[:sample_n]
                receipts = sorted(p for s in raw_schools for p in (s.home.outbox / "receipts").glob("*.lax"))
                sftp = _ceiling_sftp(server, root, files + receipts[:sample_n])
        finally:
            if server is not None:
                server.stop()
    per_stage = _stage_ceilings(crypto, sftp)
    # a stage on k processes cannot beat its summed unavoidable work over min(k, cores)
    procs = {SCHOOLS_STAGE: school_procs, **({} if notify_per_call else {"notify": n_procs})}
    parallel = {k: min(procs.get(k, 1), cores) for k in per_stage}
    seq_s, par_s = _ceilings(per_stage, n, parallel)
    ceiling_s, ceiling_seq_s = sum(par_s.values()), sum(seq_s.values())
    own_seq_s, own_par_s = _ceilings(_stage_ceilings(crypto, sftp, own_code=True), n, parallel)
    return {
        "transport": transport, "sftp_backend": _sftp_settings(backend).backend if transport == "sftp" else None,
        "records": n, "schools": n_schools, "jobs": n_procs, "school_jobs": school_procs,
        "school_run_jobs": school_run_jobs, "cores": cores,
        "notify": "per-call" if notify_per_call else f"batches of {notify_chunk}",
        "setup_s": round(setup_s, 1), "wall_s": round(wall, 2), "records_per_s": round(n / wall, 1),
        "peak_rss_mb": round(rss, 1),  # this process (the council's stages, and the counting)
        "worker_peak_rss_mb": None if run.worker_peak_rss_mb is None else round(run.worker_peak_rss_mb, 1),
        # user + system CPU over the stages: this process and the schools' worker processes (not sshd's)
        "cpu_s": round(run.cpu_s, 1), "cpu_ms_per_record": round(run.cpu_s / n * 1000, 2),
        "schools_cpu_s": round(run.schools_cpu_s, 1),  # the schools' stage alone, summed over its workers
        "school_nights": run.school_nights,
        "schools_busy_s": round(run.schools_busy_s, 1),  # the schools' own run_nightly seconds, summed
        "disk_used_mb": round(disk_used / 2**20), "disk_estimate_mb": (None if disk_estimate is None else
                                                                         round(disk_estimate / 2**20)),
        "stages_s": {k: round(v, 2) for k, v in stages.items()},
        # the machine's idle core-seconds in each stage (/proc/stat: idle + iowait; None off Linux), and that
        # over the stage's wall times the cores: the share of the machine the stage left unused
        "stage_idle_core_s": {k: None if v is None else round(v, 1) for k, v in run.idle_core_s.items()},
        "stage_idle_share": {k: None if v is None or stages[k] <= 0 else round(v / (stages[k] * cores), 3)
                             for k, v in run.idle_core_s.items()},
        "stage_processes": parallel,
        "ceiling": {"sample": len(sample), "what": "the bare public-key, symmetric and hash operations of each "
                    "package (bench/support/primitives.py, on the real packages' shapes) + validating the record "
                    "where it is sent, the PEP where it is opened, the receipt where it is made and opened + "
                    "OpenSSH sftp put+rename and get of the same files; a stage on k processes: that work summed, "
                    "over min(k, cores)",
                    "s_per_record": {k: round(v, 6) for k, v in crypto.items()},
                    "openssh_sftp_s_per_file": {k: round(v, 6) for k, v in sftp.items()} if sftp else None,
                    "whole_run_s": round(ceiling_s, 4), "whole_run_sequential_s": round(ceiling_seq_s, 4)},
        "stage_ceiling_s": {k: {"sequential": round(seq_s[k], 4), "parallel": round(par_s[k], 4)} for k in seq_s},
        "ratio_to_ceiling": round(ceiling_s / wall, 3),
        "ratio_to_sequential_ceiling": round(ceiling_seq_s / wall, 3),
        "stage_ratio_to_ceiling": {k: round(par_s[k] / v, 3) for k, v in stages.items() if v > 0},
        "stage_ratio_to_sequential_ceiling": {k: round(seq_s[k] / v, 3) for k, v in stages.items() if v > 0},
        # a second reference, not a ceiling: the format's own pack and open (validating inside) in place
        # of the bare operations and the PEP's and receipt's validation (the ceiling before 2026-12-02)
        "format_ceiling": {"whole_run_s": round(sum(own_par_s.values()), 4),
                           "whole_run_sequential_s": round(sum(own_seq_s.values()), 4),
                           "stage_s": {k: round(v, 4) for k, v in own_par_s.items()}},
        "ratio_to_format_ceiling": round(sum(own_par_s.values()) / wall, 3),
        "stage_ratio_to_format_ceiling": {k: round(own_par_s[k] / v, 3) for k, v in stages.items() if v > 0},
        "counts": counts, "failures": run.failures[:5], "failure_count": len(run.failures),
        "load_avg": {"start": [round(x, 2) for x in load_start], "end": [round(x, 2) for x in load_end]},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 records to 4 schools (< 60 s)")
    ap.add_argument("--records", type=int, help="records (default 83000; quick 200)")
    ap.add_argument("--schools", type=int, help="partner schools (default 150; quick 4)")
    ap.add_argument("--transport", choices=["sftp", "local", "both"], default="sftp")
    ap.add_argument("--sample", type=int, help="records in the ceiling sample (default 2000; quick 50)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="worker processes for the schools' nightly jobs and for packing council IT's batches "
                         "(default: the CPU count; 1: all in this process, one after another)")
    ap.add_argument("--school-jobs", type=int,
                    help="worker processes for the schools' nightly jobs alone (default: --jobs); the schools' "
                         "stage's ceiling is still divided by the cores, not by this")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--backend", choices=["paramiko", "openssh"],
                    help="the SFTP backend (SSH client) for every party; default: the library's default")
    ap.add_argument("--notify-per-call", action="store_true",
                    help="notify one record a call (notify_placement), not in batches "
                         "(notify_placements): to pair the two")
    ap.add_argument("--school-run-jobs", type=int, choices=[1, 2], default=1,
                    help="each school's own `run --jobs` (default 1; 2: it collects and verifies ahead in a "
                         "second process, as the council does)")
    ap.add_argument("--notify-chunk", type=int, default=NOTIFY_CHUNK,
                    help=f"records a notify_placements call (default {NOTIFY_CHUNK})")
    args = ap.parse_args()
    n = args.records or (200 if args.quick else 83_000)
    n_schools = args.schools or (4 if args.quick else 150)
    if n < 1 or n_schools < 1 or args.jobs < 1 or args.notify_chunk < 1 or \
            (args.school_jobs is not None and args.school_jobs < 1):
        ap.error("--records, --schools, --jobs, --school-jobs and --notify-chunk must be at least 1")
    sample_n = min(n, args.sample or (50 if args.quick else 2000))
    transports = ["sftp", "local"] if args.transport == "both" else [args.transport]
    # one run at a time: the first's folder is gone before the second starts
    need = _check_space(n, n_schools, args.seed) if n >= SPACE_CHECK_FROM else None
    results = [bench(n, n_schools, t, sample_n, args.seed, args.jobs, need, args.backend, args.notify_per_call,
                     args.school_jobs, args.notify_chunk, args.school_run_jobs) for t in transports]
    for r in results:
        print(f"{r['transport']}: {r['records']} records to {r['schools']} schools in {r['wall_s']} s "
              f"({r['records_per_s']}/s, {r['school_jobs']} processes for the schools), {r['ratio_to_ceiling']}x the "
              f"ceiling ({r['ratio_to_sequential_ceiling']}x the one-core ceiling, {r['ratio_to_format_ceiling']}x the "
              f"format's-code reference); stages {r['stages_s']}; "
              f"counts {r['counts']}", file=sys.stderr)
    out = results[0] if len(results) == 1 else {"runs": results, **{k: results[0][k] for k in
                                                                     ("records_per_s", "wall_s", "peak_rss_mb")}}
    print(json.dumps(out))
    bad = any(r["counts"]["lost"] or r["counts"]["duplicated"] or r["counts"]["not_delivered"] for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
