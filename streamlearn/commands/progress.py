"""One progress bar for the long-running commands: events done, events per second, elapsed.

Built on rich; drawn on a terminal only, so a pipe or a log file gets no progress lines.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text


class EventRateColumn(ProgressColumn):
    """Events per second, from rich's own moving estimate."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:>8.0f} events/s")


def event_progress() -> Progress:
    """A progress display on stderr; add a task per stream (`total=None` when unknown)."""
    console = Console(stderr=True)
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        EventRateColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )
