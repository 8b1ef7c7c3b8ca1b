"""The live progress display of `edge-sim` (rich), on stderr so the report stays clean."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from simulator.run import Progress as SimProgress


class Display:
    """A progress bar over the simulated day with running counts."""

    def __init__(self) -> None:
        self.console = Console(stderr=True)
        self._progress: Progress | None = None
        self._task: int | None = None

    def __repr__(self) -> str:
        return f"<Display live={self._progress is not None}>"

    def say(self, text: str) -> None:
        """Print one line of status."""
        self.console.print(text)

    @contextmanager
    def stage(self, text: str) -> Iterator[None]:
        """Show a spinner while a stage runs."""
        with self.console.status(text):
            yield
        self.console.print(f"[green]done[/]: {text}")

    @contextmanager
    def playing(self, length: float) -> Iterator[None]:
        """Show the day's progress while it plays."""
        self._progress = Progress(
            TextColumn("[bold]{task.fields[clock]}"),
            BarColumn(),
            TextColumn(
                "inside {task.fields[inside]:>5}  taps {task.fields[taps]:>6}  "
                "console {task.fields[stored]:>7}  fault alarms {task.fields[alarms]:>3}"
            ),
            TimeElapsedColumn(),
            console=self.console,
        )
        with self._progress:
            self._task = self._progress.add_task(
                "day", total=length, clock="--:--:--", inside=0, taps=0, stored=0, alarms=0
            )
            yield
        self._progress = None

    def update(self, progress: SimProgress) -> None:
        """Take the simulation's figures (called from its heartbeat)."""
        if self._progress is None or self._task is None:
            return
        self._progress.update(
            self._task,  # type: ignore[arg-type]
            completed=progress.at,
            clock=progress.clock,
            inside=progress.inside,
            taps=progress.taps,
            stored=progress.stored,
            alarms=progress.alarms,
        )
