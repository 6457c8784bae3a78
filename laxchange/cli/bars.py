"""The rich side of `laxchange.cli.progress`, imported only when bars are drawn (rich costs start-up time)."""

from __future__ import annotations

from typing import TextIO

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Column
from rich.text import Text


class _FilesOnly(ProgressColumn):
    """A column shown for a file's bar only (a run stage's line has just its spinner, name and time)."""

    def __init__(self, inner: ProgressColumn) -> None:
        super().__init__()
        self.inner = inner

    def render(self, task: Task) -> RenderableType:
        return self.inner.render(task) if task.fields.get("file") else Text("")


def make_bars(stream: TextIO, *, color: bool) -> Progress:
    """Transient bars on `stream`, a terminal (the caller has checked), coloured only if `color`."""
    console = Console(file=stream, force_terminal=True, no_color=not color, color_system="auto" if color else None,
                      highlight=False, emoji=False)
    name = TextColumn("{task.description}", markup=False, table_column=Column(no_wrap=True, overflow="ellipsis"))
    size = DownloadColumn(table_column=Column(no_wrap=True))
    return Progress(SpinnerColumn(), name, _FilesOnly(BarColumn()), _FilesOnly(size), _FilesOnly(TransferSpeedColumn()),
                    TimeElapsedColumn(), console=console, transient=True, redirect_stdout=False,
                    redirect_stderr=False)


def ansi_text(text: str) -> Text:
    """A line holding ANSI colours (`App.paint`'s) as rich text, so it prints above the bars intact."""
    return Text.from_ansi(text)
