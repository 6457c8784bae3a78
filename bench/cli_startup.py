#!/usr/bin/env python3
"""CLI start-up: wall time of `laxchange --help` and `laxchange --version`, in fresh processes.

Each round runs, interleaved so machine noise hits all of them alike: `python -c pass` (the
interpreter's own start-up, the physical floor), then `python -m laxchange --help`, then
`python -m laxchange --version`. The code measured is this checkout's (PYTHONPATH points at it).
Target: both under 0.5 s. Last line of output: one JSON object with min/median/max seconds and
the ratio of each median to the `python -c pass` median.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 0.5

CASES: dict[str, list[str]] = {
    "python_pass": ["-c", "pass"],
    "help": ["-m", "laxchange", "--help"],
    "version": ["-m", "laxchange", "--version"],
}


def _once(args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} exited {proc.returncode}: {proc.stderr.decode(errors='replace')}")
    return elapsed


def _summary(times: list[float]) -> dict[str, float]:
    return {"min": round(min(times), 4), "median": round(statistics.median(times), 4), "max": round(max(times), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds (a few seconds)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds of the three commands (default 30, quick 10)")
    args = ap.parse_args()
    rounds = args.rounds or (10 if args.quick else 30)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    # An installed laxchange has its bytecode (pip compiles on install); without it every start
    # compiles each module it imports (+0.04-0.08 s here). The warm-up below writes it, unless the
    # environment forbids writing it, as some CI and sandbox shells do: then it is allowed here.
    env.pop("PYTHONDONTWRITEBYTECODE", None)

    for case in CASES.values():  # warm the OS file cache and .pyc files; not timed
        _once(case, env)
    times: dict[str, list[float]] = {name: [] for name in CASES}
    budget = time.monotonic() + 55.0
    for i in range(rounds):
        for name, case in CASES.items():
            times[name].append(_once(case, env))
        print(f"round {i + 1}: " + "  ".join(f"{n} {t[-1]:.3f}s" for n, t in times.items()), file=sys.stderr)
        if time.monotonic() > budget:
            break

    result: dict[str, object] = {name: _summary(t) for name, t in times.items()}
    floor = statistics.median(times["python_pass"])
    for name in ("help", "version"):
        result[f"{name}_vs_python_pass"] = round(statistics.median(times[name]) / floor, 1)
    result["target_seconds"] = TARGET_SECONDS
    result["target_met"] = all(max(times[n]) < TARGET_SECONDS for n in ("help", "version"))
    result["rounds"] = len(times["help"])
    result["bytecode_cached"] = (ROOT / "laxchange" / "__pycache__").is_dir()
    result["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    result["python"] = platform.python_version()
    result["cpus"] = os.cpu_count()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
