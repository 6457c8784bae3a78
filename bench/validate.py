#!/usr/bin/env python3
"""Validation throughput: sample education records per second, one core, full pipeline, paired
with the standard library's json.loads of the same bytes.

Each record goes through what `laxchange validate` does to a file's bytes: strict JSON parse,
JSON Schema (draft 2020-12, formats checked) and every domain rule. The reference is json.loads
of the same bytes, the least any validator has to do to them (the floor, not a target): the two
run in interleaved rounds (A, B, A, B ..., rotating order, >= 5 rounds), each call a pass over the
same records, so both see the same records and the same machine, and the ratio is taken per
round. Target: England's 83,000 looked-after children validated in <= 60 s on one core
(>= 1,383 records/s). Last line of output: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support.paired import paired, pin_one_core, rate_ratios, spread
from laxchange import samples
from laxchange._util import jsonio
from laxchange.validate import validate_bytes

TARGET_RECORDS = 83_000
TARGET_SECONDS = 60.0


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a short run (well under 60 s): 5 rounds, 300 records")
    ap.add_argument("--records", type=int, default=None, help="distinct records (default 2000, quick 300)")
    ap.add_argument("--rounds", type=int, default=None, help="paired rounds (default 9, quick 5)")
    ap.add_argument("--seconds", type=float, default=None,
                    help="wall time of each arm in each round (default 2.0, quick 0.5)")
    args = ap.parse_args()
    n = args.records or (300 if args.quick else 2000)
    rounds = args.rounds or (5 if args.quick else 9)
    seconds = args.seconds or (0.5 if args.quick else 2.0)
    cpu = pin_one_core()  # one core, as the target says

    blobs = [jsonio.dumps_pretty(d).encode() for d in samples.generate("education-record", 1, n)]
    mean_size = sum(map(len, blobs)) / len(blobs)
    for b in blobs[:50]:  # warm caches (schema compilation, code lists)
        assert validate_bytes(b).ok

    invalid = 0

    def validate_all() -> None:
        nonlocal invalid
        for b in blobs:
            if not validate_bytes(b).ok:
                invalid += 1

    def json_loads_all() -> None:
        for b in blobs:
            json.loads(b)

    t0 = time.perf_counter()
    t = paired([("validate", validate_all), ("json_loads", json_loads_all)], rounds=rounds, seconds=seconds)
    per_record = {k: [x / n for x in v] for k, v in t.wall.items()}
    rps = [1 / x for x in per_record["validate"]]
    med = spread(rps, 1)
    result = {
        "bench": "validate",
        "quick": args.quick,
        "rounds": rounds,
        "cpu": cpu,
        "distinct_records": n,
        "mean_record_bytes": round(mean_size),
        "records_per_s": med,
        "json_loads_per_s": spread([1 / x for x in per_record["json_loads"]], 1),
        "vs_json_loads": spread(rate_ratios(t.wall, "validate", "json_loads"), 4),
        "vs_json_loads_cpu": spread(rate_ratios(t.cpu, "validate", "json_loads"), 4),
        "target_records_per_s": round(TARGET_RECORDS / TARGET_SECONDS, 1),
        "projected_seconds_for_83000": {"at_min": round(TARGET_RECORDS / med["min"], 1),
                                        "at_median": round(TARGET_RECORDS / med["median"], 1)},
        "meets_target": med["min"] >= TARGET_RECORDS / TARGET_SECONDS,
        "invalid": invalid,
        "python": platform.python_version(),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    v = result["vs_json_loads"]
    print(f"validate: {med['min']:,.0f} / {med['median']:,.0f} / {med['max']:,.0f} records/s (min/median/max of "
          f"{rounds} rounds); 83,000 would take {TARGET_RECORDS / med['median']:.1f} s at the median "
          f"(target {TARGET_SECONDS:.0f} s); vs json.loads {v['min']:.3f} / {v['median']:.3f} / {v['max']:.3f}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
