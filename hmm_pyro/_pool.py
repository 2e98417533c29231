"""Worker processes kept across calls: independent tasks side by side on the cores.

One pool per process, created on the first parallel call (:func:`get_pool`), reused by later
calls and stopped at interpreter exit. Each worker is a fresh interpreter started with
``python -c "from hmm_pyro._pool import serve; serve()"``: it never imports the caller's main
module (scripts need no ``if __name__ == "__main__":`` guard; ``python -c`` and the REPL work),
it imports torch, Pyro and hmm_pyro once, sets one torch and one numba thread, and keeps its
loaded numba kernels for every later task. Tasks and results travel over the worker's
standard input and output, pickled with cloudpickle as on Dask (functions of importable modules
by reference, those of a script by value); a task's prints go to the worker's standard error,
kept in a temporary file read only to explain a worker that died.

A worker runs one task at a time, so tasks that use process-wide state (torch's global random
generator, Pyro's handler stack and parameter store) stay isolated from each other: no two
tasks ever share an interpreter at the same time, and each NUTS chain reseeds the generator
from its own seed. The results are those of the same tasks run one after another in the
calling process with one thread, bit for bit.

What comes back:

* progress reports (``reporter.report(task, done)``), forwarded as they happen;
* the result, with the warnings the task raised, re-issued here through this process's
  warning filters (once per call for a repeated warning);
* or the task's exception, raised here as it was raised there (same type, same one-line
  message, no remote traceback); one that does not survive pickling becomes a
  ``RuntimeError`` naming its type.

On an error (or ``KeyboardInterrupt``) the tasks not yet started are dropped and the workers
still running tasks of the call are killed; idle workers stay for the next call. A worker that
dies (killed, out of memory) raises a one-line ``RuntimeError``; the pool starts a fresh one
next time. Workers also exit when the calling process is gone.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import os
import pickle
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import IO, Any

__all__ = ["WorkerPool", "get_pool", "in_pool_worker", "serve", "worker_environment"]

_ADVICE = "run here with parallel=False (CLI --serial) or pass client= to use a Dask cluster"
_ENTRY = "from hmm_pyro._pool import serve; serve()"
_IN_WORKER = False
"""True in a pool worker (a task there runs nested tasks in its own process)."""
_POOL: WorkerPool | None = None
_POOL_LOCK = threading.Lock()


def in_pool_worker() -> bool:
    """Whether this code runs inside a pool worker."""
    return _IN_WORKER


def worker_environment() -> dict[str, str]:
    """The environment of this process, with its ``sys.path`` as ``PYTHONPATH``.

    Worker processes started with it import the same modules as this process (modules next to
    the caller's script included).
    """
    environment = dict(os.environ)
    path = [os.path.abspath(entry or os.curdir) for entry in sys.path]
    environment["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(path))
    return environment


class _Worker:
    """One worker process, the thread that reads its messages, and its output file."""

    def __init__(
        self,
        number: int,
        inbox: queue.Queue[tuple[_Worker, tuple[Any, ...]]],
        modules: Sequence[str],
    ) -> None:
        environment = worker_environment()
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            environment[name] = "1"  # the worker runs one torch thread: no wider OpenMP pool
        self.number = number
        self.output: IO[bytes] = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-c", _ENTRY, *modules],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.output,
            env=environment,
        )
        self.ready = False
        self.task: int | None = None
        self._inbox = inbox
        self._reader = threading.Thread(
            target=self._read, name=f"hmm_pyro-pool-reader-{number}", daemon=True
        )
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        """Forward the worker's messages to the pool's inbox; ``("exit",)`` when it is gone."""
        assert self.process.stdout is not None
        while True:
            frame = _read_frame(self.process.stdout)
            if frame is None:  # end of stream: the worker exited
                self._inbox.put((self, ("exit",)))
                return
            try:
                message = pickle.loads(frame)
            except Exception as error:  # a result that cannot be rebuilt here
                message = ("unreadable", f"{type(error).__name__}: {error}")
            self._inbox.put((self, message))

    def send(self, message: tuple[Any, ...]) -> None:
        """Send a message; a worker that has exited is reported by its reader instead."""
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            _write_frame(self.process.stdin, message)

    def exit_message(self) -> str:
        """Exit code and the last line the worker wrote (waits a moment for it to exit)."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        code = self.process.returncode
        text = f"exited with code {code}" if code is not None else "stopped answering"
        self.output.seek(0)
        lines = self.output.read().decode(errors="replace").splitlines()
        last = next((line.strip() for line in reversed(lines) if line.strip()), "")
        return f"{text}: {' '.join(last.split())}" if last else text

    def stop(self, kill: bool = False) -> None:
        """Ask the worker to exit (or kill it) and release its resources."""
        if self.process.poll() is None:
            if not kill:
                with contextlib.suppress(OSError, ValueError):
                    self.process.stdin.close()  # type: ignore[union-attr]
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=5)
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError, ValueError):
                stream.close()  # type: ignore[union-attr]
        self.output.close()


class WorkerPool:
    """Single-threaded worker processes that run module-level functions on pickled tasks."""

    def __init__(self) -> None:
        self._workers: list[_Worker] = []
        self._inbox: queue.Queue[tuple[_Worker, tuple[Any, ...]]] = queue.Queue()
        self._lock = threading.Lock()  # one call at a time
        self._started = 0

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        return [worker.pid for worker in self._workers if worker.process.poll() is None]

    def start(self, count: int, modules: Sequence[str] = ()) -> None:
        """Start workers until there are ``count`` (returns at once; they import meanwhile).

        New workers import ``modules`` (those of the functions they will run) before anything
        else.
        """
        self._workers = [worker for worker in self._workers if worker.process.poll() is None]
        while len(self._workers) < count:
            try:
                worker = _Worker(self._started, self._inbox, modules)
            except OSError as error:
                raise _start_failure(f"{sys.executable}: {error}") from None
            self._started += 1
            self._workers.append(worker)

    def shutdown(self) -> None:
        """Stop every worker."""
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop()

    def run(
        self,
        func: Callable[..., Any],
        tasks: Sequence[Any],
        labels: Sequence[str],
        workers: int,
        update: Callable[[int, int], None],
        finish: Callable[[int], None],
    ) -> list[Any]:
        """``func(task, reporter)`` for every task on up to ``workers`` workers, in task order."""
        with self._lock:
            self._drain()
            self.start(workers, [getattr(func, "__module__", None) or "hmm_pyro"])
            return self._run(func, tasks, labels, workers, update, finish)

    def _drain(self) -> None:
        """Read what came in between calls: workers ready, workers gone, stale messages."""
        while True:
            try:
                worker, message = self._inbox.get_nowait()
            except queue.Empty:
                return
            if worker not in self._workers:  # killed in an earlier call: its last words
                continue
            if message[0] == "ready":
                worker.ready = True
            elif message[0] == "exit":  # died idle (or at start): replaced by start()
                self._workers.remove(worker)
                worker.stop(kill=True)

    def _run(
        self,
        func: Callable[..., Any],
        tasks: Sequence[Any],
        labels: Sequence[str],
        workers: int,
        update: Callable[[int, int], None],
        finish: Callable[[int], None],
    ) -> list[Any]:
        pending = list(range(len(tasks)))
        pending.reverse()
        results: list[Any] = [None] * len(tasks)
        remaining = len(tasks)
        registry: dict[Any, Any] = {}
        try:
            for worker in self._workers[:workers]:
                if pending:
                    worker.task = pending.pop()
                    worker.send(("task", worker.task, _payload(func, tasks[worker.task])))
            while remaining:
                worker, message = self._inbox.get()
                kind = message[0]
                if worker not in self._workers:  # killed in an earlier call: its last words
                    continue
                if kind == "ready":
                    worker.ready = True
                elif kind == "progress":
                    update(message[1], message[2])
                elif kind in ("done", "error"):
                    index = message[1]
                    worker.task = None
                    _reissue(message[3], registry)
                    if kind == "error":
                        raise message[2] from None
                    results[index] = message[2]
                    finish(index)
                    remaining -= 1
                    if pending:
                        worker.task = pending.pop()
                        worker.send(("task", worker.task, _payload(func, tasks[worker.task])))
                elif kind == "unreadable":
                    label = labels[worker.task] if worker.task is not None else "a task"
                    raise RuntimeError(f"{label}: its result cannot be read here ({message[1]})")
                elif kind == "exit":
                    self._workers.remove(worker)
                    reason = worker.exit_message()
                    task, ready = worker.task, worker.ready
                    worker.task = None
                    worker.stop(kill=True)
                    if not ready:
                        raise _start_failure(f"{sys.executable} {reason}")
                    if task is not None:
                        raise RuntimeError(
                            f"{labels[task]}: the worker process running it died ({reason})"
                        )
            return results
        finally:
            for worker in list(self._workers):
                if worker.task is not None:  # still running a task of this call: stop it
                    self._workers.remove(worker)
                    worker.task = None
                    worker.stop(kill=True)


def _payload(func: Callable[..., Any], task: Any) -> bytes:
    """A task as the worker reads it, pickled on its own.

    A task that cannot be rebuilt in the worker then fails as that task, with its error.
    """
    import cloudpickle

    return cloudpickle.dumps((func, task), protocol=pickle.HIGHEST_PROTOCOL)


def _write_frame(stream: IO[bytes], message: tuple[Any, ...]) -> None:
    """Write one message: its length (8 bytes) and its cloudpickle."""
    import cloudpickle

    data = cloudpickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(8, "little") + data)
    stream.flush()


def _read_frame(stream: IO[bytes]) -> bytes | None:
    """Read one message's bytes; ``None`` at the end of the stream."""
    header = stream.read(8)
    if len(header) < 8:
        return None
    size = int.from_bytes(header, "little")
    data = stream.read(size)
    return data if len(data) == size else None


def _start_failure(reason: str) -> RuntimeError:
    reason = " ".join(reason.split())
    return RuntimeError(f"parallel: could not start worker processes ({reason}); {_ADVICE}")


def _reissue(caught: list[tuple[Any, ...]], registry: dict[Any, Any]) -> None:
    """Issue here the warnings a task raised in a worker (this process's filters apply)."""
    for message, category, filename, lineno in caught:
        warnings.warn_explicit(message, category, filename, lineno, registry=registry)


def _forget_in_child() -> None:
    """A forked child starts without a pool: the workers belong to its parent."""
    global _POOL
    _POOL = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def get_pool() -> WorkerPool:
    """The pool of this process (created on first use, stopped at exit)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = WorkerPool()
            atexit.register(_POOL.shutdown)
        return _POOL


# ----------------------------------------------------------------------------- the worker side


class _Reporter:
    """Progress sink of a task in a worker: sends ``(task, done)`` to the calling process."""

    def __init__(self, send: Callable[[tuple[Any, ...]], None]) -> None:
        self._send = send

    def report(self, task: int, done: int) -> None:
        self._send(("progress", int(task), int(done)))


def _portable(error: BaseException) -> BaseException:
    """``error`` if it survives pickling, else a ``RuntimeError`` with its type and message."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error


def _portable_warnings(caught: list[warnings.WarningMessage]) -> list[tuple[Any, ...]]:
    """Recorded warnings as picklable tuples (a category that does not pickle: UserWarning)."""
    result = []
    for record in caught:
        category = record.category
        try:
            pickle.loads(pickle.dumps(category))
        except Exception:
            category = UserWarning
        result.append((str(record.message), category, record.filename, record.lineno))
    return result


def _watch_parent(parent: int) -> None:
    """Exit this worker when the process that started it is gone."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(1)


def serve() -> None:
    """Run tasks sent on standard input until it closes (the worker process's main loop)."""
    global _IN_WORKER
    _IN_WORKER = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the caller decides, and kills us
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a task's prints: not on the channel
    lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with lock:
            _write_frame(channel, message)

    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    import numba
    import torch

    numba.get_num_threads()  # numba's threading layer first: starting it resets torch's
    numba.set_num_threads(1)
    torch.set_num_threads(1)
    for module in sys.argv[1:]:  # the modules of the functions this worker will run
        importlib.import_module(module)

    send(("ready", os.getpid()))
    reporter = _Reporter(send)
    inbox = sys.stdin.buffer
    while True:
        frame = _read_frame(inbox)
        if frame is None:  # the caller closed the pool, or is gone
            return
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            _, index, payload = pickle.loads(frame)  # ints and bytes: always readable
            try:
                func, task = pickle.loads(payload)
                result = func(task, reporter)
            except BaseException as error:
                send(("error", index, _portable(error), _portable_warnings(caught)))
                continue
        try:
            send(("done", index, result, _portable_warnings(caught)))
        except Exception as error:  # a result that does not pickle
            failure = RuntimeError(f"the task's result cannot be sent back ({error})")
            send(("error", index, failure, []))
