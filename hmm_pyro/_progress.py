"""Progress of long runs: tqdm bars on a terminal, one plain line every ~10 s anywhere else.

Every long run (NUTS chains, SVI and MAP restarts, EM and Viterbi training, tasks on Dask)
reports through :class:`Progress`. On a terminal (or in a notebook) it draws tqdm bars, one per
task when there are several. Elsewhere (a pipe, a log file, a batch job) tqdm would either stay
silent or write carriage returns and cursor moves into the log; there :class:`Progress` writes a
plain ASCII line every :data:`LINE_INTERVAL` seconds, from a background thread so that lines
keep coming while a long task reports nothing, and a last line on close when the counts
changed since the previous one. Runs shorter than the interval write nothing.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import IO, Any

from tqdm.auto import tqdm

__all__ = ["LINE_INTERVAL", "Progress", "format_seconds"]

LINE_INTERVAL = 10.0
"""Seconds between progress lines when the stream is not a terminal."""


def format_seconds(seconds: float) -> str:
    """``"42s"``, ``"3m05s"`` or ``"2h03m"``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Progress:
    """Progress of one or more tasks, each with a known number of units of work.

    Parameters
    ----------
    totals : sequence of int
        Units of work of each task.
    labels : sequence of str, optional
        One label per task (bars on a terminal; counts in the lines). Default: ``desc``.
    desc : str
        What runs (the single bar's label; the start of every line).
    enabled : bool
        ``False``: report nothing.
    stream : file-like, optional
        Where to write (default: ``sys.stderr`` at construction).
    clock : callable, optional
        Seconds, monotonic (default :func:`time.monotonic`; tests pass a fake clock).
    interval : float, optional
        Seconds between lines off a terminal (default :data:`LINE_INTERVAL`).
    heartbeat : bool
        Off a terminal, write lines from a background thread too, so that they keep coming
        while no task reports (tests switch it off and drive :meth:`tick`).
    """

    def __init__(
        self,
        totals: Sequence[int],
        labels: Sequence[str] | None = None,
        desc: str = "",
        enabled: bool = True,
        stream: IO[str] | None = None,
        clock: Callable[[], float] | None = None,
        interval: float | None = None,
        heartbeat: bool = True,
    ) -> None:
        self.totals = [int(total) for total in totals]
        self.labels = list(labels) if labels is not None else [desc] * len(self.totals)
        self.desc = desc
        self.done = [0] * len(self.totals)
        self.postfix = ""
        self._stream = sys.stderr if stream is None else stream
        self._clock = time.monotonic if clock is None else clock
        self._interval = LINE_INTERVAL if interval is None else interval
        self._lock = threading.Lock()
        self._bars: list[Any] = []
        self._lines = False
        self._closed = False
        self._written = 0
        self._written_state: tuple[Any, ...] = ()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if not enabled:
            return
        if tqdm.__module__.endswith("notebook") or _is_terminal(self._stream):
            several = len(self.totals) > 1
            self._bars = [
                tqdm(
                    total=total,
                    desc=label if several else desc or label,
                    position=index if several else None,
                    leave=True,
                    file=self._stream,
                )
                for index, (total, label) in enumerate(zip(self.totals, self.labels, strict=True))
            ]
            return
        self._lines = True
        self._began = self._last = self._clock()
        if heartbeat:
            self._thread = threading.Thread(target=self._beat, name="progress", daemon=True)
            self._thread.start()

    def update(self, units: int = 1, task: int = 0) -> None:
        """Record ``units`` more units of work done by ``task``."""
        with self._lock:
            if self._closed:
                return
            self.done[task] += units
            if self._bars:
                self._bars[task].update(units)
        self.tick()

    def set_postfix(self, text: str) -> None:
        """Text shown after the counts (the last finished task, say)."""
        with self._lock:
            self.postfix = text
            if self._bars:
                self._bars[0].set_postfix_str(text, refresh=False)

    def tick(self) -> None:
        """Write a line if one is due (off a terminal); called on updates and by the thread."""
        if not self._lines:
            return
        with self._lock:
            now = self._clock()
            if self._closed or now - self._last < self._interval:
                return
            self._last = now
            self._write(now)

    def close(self) -> None:
        """Close the bars; off a terminal, write a last line if lines were written and it is new."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for bar in self._bars:
                bar.close()
            if self._lines and self._written and self._state() != self._written_state:
                self._write(self._clock())

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _beat(self) -> None:
        while not self._stop.wait(max(self._interval / 4, 0.05)):
            self.tick()

    def line(self, now: float) -> str:
        """The progress line at clock time ``now``."""
        done, total = sum(self.done), sum(self.totals)
        elapsed = now - self._began
        parts = [f"{done}/{total}"]
        if total:
            parts[0] += f" ({100 * done / total:.0f}%)"
        parts.append(f"{format_seconds(elapsed)} elapsed")
        if 0 < done < total:
            parts.append(f"about {format_seconds(elapsed * (total - done) / done)} left")
        text = f"{self.desc}: " + ", ".join(parts) if self.desc else ", ".join(parts)
        if len(self.totals) > 1:
            counts = zip(self.labels, self.done, self.totals, strict=True)
            text += " [" + "; ".join(f"{label} {d}/{t}" for label, d, t in counts) + "]"
        if self.postfix:
            text += f" ({self.postfix})"
        return text

    def _state(self) -> tuple[Any, ...]:
        return (*self.done, self.postfix)

    def _write(self, now: float) -> None:
        self._stream.write(self.line(now) + "\n")
        self._stream.flush()
        self._written += 1
        self._written_state = self._state()
