"""The worker pool: kept across calls, equal to serial, one-line errors, progress and warnings.

The tests that use this process's pool share it (``xdist_group("pool")``, with the NUTS
equality test in ``tests/inference/test_nuts.py``): its two workers are started once.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numba
import psutil
import pytest
import torch

from hmm_pyro._parallel import available_cores, run_tasks
from hmm_pyro._pool import WorkerPool, get_pool
from tests.helpers import placement_free

ON_THE_POOL = pytest.mark.xdist_group("pool")


@pytest.fixture(autouse=True)
def _all_cores(monkeypatch):
    """The pool on every core of the machine (the suite caps parallel defaults at one core)."""
    monkeypatch.delenv("HMM_PYRO_CORES", raising=False)


def test_cores_variable_caps_the_cores_and_rejects_bad_values(monkeypatch):
    """``HMM_PYRO_CORES`` caps :func:`available_cores` and is checked to be a positive integer."""
    cores = available_cores()
    monkeypatch.setenv("HMM_PYRO_CORES", "1")
    assert available_cores() == 1
    monkeypatch.setenv("HMM_PYRO_CORES", str(cores + 5))
    assert available_cores() == cores
    for bad in ("0", "-2", "two", "1.5"):
        monkeypatch.setenv("HMM_PYRO_CORES", bad)
        with pytest.raises(ValueError, match="HMM_PYRO_CORES: expected a positive integer"):
            available_cores()


def _probe(task, reporter):
    """Seeded torch work plus what the task saw of its process."""
    index, seed = task
    torch.manual_seed(seed)  # the global generator: isolated per worker and per task
    values = torch.randn(200, 50, dtype=torch.float64)
    reporter.report(index, 1)
    return {
        "total": (values @ values.T).sum().item(),
        "draw": torch.rand(3).tolist(),
        "torch_threads": torch.get_num_threads(),
        "numba_threads": numba.get_num_threads(),
        "pid": os.getpid(),
    }


def _slow_reporting(task, reporter):
    for step in range(1, 4):
        time.sleep(0.15)
        reporter.report(task, step)
    return task


def _fail_on_one(task, reporter):
    if task == 1:
        raise ValueError(f"task {task}: bad input")
    time.sleep(0.05)
    return task


def _die_on_one(task, reporter):
    if task == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return task


def _warn(task, reporter):
    warnings.warn(f"careful with {task}", RuntimeWarning, stacklevel=1)
    print("printed by a task")  # goes to the worker's stderr, not into the message stream
    return task


class _Unbuildable:
    """A task that pickles here and cannot be rebuilt in a worker."""

    def __init__(self):
        self.state = 1

    def __setstate__(self, state):
        raise ValueError("task: cannot be rebuilt here")


def _nested(task, reporter):
    inner = run_tasks(_probe, [(0, 1), (1, 2)], [1, 1], ["a", "b"], parallel=True, progress=False)
    return [result["pid"] for result in inner], os.getpid()


TASKS = [(index, 100 + index) for index in range(5)]
LABELS = [f"task {index}" for index in range(5)]


@ON_THE_POOL
def test_pool_equals_serial_and_is_reused_across_calls():
    """Bitwise-equal results (global generator reseeded per task), same workers twice."""
    serial = run_tasks(_probe, TASKS, [1] * 5, LABELS, parallel=False, progress=False)
    first = run_tasks(_probe, TASKS, [1] * 5, LABELS, parallel=True, progress=False)
    second = run_tasks(_probe, TASKS, [1] * 5, LABELS, parallel=True, progress=False)
    assert placement_free(first) == placement_free(serial) == placement_free(second)
    assert {result["torch_threads"] for result in first} == {1}
    assert {result["numba_threads"] for result in first} == {1}
    pids = {result["pid"] for result in first}
    assert os.getpid() not in pids and len(pids) == min(len(TASKS), available_cores())
    assert {result["pid"] for result in second} == pids
    assert set(get_pool().pids) >= pids


@ON_THE_POOL
def test_a_worker_error_is_raised_here_as_one_line_and_the_pool_goes_on():
    before = set(get_pool().pids)
    with pytest.raises(ValueError, match="task 1: bad input") as raised:
        run_tasks(_fail_on_one, list(range(6)), [1] * 6, ["t"] * 6, True, False)
    assert str(raised.value) == "task 1: bad input"
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert run_tasks(_fail_on_one, [0, 2], [1, 1], ["t"] * 2, True, False) == [0, 2]
    assert set(get_pool().pids) & before  # the idle worker was kept


@ON_THE_POOL
def test_a_task_that_cannot_be_rebuilt_in_the_worker_fails_as_that_task():
    with pytest.raises(ValueError, match=r"^task: cannot be rebuilt here$"):
        run_tasks(_fail_on_one, [0, _Unbuildable()], [1, 1], ["a", "b"], True, False)


@ON_THE_POOL
def test_a_worker_that_dies_raises_one_line_naming_its_task():
    with pytest.raises(RuntimeError) as raised:
        run_tasks(_die_on_one, [0, 1], [1, 1], ["chain 0", "chain 1"], True, False)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("chain 1: the worker process running it died (exited with code -9")
    assert run_tasks(_die_on_one, [0, 2], [1, 1], ["t"] * 2, True, False) == [0, 2]


@ON_THE_POOL
def test_progress_reports_arrive_while_tasks_run(monkeypatch):
    updates = []

    class RecordingProgress:
        def __init__(self, totals, labels=None, **_):
            self.labels = labels

        def update(self, units=1, task=0):
            updates.append((self.labels[task], units, time.monotonic()))

        def set_postfix(self, text):
            pass

        def close(self):
            pass

    from hmm_pyro import _parallel

    monkeypatch.setattr(_parallel, "Progress", RecordingProgress)
    began = time.monotonic()
    assert run_tasks(_slow_reporting, [0, 1], [3, 3], ["a", "b"], True, True) == [0, 1]
    for label in ("a", "b"):
        counts = [count for desc, count, _ in updates if desc == label and count]
        assert sum(counts) == 3 and len(counts) == 3  # every report, none counted twice
    assert min(at for _, _, at in updates) - began < 0.4  # the first before its task ended


@ON_THE_POOL
def test_warnings_are_reissued_here_and_prints_stay_off_the_channel():
    with pytest.warns(RuntimeWarning, match="careful with") as caught:
        assert run_tasks(_warn, [0, 1], [1, 1], ["a", "b"], True, False) == [0, 1]
    assert sorted(str(record.message) for record in caught) == ["careful with 0", "careful with 1"]


@ON_THE_POOL
def test_no_nested_pool_inside_a_worker():
    ((inner_pids, pid),) = run_tasks(_nested, [0, 1], [1, 1], ["n", "m"], True, False)[:1]
    assert inner_pids == [pid, pid] and pid != os.getpid()


def test_a_worker_process_that_exits_at_start_raises_one_line(tmp_path, monkeypatch):
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\necho 'ImportError: no torch here' >&2\nexit 3\n")
    python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(python))
    pool = WorkerPool()  # not this process's pool: its workers would be replaced
    try:
        with pytest.raises(RuntimeError) as raised:
            pool.run(_fail_on_one, [0, 2], ["a", "b"], 2, lambda *_: None, lambda _: None)
    finally:
        pool.shutdown()
    message = str(raised.value)
    assert "\n" not in message
    assert "could not start worker processes" in message
    assert "exited with code 3: ImportError: no torch here" in message
    assert "parallel=False" in message


UNGUARDED_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import psutil, torch
    from hmm_pyro._parallel import available_cores, run_tasks

    print("script body runs", flush=True)  # once: the workers never import this module

    def probe(task, reporter):
        generator = torch.Generator().manual_seed(task)
        values = torch.randn(200, 50, dtype=torch.float64, generator=generator)
        return (values @ values.T).sum().item(), os.getpid(), torch.get_num_threads()

    tasks = [11, 12, 13]
    serial = run_tasks(probe, tasks, [1] * 3, ["t"] * 3, parallel=False, progress=False)
    pooled = run_tasks(probe, tasks, [1] * 3, ["t"] * 3, parallel=True, progress=False)
    print(json.dumps({
        "serial": [total for total, _, _ in serial],
        "pooled": [total for total, _, _ in pooled],
        "pids": sorted({pid for _, pid, _ in pooled}),
        "threads": sorted({threads for _, _, threads in pooled}),
        "main": os.getpid(),
    }), flush=True)
    """
)


@pytest.mark.slow
def test_an_unguarded_script_runs_tasks_in_workers_that_stop_with_it(tmp_path):
    """No ``__main__`` guard: the script body runs once, results equal serial bit for bit.

    ``probe``, defined in the script, travels by value (cloudpickle), as it did to Dask.
    """
    (tmp_path / "unguarded.py").write_text(UNGUARDED_SCRIPT)
    done = subprocess.run(
        [sys.executable, "unguarded.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    lines = done.stdout.splitlines()
    assert lines.count("script body runs") == 1
    assert done.returncode == 0, done.stderr
    result = json.loads(lines[-1])
    assert result["pooled"] == result["serial"]  # floats compared with ==
    assert result["main"] not in result["pids"]
    assert result["threads"] == [1]
    assert not any(psutil.pid_exists(pid) for pid in result["pids"])  # stopped at exit
