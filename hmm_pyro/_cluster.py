"""The embedded Dask cluster: worker processes that never import the user's script.

:class:`distributed.LocalCluster` starts its workers with :mod:`multiprocessing`'s *spawn*,
which re-imports the caller's ``__main__`` module in every worker: a script without the
``if __name__ == "__main__":`` guard then starts the run again inside each worker and dies with
a long "Nanny failed to start" traceback. Here each worker is a fresh interpreter started with
``python -m distributed.cli.dask_spec`` (what ``distributed.deploy.subprocess`` does), so the
caller's main module, be it a script, ``python -c`` or a REPL, is never imported there. The
scheduler runs in this process, as in ``LocalCluster``.

Each worker process is a Dask ``Nanny`` with one single-threaded worker (the nanny restarts a
worker that dies; its task is rescheduled by the scheduler), logs silenced, output kept in a
temporary file that is read only to explain a failed start. The workers get this process's
``sys.path`` (modules next to the script import there too) and its Dask configuration. A
worker process that exits before it connects, or workers that do not connect within
:data:`START_TIMEOUT` seconds, raise a one-line ``RuntimeError`` that says what to do instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import IO, Any

import dask.config
import psutil
from distributed import Client, Scheduler
from distributed.deploy.spec import ProcessInterface, SpecCluster
from distributed.worker_memory import parse_memory_limit

__all__ = ["START_TIMEOUT", "embedded_client"]

START_TIMEOUT = 120.0
"""Seconds the worker processes have to connect to the scheduler (each imports Dask first)."""

_ADVICE = "run here with parallel=False (CLI --serial) or pass client= to use a Dask cluster"


class WorkerProcess(ProcessInterface):
    """One worker process (a Dask nanny and its single-threaded worker) run by a SpecCluster.

    Parameters
    ----------
    scheduler : str
        The scheduler's address (given by the SpecCluster).
    name : int or str
        The worker's name (the SpecCluster's key for it).
    memory_limit : int
        Bytes the nanny lets its worker use before restarting it.
    python : str, optional
        The interpreter to run (default: this one, ``sys.executable``).
    """

    def __init__(
        self,
        scheduler: str,
        name: int | str | None = None,
        memory_limit: int = 0,
        python: str | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.name = name
        self.memory_limit = memory_limit
        self.python = python or sys.executable
        self.process: asyncio.subprocess.Process | None = None
        self.output: IO[bytes] | None = None
        super().__init__()

    async def start(self) -> None:
        """Start the process (it connects to the scheduler on its own)."""
        spec = {
            "cls": "distributed.Nanny",
            "opts": {
                "name": self.name,
                "nthreads": 1,
                "host": "127.0.0.1",
                "memory_limit": self.memory_limit,
                "silence_logs": logging.CRITICAL,
                "dashboard": False,
                "death_timeout": START_TIMEOUT,  # no scheduler: give up rather than linger
            },
        }
        self.output = tempfile.TemporaryFile()
        self.process = await asyncio.create_subprocess_exec(
            self.python,
            "-m",
            "distributed.cli.dask_spec",
            self.scheduler,
            "--spec",
            json.dumps(spec),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self.output,
            stderr=self.output,
            env=_worker_environment(),
        )
        await super().start()

    def exit_message(self) -> str | None:
        """``None`` while the process runs; otherwise its exit code and last line of output."""
        if self.process is None or self.process.returncode is None:
            return None
        last = ""
        if self.output is not None:
            self.output.seek(0)
            lines = self.output.read().decode(errors="replace").splitlines()
            last = next((line.strip() for line in reversed(lines) if line.strip()), "")
        code = f"exited with code {self.process.returncode}"
        return f"{code}: {last}" if last else code

    async def close(self) -> None:
        """Stop the process and whatever it started."""
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(psutil.Error):  # the nanny's worker first, then the nanny
                for child in psutil.Process(self.process.pid).children(recursive=True):
                    child.kill()
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()
        if self.output is not None:
            self.output.close()
        await super().close()


def _worker_environment() -> dict[str, str]:
    """The environment of this process, its ``sys.path`` (as ``PYTHONPATH``), its Dask config."""
    environment = dict(os.environ)
    path = [os.path.abspath(entry or os.curdir) for entry in sys.path]
    environment["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(path))
    environment["DASK_INTERNAL_INHERIT_CONFIG"] = dask.config.serialize(dask.config.global_config)
    return environment


def _start_failure(reason: str) -> RuntimeError:
    reason = " ".join(reason.split())
    return RuntimeError(f"parallel: could not start Dask worker processes ({reason}); {_ADVICE}")


@contextlib.contextmanager
def embedded_client(workers: int, python: str | None = None) -> Iterator[Client]:
    """A client of a new cluster of ``workers`` worker processes, closed on exit.

    Parameters
    ----------
    workers : int
        Number of single-threaded worker processes.
    python : str, optional
        The interpreter the workers run (default: ``sys.executable``).

    Raises
    ------
    RuntimeError
        A worker process cannot be started, exits before it connects, or does not connect
        within :data:`START_TIMEOUT` seconds.
    """
    options: dict[str, Any] = {
        "memory_limit": parse_memory_limit("auto", 1, workers, logger=logging.getLogger(__name__)),
        "python": python,
    }
    try:
        cluster = SpecCluster(
            scheduler={
                "cls": Scheduler,
                "options": {"host": "127.0.0.1", "port": 0, "dashboard": False},
            },
            workers={index: {"cls": WorkerProcess, "options": options} for index in range(workers)},
            silence_logs=logging.CRITICAL,
            name="hmm_pyro",
        )
    except Exception as error:  # SpecCluster wraps whatever stopped it in a RuntimeError
        cause = error.__cause__ if error.__cause__ is not None else error
        raise _start_failure(f"{type(cause).__name__}: {cause}") from None
    # Client closed before its cluster (nested context managers exit in reverse order).
    with cluster, Client(cluster, set_as_default=False) as client:
        _wait_for_workers(client, list(cluster.workers.values()), workers)
        yield client


def _wait_for_workers(client: Client, processes: list[Any], count: int) -> None:
    """Return when ``count`` workers are connected; raise if a process exits or time is up."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        with contextlib.suppress(TimeoutError):
            client.wait_for_workers(count, timeout=0.25)
            return
        for process in processes:
            message = process.exit_message()
            if message is not None:
                raise _start_failure(f"{process.python} {message}")
        if time.monotonic() > deadline:
            raise _start_failure(f"the workers did not connect within {START_TIMEOUT:g} s")
