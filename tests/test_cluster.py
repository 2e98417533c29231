"""The embedded cluster: workers that never import the caller's script; one-line start failures."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from hmm_pyro._cluster import START_TIMEOUT
from hmm_pyro._parallel import run_tasks

UNGUARDED_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import psutil, torch
    from hmm_pyro._parallel import run_tasks

    print("script body runs", flush=True)  # once: the workers never import this module

    def probe(task, reporter):
        generator = torch.Generator().manual_seed(task)
        values = torch.randn(200, 50, dtype=torch.float64, generator=generator)
        return (values @ values.T).sum().item(), os.getpid(), torch.get_num_threads()

    tasks = [11, 12, 13]
    serial = run_tasks(probe, tasks, [1] * 3, ["t"] * 3, parallel=False, progress=False)
    embedded = run_tasks(probe, tasks, [1] * 3, ["t"] * 3, parallel=True, progress=False)
    print(json.dumps({
        "serial": [total for total, _, _ in serial],
        "embedded": [total for total, _, _ in embedded],
        "pids": sorted({pid for _, pid, _ in embedded}),
        "threads": sorted({threads for _, _, threads in embedded}),
        "main": os.getpid(),
        "left": len(psutil.Process().children(recursive=True)),
    }))
    """
)


@pytest.mark.slow
def test_an_unguarded_script_runs_tasks_in_worker_processes_equal_to_serial(tmp_path):
    """No ``__main__`` guard: the script body runs once, results equal serial bit for bit."""
    (tmp_path / "unguarded.py").write_text(UNGUARDED_SCRIPT)
    done = subprocess.run(
        [sys.executable, "unguarded.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT + 120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # quiet: no worker or scheduler logs
    lines = done.stdout.splitlines()
    assert lines.count("script body runs") == 1
    result = json.loads(lines[-1])
    assert result["embedded"] == result["serial"]  # floats compared with ==
    assert result["main"] not in result["pids"]
    assert 1 <= len(result["pids"]) <= min(3, os.cpu_count() or 1)
    assert result["threads"] == [1]
    assert result["left"] == 0  # every worker process is gone


def _task(task, reporter):
    return task


def test_a_worker_process_that_exits_at_start_raises_one_line(tmp_path, monkeypatch):
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\necho 'ImportError: no torch here' >&2\nexit 3\n")
    python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(python))
    with pytest.raises(RuntimeError) as raised:
        run_tasks(_task, [0, 1], [1, 1], ["a", "b"], parallel=True, progress=False)
    message = str(raised.value)
    assert "\n" not in message
    assert "could not start Dask worker processes" in message
    assert "exited with code 3: ImportError: no torch here" in message
    assert "parallel=False" in message
    error = raised.value  # no chained traceback from Dask above it
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


def test_a_missing_interpreter_raises_one_line(monkeypatch):
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    with pytest.raises(RuntimeError, match=r"could not start .*FileNotFoundError.*parallel=False"):
        run_tasks(_task, [0, 1], [1, 1], ["a", "b"], parallel=True, progress=False)
