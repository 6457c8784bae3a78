"""Progress on a terminal: a bar per file sent or collected, a line per stage of `laxchange run` (rich).

The library only calls back (`PartyProgress`: party, file name, bytes done, bytes total; a run's
`on_stage(name)`); drawing is done here, in the CLI. `App.progress()` makes one and says whether
it draws at all (stderr a terminal, no `--json`, no `-q`); when it does not, nothing is drawn and
rich is not even imported, so a cron job pays nothing for it.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress as Bars
    from rich.progress import TaskID


def _printable(text: str) -> str:
    """A sender chose a collected file's name: no control character of it reaches the terminal."""
    return "".join(c if c.isprintable() else "?" for c in text)


class Progress:
    """Transfer bars and run stages drawn on `stream` (transient: gone when the `with` block ends,
    except one line per finished stage); with `enabled` False, every call does nothing."""

    def __init__(self, stream: TextIO, *, enabled: bool, color: bool, stages: int = 0) -> None:
        self.stream = stream
        self.enabled = enabled
        self.color = color
        self.stages = stages
        self._bars: Bars | None = None
        self._lock = threading.Lock()
        self._tasks: dict[tuple[str, str], TaskID] = {}
        self._stage: tuple[int, str, float, TaskID] | None = None
        self._stage_count = 0

    def __enter__(self) -> Progress:
        if not self.enabled:
            return self
        from laxchange.cli.bars import make_bars

        self._bars = make_bars(self.stream, color=self.color)
        self._bars.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self._bars is None:
            return
        self._end_stage("stopped" if et is not None else "done")
        self._bars.stop()
        self._bars = None

    def __call__(self, party: str, name: str, done: int, total: int) -> None:
        """One file's progress (a `PartyProgress`; called from the transferring threads)."""
        bars = self._bars
        if bars is None:
            return
        key = (party, name)
        with self._lock:
            task = self._tasks.get(key)
            if task is None:
                task = self._tasks[key] = bars.add_task(f"{party} {_printable(name)}", total=total or None, file=True)
                bars.refresh()
        bars.update(task, completed=done, total=total or None)
        if done >= total:
            with self._lock:
                self._tasks.pop(key, None)
            bars.remove_task(task)

    def stage(self, name: str) -> None:
        """A stage of a run starts (`run_nightly`'s `on_stage`): the last one gets its line."""
        self._stage_count += 1
        bars = self._bars
        if bars is None:
            return
        self._end_stage("done")
        label = f"run {self._stage_count}/{self.stages or '?'} {name}"
        task = bars.add_task(label, total=None)
        bars.refresh()
        self._stage = (self._stage_count, label, time.monotonic(), task)

    def _end_stage(self, how: str) -> None:
        if self._bars is None or self._stage is None:
            return
        _n, label, started, task = self._stage
        self._stage = None
        self._bars.remove_task(task)
        self._bars.console.print(f"{label}: {how} ({time.monotonic() - started:.1f}s)", markup=False)

    def print(self, text: str) -> None:
        """A line above the bars (a warning while they are drawn), its colours kept (`App.paint`'s)."""
        if self._bars is None:
            self.stream.write(text + "\n")
            return
        from laxchange.cli.bars import ansi_text

        self._bars.console.print(ansi_text(text), highlight=False, soft_wrap=True)
