#!/usr/bin/env python3
"""Validation throughput: sample education records per second, one core, full pipeline.

Each record goes through what `laxchange validate` does to a file's bytes: strict JSON parse,
JSON Schema (draft 2020-12, formats checked) and every domain rule. The reference run in the
same process is the stdlib `json.loads` of the same bytes, so the figure can be read as a ratio
on a noisy machine. Target: England's 83,000 looked-after children validated in <= 60 s
(>= 1,383 records/s). Last line of output: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from laxchange import samples
from laxchange._util import jsonio
from laxchange.validate import validate_bytes

TARGET_RECORDS = 83_000
TARGET_SECONDS = 60.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a short run (well under 60 s)")
    ap.add_argument("--records", type=int, default=None, help="distinct records to generate")
    ap.add_argument("--seconds", type=float, default=None, help="time budget for the timed loop")
    args = ap.parse_args()
    n = args.records or (300 if args.quick else 2000)
    budget = args.seconds or (8.0 if args.quick else 40.0)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the target says

    blobs = [jsonio.dumps_pretty(d).encode() for d in samples.generate("education-record", 1, n)]
    mean_size = sum(map(len, blobs)) / len(blobs)

    for b in blobs[:50]:  # warm caches (schema compilation, code lists)
        assert validate_bytes(b).ok

    def timed(fn) -> tuple[int, float]:
        done, t0 = 0, time.perf_counter()
        while True:
            for b in blobs:
                fn(b)
            done += len(blobs)
            elapsed = time.perf_counter() - t0
            if elapsed >= budget / 2:
                return done, elapsed

    invalid = 0

    def full(b: bytes) -> None:
        nonlocal invalid
        if not validate_bytes(b).ok:
            invalid += 1

    ref_done, ref_elapsed = timed(json.loads)
    done, elapsed = timed(full)
    rps = done / elapsed
    result = {
        "bench": "validate",
        "quick": args.quick,
        "records": done,
        "distinct_records": n,
        "mean_record_bytes": round(mean_size),
        "seconds": round(elapsed, 3),
        "records_per_s": round(rps, 1),
        "target_records_per_s": round(TARGET_RECORDS / TARGET_SECONDS, 1),
        "projected_seconds_for_83000": round(TARGET_RECORDS / rps, 1),
        "meets_target": rps >= TARGET_RECORDS / TARGET_SECONDS,
        "invalid": invalid,
        "reference_json_loads_per_s": round(ref_done / ref_elapsed, 1),
        "vs_json_loads": round(rps / (ref_done / ref_elapsed), 5),
        "python": platform.python_version(),
    }
    print(f"validated {done} records in {elapsed:.2f} s: {rps:,.0f}/s; 83,000 would take "
          f"{TARGET_RECORDS / rps:.1f} s (target {TARGET_SECONDS:.0f} s)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
