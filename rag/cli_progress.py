"""The progress bar `rag ingest` and `rag reindex` draw on a terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console


class RichProgress:
    """Files and chunks with rate and time left; silent when stderr is not a terminal."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files, {task.fields[chunks]} chunks ({task.fields[rate]} chunks/s)"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not console.is_terminal,
            transient=False,
        )
        self._task: Any = None

    def start(self, total_files: int) -> None:
        self._progress.start()
        self._task = self._progress.add_task("ingesting", total=total_files, chunks=0, rate="-")

    def advance(self, *, files: int = 0, chunks: int = 0) -> None:
        task = self._progress.tasks[0]
        total = task.fields["chunks"] + chunks
        elapsed = task.elapsed or 0.0
        rate = f"{total / elapsed:.1f}" if elapsed > 0 and total else "-"
        self._progress.update(self._task, advance=files, chunks=total, rate=rate)

    def finish(self) -> None:
        self._progress.stop()
