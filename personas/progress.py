"""Progress inside the long steps: one line per finished stage, live on a terminal.

The steps report what they did as each part of them ends, with its time::

      load: 8,245,182 rows read and checked (0.4 s)
      load: 50,000 users summed from 8,245,182 events (7.4 s)
      features: 41 features for 50,000 users (1.3 s)
      personas: 5 fits on 5,000 users each, 7 personas (25.3 s)
      personas: 50,000 users assigned (1.2 s)

Written to a file, a pipe or a notebook cell, that is all: one line per stage. On a terminal the
stage under way is shown too, on one line redrawn in place (a carriage return) with its running
time and, where the step can say (a DuckDB query), its percentage; the finished line replaces it.

>>> import io
>>> out = io.StringIO()
>>> progress = Progress(out)
>>> with progress.stage("load", "reading rows") as stage:
...     stage.done("1,000 rows read")
>>> out.getvalue().startswith("  load: 1,000 rows read (")
True
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

CLEAR = "\r\x1b[K"  # back to the start of the line and erase it (VT100, every terminal)


class Stage:
    """One part of a step, while it runs: :meth:`done` says what it did."""

    def __init__(self, label: str, doing: str, poll: Callable[[], float] | None):
        self.label = label
        self.doing = doing
        self.poll = poll
        self.result: str | None = None
        self.start = time.perf_counter()

    def done(self, text: str) -> None:
        """What the finished line says (default: what it was doing)."""
        self.result = text

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def running_line(self) -> str:
        percent = self.poll() if self.poll is not None else -1
        share = f" {percent:.0f}%" if 0 <= percent <= 100 else ""
        return f"{self.label}: {self.doing} ...{share} ({self.elapsed():.0f} s)"

    def finished_line(self) -> str:
        return f"{self.label}: {self.result or self.doing} ({self.elapsed():.1f} s)"


class Progress:
    """Where the steps report their stages.

    Parameters
    ----------
    stream
        Where lines go; default standard output as it is when a line is written (in a notebook,
        under the running cell).
    live
        Show the stage under way on one line redrawn in place; default: whether ``stream`` is a
        terminal.
    quiet
        Print nothing.
    interval
        Seconds between redraws of the live line.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        live: bool | None = None,
        quiet: bool = False,
        interval: float = 0.25,
    ):
        self._stream = stream
        self.quiet = quiet
        self.live = not quiet and (_is_terminal(self.stream) if live is None else live)
        self.interval = interval
        self._lock = threading.Lock()
        self._running: Stage | None = None
        self._drawn = False  # the live line is on the screen

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    def line(self, text: str) -> None:
        """Print a finished line (above the live line, when there is one)."""
        if self.quiet:
            return
        with self._lock:
            self._write(text + "\n")

    @contextmanager
    def stage(
        self, step: str, doing: str, poll: Callable[[], float] | None = None
    ) -> Iterator[Stage]:
        """A part of ``step`` that may take long: prints ``  step: <done text> (1.2 s)`` when it
        ends without an error (nothing when it fails: the error says why).

        ``doing`` is what the live line says meanwhile; ``poll``, when given, returns the
        percentage done (negative when unknown), read at each redraw from a thread of its own.
        """
        stage = Stage(f"  {step}", doing, poll)
        if self.quiet:
            yield stage
            return
        ticker = self._start(stage) if self.live else None
        try:
            yield stage
        except BaseException:
            self._stop(ticker, None)
            raise
        self._stop(ticker, stage.finished_line())

    @contextmanager
    def waiting(self, text: str) -> Iterator[None]:
        """On a terminal, ``text`` and the running time on the live line while the block runs
        (the lines printed meanwhile go above it); elsewhere nothing."""
        if not self.live:
            yield
            return
        ticker = self._start(Stage(text, "", None))
        try:
            yield
        finally:
            self._stop(ticker, None)

    # -- the live line ----------------------------------------------------------------------------

    def _start(self, stage: Stage) -> tuple[threading.Thread, threading.Event]:
        stop = threading.Event()
        with self._lock:
            self._running = stage
            self._draw()

        def tick() -> None:
            while not stop.wait(self.interval):
                with self._lock:
                    if self._running is stage:
                        self._draw()

        thread = threading.Thread(target=tick, name="personas-progress", daemon=True)
        thread.start()
        return thread, stop

    def _stop(
        self, ticker: tuple[threading.Thread, threading.Event] | None, last: str | None
    ) -> None:
        if ticker is not None:
            thread, stop = ticker
            stop.set()
            thread.join()
        with self._lock:
            self._running = None
            self._write(last + "\n" if last is not None else "")

    def _draw(self) -> None:
        stage = self._running
        text = (
            stage.running_line() if stage.doing else f"{stage.label} ... ({stage.elapsed():.0f} s)"
        )
        self.stream.write(CLEAR + text)
        self.stream.flush()
        self._drawn = True

    def _write(self, text: str) -> None:
        """Write finished text, clearing the live line first and redrawing it after."""
        stream = self.stream
        if self._drawn:
            stream.write(CLEAR)
            self._drawn = False
        stream.write(text)
        if self._running is not None:
            self._draw()
        stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def as_progress(progress: Progress | bool | None) -> Progress:
    """A step's ``progress`` argument as a reporter: None or True print to standard output,
    False prints nothing."""
    if isinstance(progress, Progress):
        return progress
    return Progress(quiet=progress is False)
