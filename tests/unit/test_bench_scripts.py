"""Every benchmark script imports and parses its options (a moved module must not break bench/ silently).

Speed itself is measured by the scripts (docs/benchmarks.md), never asserted here.
"""

from __future__ import annotations

import base64
import datetime as dt
import importlib
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature

from laxchange import package
from laxchange.errors import SecurityError
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


def _nightly_local(*, records: int, schools: int, jobs: int, extra: tuple[str, ...] = ()) -> tuple[Any, str]:
    """A tiny bench/nightly.py run over local folders: its last line's JSON and its stderr (it must
    exit 0)."""
    out = subprocess.run([sys.executable, str(REPO / "bench" / "nightly.py"), "--records", str(records),
                          "--schools", str(schools), "--sample", "3", "--transport", "local", "--jobs", str(jobs),
                          *extra],
                         capture_output=True, text=True, timeout=300, cwd=REPO, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


def test_the_nightly_benchmark_runs_end_to_end_and_accounts_for_every_record() -> None:
    """A tiny run of bench/nightly.py over local folders: its last line is one JSON object, and its own
    count of lost, duplicated and undelivered records (from both sides' ledgers) is zero."""
    result, _ = _nightly_local(records=6, schools=2, jobs=1)
    assert result["counts"] == {"records": 6, "imported": 6, "duplicated": 0, "lost": 0, "delivered": 6,
                                "not_delivered": 0}
    assert result["wall_s"] > 0 and result["ceiling"]["whole_run_s"] > 0
    # the ceiling is the bare operations (with validation); the format's own pack and open, which do
    # those and more, are the second reference, so each costs more than its bare operations
    per = result["ceiling"]["s_per_record"]
    for op in ("pack_pep", "open_pep", "pack_receipt", "open_receipt"):
        assert per[op] > per[f"bare_{op}"] > 0, (op, per)
    assert result["format_ceiling"]["whole_run_s"] > result["ceiling"]["whole_run_s"]
    nights = result["school_nights"]  # each school's night, so a slowing across the stage shows
    assert nights["n"] == 2 and nights["wall_s"]["min"] > 0
    assert nights["first_tenth"]["seconds"] > 0 and nights["first_tenth"]["user_s"] > 0
    assert result["ratio_to_format_ceiling"] > result["ratio_to_ceiling"] > 0
    idle, share = result["stage_idle_core_s"], result["stage_idle_share"]
    assert set(idle) == set(share) == set(result["stages_s"])
    if Path("/proc/stat").exists():  # the machine's idle cores in each stage: none is more than all of them
        assert all(0 <= s <= 1.05 for s in share.values()), share


def test_the_nightly_benchmark_runs_the_schools_in_worker_processes_and_still_counts_every_record() -> None:
    """`--jobs 2`: the schools' nights run in two processes at once; nothing is lost or duplicated, the
    stage's CPU is summed over the workers, and its ceiling is the summed work over min(2, cores)."""
    result, stderr = _nightly_local(records=8, schools=3, jobs=2, extra=("--school-run-jobs", "2"))
    assert result["counts"] == {"records": 8, "imported": 8, "duplicated": 0, "lost": 0, "delivered": 8,
                                "not_delivered": 0}
    assert result["jobs"] == 2 and result["stage_processes"]["schools_import_and_receipt"] == 2
    assert result["school_run_jobs"] == 2  # each school's own night collected in a second process too
    assert result["schools_cpu_s"] > 0 and result["worker_peak_rss_mb"] > 0
    divided = min(2, result["cores"])
    stage = result["stage_ceiling_s"]["schools_import_and_receipt"]
    assert stage["parallel"] == pytest.approx(stage["sequential"] / divided, abs=0.011)
    assert "(2 processes)" in stderr


@pytest.fixture
def nightly() -> Iterator[ModuleType]:
    sys.path.insert(0, str(REPO / "bench"))
    try:
        yield importlib.import_module("nightly")
    finally:
        sys.path.remove(str(REPO / "bench"))


def test_a_failing_school_worker_stops_the_benchmark_with_its_error(nightly: ModuleType, tmp_path: Path) -> None:
    """An error in a worker process is not swallowed: the stage stops, naming the school and the error."""
    job = nightly.SchoolNight("URN:100001", str(tmp_path / "no-such-home"), "local", {}, dt.datetime.now(dt.UTC))
    with pytest.raises(SystemExit) as info:
        nightly._schools_in_processes([job], 1, lambda _msg: None, "local")
    assert "URN:100001" in str(info.value.code) and "Traceback" in str(info.value.code)


def _flip_manifest_signature(data: bytes) -> bytes:
    """The package with one bit of its manifest's first signature flipped (still canonical base64)."""
    at = data.index(b'"sig":"') + len(b'"sig":"')
    end = data.index(b'"', at)
    sig = bytearray(base64.b64decode(data[at:end]))
    sig[0] ^= 1
    return data[:at] + base64.b64encode(bytes(sig)) + data[end:]


@pytest.mark.parametrize("size", [10 * 1024, 1024 * 1024], ids=["10KB", "1MB"])
@pytest.mark.parametrize("mldsa", [False, True], ids=["ed25519", "ed25519+ml-dsa-65"])
def test_the_straight_line_reference_makes_and_reads_real_packages(tmp_path: Path, mldsa: bool, size: int) -> None:
    """bench/package.py's straight line is a fair reference only while its bytes are the format's
    and its reader refuses what a reader must: laxchange opens what it packs and it opens what
    laxchange packs (`Case.straight` checks both), and each refuses the other's package with a
    signature changed, or with a byte of the payload changed."""
    sys.path.insert(0, str(REPO))
    case = importlib.import_module("bench.package").Case(tmp_path, size, mldsa)
    assert case.straight_line()() == case.doc
    line, now = case.straight(), case.sa.clock.now()
    made = line.pack(case.doc, now, dt.timedelta(days=30))
    real = io.BytesIO()
    package.pack(case.doc, message_type="pep-transfer", recipient="URN:123456", keystore=case.sa,
                 directory=case.da, out=real, validate=False)
    for bad in (_flip_manifest_signature(made), made[:-100] + bytes([made[-100] ^ 1]) + made[-99:]):
        with pytest.raises(SecurityError) as exc:
            package.open_package(io.BytesIO(bad), keystore=case.sb, directory=case.db, validate=False)
        assert exc.value.code in ("package.tampered", "package.bad-signature"), exc.value.code
    with pytest.raises(InvalidSignature):
        line.open(_flip_manifest_signature(real.getvalue()), now)
    with pytest.raises(AssertionError):
        line.open(real.getvalue()[:-100] + bytes([real.getvalue()[-100] ^ 1]) + real.getvalue()[-99:], now)
