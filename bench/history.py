#!/usr/bin/env python3
"""Benchmark: one school's night after years of history (what grows with what was received before).

    .venv/bin/python bench/history.py --quick                 # history of 0 and 200 records (< 60 s)
    .venv/bin/python bench/history.py --sizes 0,2000 --pairs 5 --base /tmp/base-clocks

A school home (URN:100001) and its placing council (LA:919), over local folders, are given a history
of N records by the users' own calls (`notify_placement`, then the council's, the school's and the
council's `run_nightly`, in nights of 500, a day apart, ending 60 days ago), kept as a snapshot.
Each side works on its own copy of the snapshot (received/ hard-linked: the run replaces files by
rename, never in place). Each measured night, a day after the last, sends 50 new PEPs from the
council and times the school's `run_nightly`: the whole night and each of its stages (`on_stage`),
the `deadlines` stage being the clocks; so the history grows by 50 a night, alike on both sides.

With `--base DIR` (a checkout of the code compared against, e.g. main) every night runs in a child
process, alternately on this checkout's code and on DIR's, order swapped each pair; the figures are
min/median/max of each side and of the ratio (this / base) per pair. The snapshot is built once per
size with the base code (a home as the old code leaves it); each side then has one quiet night on
its copy (nothing new; for this code the first night after an upgrade, which fills its caches:
`first_night_s`), then its measured nights, on what the night before left.

The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# HISTORY_CODE: a child process running another checkout's code
sys.path.insert(0, os.environ.get("HISTORY_CODE") or str(Path(__file__).resolve().parent.parent))

from laxchange import samples
from laxchange.clock import FixedClock
from laxchange.exchange import Party
from laxchange.exchange.notify import notify_placement
from laxchange.exchange.run import run_nightly
from laxchange.home import Home
from laxchange.transport import Endpoint, LocalFolderTransport, RetryPolicy, Runner, StaticEndpoints
from laxchange.trust import PartnerDirectory
from laxchange.trust.keystore import KeyStore
from tests.support.parties import T0, WORK_FACTOR, make_party, passphrase
from tests.support.parties import Party as RawParty

HERE = Path(__file__).resolve().parent.parent
COUNCIL = "LA:919"
SCHOOL = "URN:100001"
NIGHT = 500  # records per night of history
NEW = 50  # PEPs in the measured night
NOW = T0 + dt.timedelta(days=400)


def _doc(i: int) -> dict[str, Any]:
    doc = samples.generate("education-record", 7 + i, 1)[0]
    doc["placement"]["placing_la"] = COUNCIL.split(":")[1]
    doc["school"]["urn"] = SCHOOL.split(":")[1]
    return doc


def _open(root: Path, who: str, clock: FixedClock) -> Party:
    home = Home(root / "homes" / who.replace(":", "_"))
    store = KeyStore(home, passphrase=passphrase, clock=clock, work_factor=WORK_FACTOR, ssh_kdf_rounds=1)
    raw = RawParty(who, home, store, PartnerDirectory(home, clock=clock), clock)
    endpoints = StaticEndpoints({k: Endpoint(k, f"file://{root / 'drops' / k.replace(':', '_')}")
                                 for k in (COUNCIL, SCHOOL)})
    return Party(home=raw.home, keystore=raw.store, directory=raw.directory, clock=clock,
                 transports=Runner(endpoints, LocalFolderTransport, RetryPolicy(attempts=1)))


def _notify(council: Party, first: int, n: int) -> None:
    for i in range(first, first + n):
        res = notify_placement(council, _doc(i), to=[SCHOOL], reason="new-placement",
                               purpose="Benchmark: PEP for the new school's Designated Teacher", send=False)
        if not res.ok:
            raise SystemExit(f"notify failed: {res.first_error()}")


def build(root: Path, n: int) -> None:
    """A history of `n` records, a night of `NIGHT` a day, the last 60 days before `NOW`."""
    nights = -(-n // NIGHT)
    clock = FixedClock(NOW - dt.timedelta(days=60 + nights))
    for who in (COUNCIL, SCHOOL):
        (root / "drops" / who.replace(":", "_")).mkdir(parents=True)
    c = make_party(root / "homes", COUNCIL, "Bench Council (fictional)", clock)
    s = make_party(root / "homes", SCHOOL, "Bench School (fictional)", clock)
    c.trust(s)
    s.trust(c)
    council, school = _open(root, COUNCIL, clock), _open(root, SCHOOL, clock)
    for k in range(nights):
        _notify(council, k * NIGHT, min(NIGHT, n - k * NIGHT))
        for p in (council, school, council):
            report = run_nightly(p)
            bad = [f.to_dict() for f in report.failures if f.step != "deadlines"]
            if bad:
                raise SystemExit(f"a history night failed: {bad[:3]}")
        clock.advance(days=1)
    clock.advance(days=58)  # a quiet night: what the history's nights sent expires now, not in the night measured
    for p in (council, school):
        run_nightly(p)
    council.close()
    school.close()


def _copy(snapshot: Path, work: Path) -> None:
    """The snapshot, received/ hard-linked (the run never writes a file there in place), the rest copied."""
    def copy(src: str, dst: str) -> None:
        if f"{os.sep}received{os.sep}" in src:
            os.link(src, dst)
        else:
            shutil.copy2(src, dst)
    shutil.copytree(snapshot, work, copy_function=copy, symlinks=True)


def night(work: Path, n_hist: int, k: int = 0) -> dict[str, Any]:
    """Night `k` (from `NOW`, a day apart) with `NEW` new PEPs; the school's run timed, stage by stage."""
    clock = FixedClock(NOW + dt.timedelta(days=k))
    council, school = _open(work, COUNCIL, clock), _open(work, SCHOOL, clock)
    _notify(council, n_hist + k * NEW, NEW)
    run_nightly(council)
    marks: list[tuple[str, float]] = []
    t = time.perf_counter()
    report = run_nightly(school, on_stage=lambda name: marks.append((name, time.perf_counter())))
    wall = time.perf_counter() - t
    end = t + wall
    stages = {name: (marks[k + 1][1] if k + 1 < len(marks) else end) - at for k, (name, at) in enumerate(marks)}
    imported = sum(1 for i in report.imported.items if i.result == "imported")
    council.close()
    school.close()
    return {"wall_s": wall, "stages_s": stages, "imported": imported,
            "failures": [f.to_dict() for f in report.failures]}


def prime(work: Path) -> dict[str, Any]:
    """A quiet night for the school the day before (nothing new): what the code run leaves between
    nights (its caches, if it keeps any) is then in place, as after any night but the first."""
    clock = FixedClock(NOW - dt.timedelta(days=1))
    school = _open(work, SCHOOL, clock)
    t = time.perf_counter()
    report = run_nightly(school)
    wall = time.perf_counter() - t
    school.close()
    return {"wall_s": wall, "failures": [f.to_dict() for f in report.failures]}


def _child(code: Path | None, *args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(code or HERE)}
    if code is not None:
        env["HISTORY_CODE"] = str(code)
    out = subprocess.run([sys.executable, __file__, *args], env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _summary(xs: list[float]) -> dict[str, float]:
    return {"min": round(min(xs), 4), "median": round(statistics.median(xs), 4), "max": round(max(xs), 4)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="sizes 0 and 200, 2 pairs (< 60 s)")
    ap.add_argument("--sizes", default="0,2000", help="history sizes, comma-separated (default 0,2000)")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--base", type=Path, help="a checkout to compare against (paired, interleaved)")
    ap.add_argument("--keep", type=Path, help="keep snapshots here (reused when present)")
    ap.add_argument("--build", nargs=2, metavar=("DIR", "N"), help=argparse.SUPPRESS)
    ap.add_argument("--night", nargs=3, metavar=("HOME", "N", "K"), help=argparse.SUPPRESS)
    ap.add_argument("--prime", nargs=2, metavar=("SNAPSHOT", "WORK"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build:
        build(Path(args.build[0]), int(args.build[1]))
        print(json.dumps({"built": args.build[0]}))
        return 0
    if args.prime:
        _copy(Path(args.prime[0]), Path(args.prime[1]))
        print(json.dumps(prime(Path(args.prime[1]))))
        return 0
    if args.night:
        print(json.dumps(night(Path(args.night[0]), int(args.night[1]), int(args.night[2]))))
        return 0
    sizes = [0, 200] if args.quick else [int(x) for x in args.sizes.split(",")]
    pairs = 2 if args.quick else args.pairs
    tmp = Path(tempfile.mkdtemp(prefix="lax-history-"))
    keep = args.keep or tmp
    out: dict[str, Any] = {"new_peps": NEW, "pairs": pairs, "load_before": os.getloadavg(), "sizes": {}}
    try:
        for n in sizes:
            snap = keep / f"snap-{n}"
            if not snap.exists():
                t = time.perf_counter()
                _child(args.base, "--build", str(snap), str(n))
                print(f"built history {n} in {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
            # each side's first quiet night on the snapshot (ours: the first night after an upgrade),
            # then its measured nights on what that left: the same history on both sides
            primed = {side: tmp / f"{side}-{n}" for side in ("ours", "base")}
            fig: dict[str, Any] = {"first_night_s": {}}
            for side in ("ours", "base") if args.base is not None else ("ours",):
                got = _child(args.base if side == "base" else None, "--prime", str(snap), str(primed[side]))
                fig["first_night_s"][side] = round(got["wall_s"], 4)
            runs: dict[str, list[dict[str, Any]]] = {"ours": [], "base": []}
            for k in range(pairs):
                order = ["ours", "base"] if k % 2 == 0 else ["base", "ours"]
                for side in order:
                    if side == "base" and args.base is None:
                        continue
                    code = args.base if side == "base" else None
                    runs[side].append(_child(code, "--night", str(primed[side]), str(n), str(k)))
            for side, rs in runs.items():
                if rs:
                    fig[side] = {"wall_s": _summary([r["wall_s"] for r in rs]),
                                 "clocks_s": _summary([r["stages_s"].get("deadlines", 0.0) for r in rs]),
                                 "imported": sorted({r["imported"] for r in rs}),
                                 "failures": sorted({len(r["failures"]) for r in rs})}
            if runs["base"]:
                fig["ratio_wall"] = _summary([o["wall_s"] / b["wall_s"] for o, b in zip(runs["ours"], runs["base"],
                                                                                      strict=True)])
                fig["ratio_clocks"] = _summary([o["stages_s"]["deadlines"] / b["stages_s"]["deadlines"]
                                                for o, b in zip(runs["ours"], runs["base"], strict=True)])
            out["sizes"][str(n)] = fig
            print(json.dumps({str(n): fig}), file=sys.stderr, flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    out["load_after"] = os.getloadavg()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
