"""Run independent tasks (chains, restarts, fits) here, on worker processes or on Dask.

Three ways to run the same list of tasks, all giving bitwise-identical results:

* **here**, one after the other (``parallel=False``, or a single task);
* on this process's **worker pool** (``parallel=True`` without a client;
  :mod:`hmm_pyro._pool`): single-threaded worker processes, at most one per core, started on
  the first parallel call and kept for later ones;
* on a **given cluster** (``client=``: a :class:`distributed.Client` or a scheduler address such
  as ``"tcp://10.0.0.5:8786"``).

Every task runs with one torch intra-op thread and one numba thread, here as well as in the
workers, so ``workers x threads`` never exceeds the cores (oversubscribed torch threads slowed a
measured NUTS run 17x: 811 s vs 41-48 s) and a result does not depend on where it was computed.
Tasks carry their own seeds; nothing depends on the order in which they finish. On a Dask
cluster a worker that dies has its task rescheduled on another worker by the Dask scheduler (up
to ``distributed.scheduler.allowed-failures`` times, 3 by default); in the pool it raises a
one-line ``RuntimeError``.

The pool's workers are fresh interpreters that never import the caller's main module, so
scripts need no ``if __name__ == "__main__":`` guard, and ``python -c`` and the REPL work too; a
worker process that cannot start raises a one-line ``RuntimeError``. Progress goes through
:class:`hmm_pyro._progress.Progress` (bars on a terminal, a line every ~10 s elsewhere), fed
by the workers' reports as they happen. On a cluster of your own, the workers need hmm_pyro
installed (tasks are module-level functions, pickled by reference) and are best started with one
thread each (``dask worker ADDRESS --nthreads 1``): tasks use process-wide state (torch's random
generator, Pyro's parameter store), so within one worker process they run one at a time.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numba
import torch

from hmm_pyro._pool import get_pool, in_pool_worker
from hmm_pyro._progress import Progress
from hmm_pyro._validation import describe

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "ProgressReporter",
    "available_cores",
    "check_client",
    "numba_threads",
    "run_tasks",
    "torch_threads",
]

_TASK_LOCK = threading.Lock()
"""Held while a task runs in a Dask worker: tasks use process-wide state (torch's global random
generator, Pyro's parameter store), so a worker with several threads runs them one at a time."""


CORES_VARIABLE = "HMM_PYRO_CORES"
"""Environment variable that caps the cores parallel work uses (a positive integer)."""


def available_cores() -> int:
    """Cores this process may use: its CPU affinity, capped by ``HMM_PYRO_CORES`` when set.

    ``HMM_PYRO_CORES=1`` keeps every default in this process (chains one after the other, no
    worker pool): for a machine shared with other work, or a test suite that already runs one
    process per core. Raises ``ValueError`` for a value that is not a positive integer.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    setting = os.environ.get(CORES_VARIABLE)
    if setting is None or setting.strip() == "":
        return cores
    try:
        cap = int(setting)
    except ValueError:
        cap = 0
    if cap < 1:
        raise ValueError(f"{CORES_VARIABLE}: expected a positive integer, got {setting!r}")
    return min(cores, cap)


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count.

    numba's threading layer is started first: starting it (on numba's first parallel call)
    resets the OpenMP thread count that torch shares, which would undo the setting inside the
    block (measured: the first task of a process then ran with 2 threads, not 1).
    """
    numba.get_num_threads()  # starts numba's threading layer if it has not started
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def numba_threads(count: int) -> Iterator[None]:
    """Temporarily set numba's thread count (a per-thread setting) for this thread."""
    previous = numba.get_num_threads()
    numba.set_num_threads(min(count, numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


class ProgressReporter:
    """Picklable progress sink: ``report(task, done)`` from this process or a Dask worker.

    Here it calls ``callback``; in a worker it logs a Dask event under ``topic``, which the
    client forwards to its progress bars.
    """

    def __init__(
        self, topic: str | None = None, callback: Callable[[int, int], None] | None = None
    ) -> None:
        self._topic = topic
        self._callback = callback

    def __getstate__(self) -> dict[str, Any]:
        return {"_topic": self._topic, "_callback": None}

    def report(self, task: int, done: int) -> None:
        """Record that ``task`` has completed ``done`` units of work."""
        if self._callback is not None:
            self._callback(task, done)
        elif self._topic is not None:
            from distributed import get_worker

            with contextlib.suppress(ValueError):  # not in a worker: nobody listens
                get_worker().log_event(self._topic, [int(task), int(done)])


def check_client(client: Any) -> None:
    """Raise ``TypeError`` unless ``client`` is ``None``, a scheduler address or a Client."""
    if client is None or isinstance(client, str):
        if isinstance(client, str) and not client.strip():
            raise ValueError("client: expected a scheduler address such as 'tcp://host:8786'")
        return
    from distributed import Client

    if not isinstance(client, Client):
        raise TypeError(
            "client: expected a distributed.Client or a scheduler address such as "
            f"'tcp://host:8786', got {describe(client)}"
        )


def _in_dask_worker() -> bool:
    """Whether this code runs inside a Dask worker (nested clusters are not started there)."""
    if "distributed" not in sys.modules:
        return False
    from distributed import get_worker

    try:
        get_worker()
    except ValueError:
        return False
    return True


def _run_in_worker(func: Callable[..., Any], task: Any, reporter: ProgressReporter) -> Any:
    """The Dask task: ``func(task, reporter)`` with one torch and one numba thread."""
    with _TASK_LOCK:
        numba.set_num_threads(1)  # per thread; first, as starting numba's threads resets torch's
        torch.set_num_threads(1)  # the worker process is ours: no need to restore
        return func(task, reporter)


@contextlib.contextmanager
def _connect(client: Client | str) -> Iterator[Client]:
    """The given client, or a client connected to an address (closed on exit)."""
    from distributed import Client

    if isinstance(client, Client):
        yield client
        return
    if isinstance(client, str):
        failure: Exception | None = None
        try:
            connected = Client(client, set_as_default=False)
        except (OSError, TimeoutError) as error:
            failure = OSError(
                f"client: cannot connect to the Dask scheduler at {client!r} "
                f"({' '.join(str(error).split())})"
            )
        except ValueError as error:
            failure = ValueError(f"client: invalid scheduler address {client!r} ({error})")
        if failure is not None:
            # Collect the half-started client now, while its event loop still runs: left to
            # interpreter exit, its __del__ waits for a stopped loop and prints a timeout.
            gc.collect()
            raise failure
        with connected:
            yield connected


def run_tasks(
    func: Callable[..., Any],
    tasks: Sequence[Any],
    totals: Sequence[int],
    labels: Sequence[str],
    parallel: bool | None,
    progress: bool,
    threads: int = 1,
    client: Client | str | None = None,
    desc: str = "tasks",
) -> list[Any]:
    """Call ``func(task, reporter)`` for every task; return results in task order.

    Parameters
    ----------
    func : callable
        A module-level function (picklable by reference) ``func(task, reporter) -> result``.
    tasks : sequence
        Picklable task descriptions, each with its own seed.
    totals : sequence of int
        Units of work per task, for the progress bars.
    labels : sequence of str
        Progress bar labels.
    parallel : bool or None
        Run the tasks on this process's worker pool (single-threaded worker processes kept
        across calls, at most one per task and per core) instead of one after the other
        here. Ignored with a single task and inside a pool or Dask worker (no nesting).
        ``None``: when there is a ``client``, or several tasks and cores.
    progress : bool
        Show progress (:class:`~hmm_pyro._progress.Progress`: bars on a terminal, a line
        every ~10 s elsewhere): per task when tasks report several units of work (NUTS
        iterations), otherwise as tasks finish.
    threads : int
        torch threads for sequential execution (1: bitwise equal to pool and Dask workers).
        numba runs here with :func:`available_cores` threads: its routes give the same bits
        on one thread or several (``tests/kernels/_numba/test_symbol_sweeps.py``,
        ``test_split.py``, ``test_batch.py``, ``tests/inference/test_nuts.py``), and a single
        chain on a large batch of symbols uses the second core (its lanes in two halves side
        by side).
    client : distributed.Client or str, optional
        Run the tasks on this Dask cluster (a client or a scheduler address) whatever
        ``parallel`` says, unless it is ``False``.
    desc : str
        What runs (the progress label).

    Returns
    -------
    list
        ``func``'s results in the order of ``tasks``.

    Raises
    ------
    ValueError
        ``client`` given with ``parallel=False``.
    OSError
        The scheduler at ``client`` cannot be reached.
    RuntimeError
        The pool's worker processes cannot start, or one died running a task.
    """
    check_client(client)
    if client is not None and parallel is False:
        raise ValueError("parallel: False contradicts client= (tasks would run here)")
    count = len(tasks)
    if parallel is None:
        parallel = client is not None or (count > 1 and available_cores() > 1)
    per_task = any(total > 1 for total in totals)
    if per_task:
        bars = Progress(totals, labels, desc=desc, enabled=progress)
    else:
        bars = Progress([count], desc=desc, enabled=progress)
    done = [0] * count
    finished = [False] * count
    lock = threading.Lock()

    def update(task: int, units: int) -> None:
        with lock:
            if finished[task]:
                return
            if per_task:
                bars.update(units - done[task], task)
            done[task] = units

    def finish(task: int) -> None:
        update(task, totals[task])
        with lock:
            finished[task] = True
            if not per_task:
                bars.set_postfix(labels[task])
                bars.update(1)

    try:
        if client is not None:
            with _connect(client) as connected:
                return _run_on_dask(connected, func, tasks, labels, update, finish)
        if parallel and count > 1 and not in_pool_worker() and not _in_dask_worker():
            workers = min(count, available_cores())
            return get_pool().run(func, tasks, labels, workers, update, finish)
        reporter = ProgressReporter(callback=update)
        results = []
        with torch_threads(threads), numba_threads(available_cores()):
            for index, task in enumerate(tasks):
                results.append(func(task, reporter))
                finish(index)
        return results
    finally:
        bars.close()


def _run_on_dask(
    client: Client,
    func: Callable[..., Any],
    tasks: Sequence[Any],
    labels: Sequence[str],
    update: Callable[[int, int], None],
    finish: Callable[[int], None],
) -> list[Any]:
    """Submit every task, collect results as they finish; cancel the rest on error."""
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    token = uuid.uuid4().hex
    topic = f"hmm_pyro-progress-{token}"
    client.subscribe_topic(topic, lambda event: update(*event[1]))
    reporter = ProgressReporter(topic=topic)
    futures = [
        client.submit(
            _run_in_worker,
            func,
            task,
            reporter,
            key=f"hmm_pyro-{getattr(func, '__name__', 'task')}-{index}-{token}",
            pure=False,
        )
        for index, task in enumerate(tasks)
    ]
    position = {future.key: index for index, future in enumerate(futures)}
    results: list[Any] = [None] * len(tasks)
    try:
        for future in as_completed(futures, loop=client.loop):
            index = position[future.key]
            try:
                results[index] = future.result()
            except KilledWorker as error:
                raise RuntimeError(
                    f"{labels[index]}: the task was lost with every worker that ran it "
                    f"({' '.join(str(error).split())})"
                ) from error
            finish(index)
        return results
    finally:
        pending = [future for future in futures if not future.done()]
        if pending:
            client.cancel(pending)
        client.unsubscribe_topic(topic)
