"""run_tasks: here or on a given Dask cluster; same results (the worker pool: test_pool)."""

import os
import time

import dask
import numba
import pytest
import torch

from hmm_pyro import _parallel
from hmm_pyro._parallel import run_tasks
from tests.helpers import placement_free


def _probe(task, reporter):
    """Seeded torch work plus what the task saw of its process."""
    index, seed = task
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(200, 50, dtype=torch.float64, generator=generator)
    total = (values @ values.T).sum().item()
    reporter.report(index, 1)
    return {
        "index": index,
        "total": total,
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


def _nested(task, reporter):
    inner = run_tasks(_probe, [(0, 1), (1, 2)], [1, 1], ["a", "b"], parallel=True, progress=False)
    return _parallel._in_dask_worker(), [result["pid"] for result in inner], os.getpid()


TASKS = [(index, 100 + index) for index in range(5)]
LABELS = [f"task {index}" for index in range(5)]
ON_THE_CLIENT = pytest.mark.xdist_group("parallel_client")
"""The tests on the module's 2-worker Dask cluster: one pytest-xdist worker starts it once."""


@pytest.mark.parametrize("cores", ["1", "2"])
def test_serial_tasks_run_here_with_one_torch_thread_and_restore_the_settings(cores, monkeypatch):
    """One torch thread (its sums then equal the workers'); numba gets the available cores
    (its routes give the same bits on any number of threads) and torch is not dragged along."""
    monkeypatch.setenv(_parallel.CORES_VARIABLE, cores)
    expected = min(_parallel.available_cores(), numba.config.NUMBA_NUM_THREADS)
    before = torch.get_num_threads(), numba.get_num_threads()
    results = run_tasks(_probe, TASKS, [1] * 5, LABELS, parallel=False, progress=False)
    assert [result["index"] for result in results] == list(range(5))
    assert {result["pid"] for result in results} == {os.getpid()}
    assert {result["torch_threads"] for result in results} == {1}
    assert {result["numba_threads"] for result in results} == {expected}
    assert (torch.get_num_threads(), numba.get_num_threads()) == before


@ON_THE_CLIENT
def test_tasks_on_a_client_equal_serial_in_task_order(client):
    serial = run_tasks(_probe, TASKS, [1] * 5, LABELS, parallel=False, progress=False)
    remote = run_tasks(_probe, TASKS, [1] * 5, LABELS, parallel=None, progress=False, client=client)
    # bitwise: float totals compared with ==
    assert placement_free(remote) == placement_free(serial)
    workers = set(client.run(os.getpid).values())
    assert {result["pid"] for result in remote} <= workers
    assert os.getpid() not in workers


@ON_THE_CLIENT
def test_a_single_task_still_goes_to_the_client(client):
    (result,) = run_tasks(_probe, [(0, 1)], [1], ["one"], parallel=None, progress=False,
                          client=client)  # fmt: skip
    assert result["pid"] != os.getpid()


@ON_THE_CLIENT
def test_identical_tasks_are_not_deduplicated(client):
    results = run_tasks(_probe, [(0, 1)] * 4, [1] * 4, ["same"] * 4, True, False, client=client)
    assert len(results) == 4 and len({result["total"] for result in results}) == 1


@ON_THE_CLIENT
def test_progress_reports_travel_from_the_workers(client, monkeypatch):
    updates = []

    class RecordingProgress:
        def __init__(self, totals, labels=None, **_):
            self.labels = labels

        def update(self, units=1, task=0):
            updates.append((self.labels[task], units))

        def set_postfix(self, text):
            pass

        def close(self):
            pass

    monkeypatch.setattr(_parallel, "Progress", RecordingProgress)
    results = run_tasks(_slow_reporting, [0, 1], [3, 3], ["a", "b"], True, True, client=client)
    assert results == [0, 1]
    for label in ("a", "b"):
        counts = [count for desc, count in updates if desc == label]
        assert sum(counts) == 3  # never more than the total, whatever arrives late
    assert len(updates) > 2  # some reports arrived before their task finished


@ON_THE_CLIENT
def test_an_exception_in_a_task_is_raised_here_and_the_rest_cancelled(client):
    with pytest.raises(ValueError, match="task 1: bad input"):
        run_tasks(_fail_on_one, list(range(6)), [1] * 6, ["t"] * 6, True, False, client=client)
    assert run_tasks(_fail_on_one, [0, 2], [1, 1], ["t"] * 2, True, False, client=client) == [0, 2]


@ON_THE_CLIENT
def test_no_nested_cluster_inside_a_worker(client):
    ((inside, inner_pids, pid),) = run_tasks(_nested, [0], [1], ["nested"], True, False,
                                             client=client)  # fmt: skip
    assert inside and inner_pids == [pid, pid]
    assert not _parallel._in_dask_worker()


def test_bad_client_arguments_are_named():
    with pytest.raises(TypeError, match="client: expected a distributed"):
        run_tasks(_probe, TASKS, [1] * 5, LABELS, True, False, client=8786)
    with pytest.raises(ValueError, match="parallel: False contradicts client"):
        run_tasks(_probe, TASKS, [1] * 5, LABELS, False, False, client="tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match="client: invalid scheduler address 'nowhere'"):
        run_tasks(_probe, TASKS, [1] * 5, LABELS, True, False, client="nowhere")
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
        pytest.raises(OSError, match="client: cannot connect to the Dask scheduler"),
    ):
        run_tasks(_probe, TASKS, [1] * 5, LABELS, True, False, client="tcp://127.0.0.1:1")


def test_the_first_task_of_a_fresh_process_runs_on_one_torch_thread():
    """Starting numba's threading layer resets torch's OpenMP threads: the order must hold.

    Regression: with ``import hmm_pyro`` lazy, the first sequential task of a process ran with
    the machine's thread count (so its float sums differed from the Dask workers' in the last
    bit). Detects any task that runs with more than one torch thread.
    """
    import subprocess
    import sys

    script = (
        "import torch\n"
        "from hmm_pyro._parallel import run_tasks\n"
        "def probe(task, reporter):\n"
        "    return torch.get_num_threads()\n"
        "print(run_tasks(probe, [0], [1], ['t'], parallel=False, progress=False)[0])\n"
    )
    environment = {key: value for key, value in os.environ.items() if "NUM_THREADS" not in key}
    environment["OMP_NUM_THREADS"] = "2"  # what a 2-core machine gives by default
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
