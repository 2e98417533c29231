"""Run independent tasks (chains, restarts) in worker processes or in this one, with progress.

Each worker process uses one torch intra-op thread, so ``workers x threads`` never exceeds the
cores: oversubscribed torch threads slowed a measured NUTS run 17x (811 s vs 41-48 s).
Workers are started with ``spawn`` (forking a process that holds torch's thread pools is unsafe).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, wait
from typing import Any

import numba
import torch
from tqdm.auto import tqdm

__all__ = [
    "ProgressReporter",
    "available_cores",
    "progress_disabled",
    "run_tasks",
    "torch_threads",
]


def progress_disabled(progress: bool) -> bool | None:
    """Return tqdm's ``disable`` argument for a ``progress`` flag.

    Off on request; outside a terminal off too (``None`` lets tqdm check), except when tqdm
    renders notebook widgets.
    """
    if not progress:
        return True
    return False if tqdm.__module__.endswith("notebook") else None


def available_cores() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class ProgressReporter:
    """Picklable progress sink: ``report(task, done)`` from any process."""

    def __init__(
        self, channel: Any = None, callback: Callable[[int, int], None] | None = None
    ) -> None:
        self._channel = channel
        self._callback = callback

    def report(self, task: int, done: int) -> None:
        """Record that ``task`` has completed ``done`` units of work."""
        if self._callback is not None:
            self._callback(task, done)
        elif self._channel is not None:
            self._channel.put((task, done))


def _init_worker() -> None:
    torch.set_num_threads(1)
    numba.set_num_threads(1)


def run_tasks(
    func: Callable[..., Any],
    tasks: Sequence[Any],
    totals: Sequence[int],
    labels: Sequence[str],
    parallel: bool,
    progress: bool,
    threads: int = 1,
) -> list[Any]:
    """Call ``func(task, reporter)`` for every task; return results in task order.

    Parameters
    ----------
    func : callable
        A module-level function (picklable) ``func(task, reporter) -> result``.
    tasks : sequence
        Picklable task descriptions.
    totals : sequence of int
        Units of work per task, for the progress bars.
    labels : sequence of str
        Progress bar labels.
    parallel : bool
        Run in worker processes (at most one per core) instead of sequentially here.
    progress : bool
        Show one tqdm bar per task.
    threads : int
        torch intra-op threads for sequential execution.
    """
    bars = [
        tqdm(
            total=total, desc=label, position=index, leave=True, disable=progress_disabled(progress)
        )
        for index, (total, label) in enumerate(zip(totals, labels, strict=True))
    ]
    done = [0] * len(tasks)

    def update(task: int, count: int) -> None:
        bars[task].update(count - done[task])
        done[task] = count

    try:
        if not parallel or len(tasks) == 1:
            reporter = ProgressReporter(callback=update)
            with torch_threads(threads):
                return [func(task, reporter) for task in tasks]
        context = multiprocessing.get_context("spawn")
        workers = min(len(tasks), available_cores())
        with context.Manager() as manager:
            channel = manager.Queue()
            reporter = ProgressReporter(channel=channel)
            with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
                futures = [pool.submit(func, task, reporter) for task in tasks]
                pending = set(futures)
                while pending:
                    _, pending = wait(pending, timeout=0.2)
                    _drain(channel, update)
                _drain(channel, update)
                return [future.result() for future in futures]
    finally:
        for bar in bars:
            bar.close()


def _drain(channel: Any, update: Callable[[int, int], None]) -> None:
    while True:
        try:
            task, count = channel.get_nowait()
        except queue.Empty:
            return
        update(task, count)
