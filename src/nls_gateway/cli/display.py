"""The terminal side of ``nls transcribe``: finished text, partial results and a progress bar.

Finished pieces (sentence lines, cues, JSON lines) always go to stdout at once, flushed,
so a pipe sees each sentence as it finishes. When stdout is a terminal, the sentence in
progress is shown under them and rewritten in place as partial results arrive (a
transient rich ``Live`` area that never reaches a pipe or file). A progress bar (rich)
shows how much of a file longer than :data:`PROGRESS_MIN_S` has been sent: in the live
area when stdout is a terminal, else on stderr when that is one.

It must not talk to a server or format results (``output.py`` does).
"""

from __future__ import annotations

from types import TracebackType
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

__all__ = ["PROGRESS_MIN_S", "Display"]

PROGRESS_MIN_S = 5.0
"""Files at least this long get a progress bar; shorter ones finish before it helps."""


class Display:
    """Writes a transcription's output; use as a context manager.

    Args:
        out: where results go (stdout).
        err_console: the console for the progress bar when ``out`` is not a terminal
            (default: stderr). Tests pass one with ``force_terminal=True``.
        total: seconds of audio to send, when known (files); None for stdin.
        name: shown beside the bar.
        out_console: console for ``out`` (default: one writing to ``out``).
    """

    def __init__(
        self,
        out: TextIO,
        *,
        err_console: Console | None = None,
        total: float | None = None,
        name: str = "",
        out_console: Console | None = None,
    ) -> None:
        self.out = out
        self.console = out_console or Console(file=out, highlight=False)
        self.err_console = err_console or Console(stderr=True, highlight=False)
        self.live_text = self.console.is_terminal
        """stdout is a terminal: partial results are shown and rewritten in place."""
        bar_console = self.console if self.live_text else self.err_console
        self.show_bar = total is not None and total >= PROGRESS_MIN_S and bar_console.is_terminal
        self._partial = Text("", style="dim")
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if self.show_bar:
            self._progress = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
                TimeRemainingColumn(),
                console=bar_console,
                transient=True,
            )
            self._task = self._progress.add_task(name or "audio", total=total)
        self._live: Live | None = None
        if self.live_text:
            parts: list[Text | Progress] = [self._partial]
            if self._progress is not None:
                parts.append(self._progress)
            self._live = Live(
                Group(*parts), console=self.console, transient=True, refresh_per_second=8
            )

    def __enter__(self) -> Display:
        if self._live is not None:
            self._live.start()
        elif self._progress is not None:
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def write(self, text: str) -> None:
        """Write finished output now (it scrolls above the live area on a terminal)."""
        if not text:
            return
        if self._live is not None:
            self._partial.plain = ""
            self._live.console.print(
                text, end="", markup=False, highlight=False, soft_wrap=True, emoji=False
            )
        else:
            self.out.write(text)
            self.out.flush()

    def partial(self, text: str) -> None:
        """Show the sentence in progress (terminal only; replaced by the next call)."""
        if self._live is not None:
            self._partial.plain = text

    def advance(self, seconds: float) -> None:
        """``seconds`` of audio have been sent so far."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=seconds)

    def close(self) -> None:
        """Stop the live area and the bar (both vanish: they were transient). Idempotent."""
        if self._live is not None:
            self._live.stop()
            self._live = None
        elif self._progress is not None:
            self._progress.stop()
        self._progress = None
