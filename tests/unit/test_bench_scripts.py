"""Every benchmark script imports and parses its options (a moved module must not break bench/ silently).

Speed itself is measured by the scripts (docs/benchmarks.md), never asserted here.
"""

from __future__ import annotations

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
