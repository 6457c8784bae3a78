"""Every benchmark script imports and parses its options (a moved module must not break bench/ silently).

Speed itself is measured by the scripts (docs/benchmarks.md), never asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.parties import REPO

BENCHES = sorted((REPO / "bench").glob("*.py"))


def test_there_are_benchmarks() -> None:
    assert len(BENCHES) >= 3


@pytest.mark.parametrize("script", BENCHES, ids=lambda p: p.name)
def test_bench_script_starts_and_offers_quick(script: Path) -> None:
    out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60,
                         cwd=REPO, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "--quick" in out.stdout


def test_the_nightly_benchmark_runs_end_to_end_and_accounts_for_every_record() -> None:
    """A tiny run of bench/nightly.py over local folders: its last line is one JSON object, and its own
    count of lost, duplicated and undelivered records (from both sides' ledgers) is zero."""
    out = subprocess.run([sys.executable, str(REPO / "bench" / "nightly.py"), "--records", "6", "--schools", "2",
                          "--sample", "3", "--transport", "local"], capture_output=True, text=True, timeout=300,
                         cwd=REPO, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["counts"] == {"records": 6, "imported": 6, "duplicated": 0, "lost": 0, "delivered": 6,
                                "not_delivered": 0}
    assert result["wall_s"] > 0 and result["ceiling"]["whole_run_s"] > 0
