"""pack+open (or open alone) of bench/package.py's 10 KB case in a loop, for a sampling profiler.

    py-spy record -r 1000 -f raw -o open.txt -- .venv/bin/python -m bench.support.loop open 15

Not a benchmark (it prints how many calls it made, nothing to compare): the profile it gives is
the one docs/benchmarks.md quotes for where laxchange's time goes beyond the primitives.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.package import SIZES, Case
from laxchange import package


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["open", "pack+open"])
    ap.add_argument("seconds", type=float)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        case = Case(Path(tmp), SIZES["10k"], mldsa=False)
        if args.what == "open":
            made = io.BytesIO()
            package.pack(case.doc, message_type="pep-transfer", recipient="URN:123456", keystore=case.sa,
                         directory=case.da, out=made, validate=False)
            data = made.getvalue()

            def once() -> object:
                return package.open_package(io.BytesIO(data), keystore=case.sb, directory=case.db, validate=False)
        else:
            once = case.pack_open()
        calls, end = 0, time.monotonic() + args.seconds
        while time.monotonic() < end:
            once()
            calls += 1
    print(f"{calls} calls of {args.what} in {args.seconds:g} s")


if __name__ == "__main__":
    main()
