"""The demo: the main job end to end on embedded defaults, with fictional children only.

Each step is a function of a `DemoContext` so the CLI, the tests and other programs can run
the same sequence. Steps print what a user would see; nothing here is faked.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import jsonio, samples
from .clock import Clock, SystemClock
from .errors import InvalidData
from .validate import validate_file


@dataclass
class DemoContext:
    workdir: Path
    clock: Clock = field(default_factory=SystemClock)
    say: Callable[[str], None] = print
    results: dict[str, Any] = field(default_factory=dict)


def step_samples(ctx: DemoContext, count: int = 25) -> list[Path]:
    """Write fictional records of every type, as a council's case system would export them."""
    out = ctx.workdir / "samples"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind in samples.GENERATORS:
        for i, doc in enumerate(samples.generate(kind, 7, count)):
            p = out / f"{kind}-{i:03d}.json"
            jsonio.write_atomic(p, jsonio.dumps_pretty(doc).encode("utf-8"), mode=0o644)
            paths.append(p)
    ctx.say(f"1. generated {len(paths)} fictional documents ({count} of each of {len(samples.GENERATORS)} types) in {out}")
    return paths


def step_validate(ctx: DemoContext, paths: list[Path]) -> None:
    """Validate them all, and show that a corrupted UPN is caught with path, rule and hint."""
    t0 = time.perf_counter()
    reports = [validate_file(p, clock=ctx.clock) for p in paths]
    elapsed = time.perf_counter() - t0
    bad = [r for r in reports if not r.ok]
    if bad:
        raise InvalidData(f"demo: {len(bad)} generated document(s) failed validation: {bad[0].source}",
                          code="demo.invalid-sample", hint="this is a bug in the sample generator")
    warnings = sum(len(r.warnings) for r in reports)
    ctx.say(f"2. validated {len(reports)} documents in {elapsed:.2f} s: all valid, {warnings} guidance warning(s)")
    doc = next(d for d in (jsonio.load_file(p) for p in paths if p.name.startswith("education-record"))
               if "upn" in d["child"])
    upn = doc["child"]["upn"]
    doc["child"]["upn"] = ("A" if upn[0] != "A" else "B") + upn[1:]
    broken = ctx.workdir / "broken-upn.json"
    jsonio.write_atomic(broken, jsonio.dumps_pretty(doc).encode("utf-8"), mode=0o644)
    report = validate_file(broken, clock=ctx.clock)
    ctx.say("3. a record with a mistyped UPN check letter is refused:")
    for f in report.errors:
        ctx.say("   " + f.format().replace("\n", "\n   "))
    ctx.results.update(validated=len(reports), warnings=warnings, broken_rules=[f.rule for f in report.errors])


def run(workdir: Path | None = None, *, clock: Clock | None = None,
        say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every demo step; returns a summary (also printed step by step)."""
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix="laxchange-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(workdir=workdir, clock=clock or SystemClock(), say=say)
    ctx.say(f"laxchange demo: fictional children only; working in {workdir}")
    paths = step_samples(ctx)
    step_validate(ctx, paths)
    ctx.results["workdir"] = str(workdir)
    return ctx.results
