"""Opt-in pytest plugin: the CPU time of every test, written to one JSON file.

Load it with ``-p tests.cpu_time --cpu-times=PATH`` (from the repository root), e.g.::

    python -m pytest -n 2 --dist loadgroup -p tests.cpu_time --cpu-times=times.json

Per test it records, over the whole run protocol (setup, call and teardown, so that module and
session fixtures are charged to the test that builds or tears them down):

- ``cpu_s``: user + system CPU seconds of the test process (all its threads,
  :func:`time.process_time`);
- ``children_cpu_s``: user + system CPU seconds of the child processes that ended and were
  waited for during the test (:data:`resource.RUSAGE_CHILDREN`: CLI, example and README
  subprocesses, Dask worker processes when their cluster closes);
- ``numba_compile_s``: the part of ``cpu_s`` spent compiling numba kernels (those not yet in
  numba's cache: a fresh clone compiles each kernel signature once per process that needs it
  before another process has cached it);
- ``wall_s``, the node id, file, ``xdist_group`` names, outcome and worker.

Each process also reports its totals at the end of the session (including its start-up, imports
and collection, which no test is charged for). Under pytest-xdist every worker sends its records
to the controller, which writes the single file. ``benchmarks/suite_time.py`` summarises it.
Without ``--cpu-times`` the plugin does nothing.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from collections.abc import Generator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from numba.core import event as numba_event

_RECORDS = pytest.StashKey[list]()
_OUTCOMES = pytest.StashKey[list]()
_WORKERS = pytest.StashKey[list]()
_WORKER_OUTPUT = "cpu_times"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--cpu-times",
        metavar="PATH",
        default=None,
        help="write each test's CPU time (process + waited-for children) as JSON to PATH",
    )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _process_totals() -> dict:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
        "cpu_s": time.process_time(),
        "user_s": own.ru_utime,
        "sys_s": own.ru_stime,
        "children_cpu_s": _children_cpu(),
        "numba_compile_s": _NUMBA.total,
    }


def _enabled(config: pytest.Config) -> bool:
    return config.getoption("cpu_times") is not None


class _NumbaCompileClock(numba_event.Listener):
    """CPU seconds spent in numba compilations (outermost ``numba:compile`` events only).

    numba raises the event when it compiles a signature, not when it loads one from its cache.
    """

    def __init__(self) -> None:
        self.total = 0.0
        self._depth = 0
        self._started = 0.0

    def on_start(self, event: numba_event.Event) -> None:
        if self._depth == 0:
            self._started = time.process_time()
        self._depth += 1

    def on_end(self, event: numba_event.Event) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.total += time.process_time() - self._started


_NUMBA = _NumbaCompileClock()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RECORDS] = []
    if _enabled(config):
        numba_event.register("numba:compile", _NUMBA)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator:
    if not _enabled(item.config):
        return (yield)
    outcomes: list[str] = []
    item.stash[_OUTCOMES] = outcomes
    start_wall = time.perf_counter()
    start_cpu = time.process_time()
    start_children = _children_cpu()
    start_numba = _NUMBA.total
    result = yield
    groups = sorted(
        {
            str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
            for mark in item.iter_markers("xdist_group")
        }
    )
    item.config.stash[_RECORDS].append(
        {
            "nodeid": item.nodeid.split("@")[0],
            "file": item.nodeid.split("::")[0],
            "groups": groups,
            "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
            "outcome": _summary_outcome(outcomes),
            "cpu_s": round(time.process_time() - start_cpu, 4),
            "children_cpu_s": round(_children_cpu() - start_children, 4),
            "numba_compile_s": round(_NUMBA.total - start_numba, 4),
            "wall_s": round(time.perf_counter() - start_wall, 4),
        }
    )
    return result


def _summary_outcome(outcomes: list[str]) -> str:
    for outcome in ("failed", "skipped"):
        if outcome in outcomes:
            return outcome
    return "passed" if outcomes else "unknown"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Generator:
    report = yield
    if _OUTCOMES in item.stash:
        item.stash[_OUTCOMES].append(report.outcome)
    return report


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if not _enabled(config):
        return
    payload = {"tests": config.stash[_RECORDS], "process": _process_totals()}
    if hasattr(config, "workeroutput"):  # an xdist worker: the controller writes the file
        config.workeroutput[_WORKER_OUTPUT] = json.dumps(payload)
        return
    workers = config.stash.get(_WORKERS, [])
    tests = list(payload["tests"])
    processes = [payload["process"]]
    for worker in workers:
        tests.extend(worker["tests"])
        processes.append(worker["process"])
    document = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["pytest", *config.invocation_params.args]),
        "python": sys.version.split()[0],
        "machine": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average_at_end": list(os.getloadavg()),
        "processes": processes,
        "tests": sorted(tests, key=lambda record: record["nodeid"]),
    }
    path = Path(config.getoption("cpu_times"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1) + "\n")


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    output = getattr(node, "workeroutput", {})
    config = node.config  # type: ignore[attr-defined]
    if _WORKER_OUTPUT in output:
        config.stash.setdefault(_WORKERS, []).append(json.loads(output[_WORKER_OUTPUT]))
