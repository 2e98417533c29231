"""Every ```python block of README.md runs unchanged as a script (``python block.py``, no guard).

Running order: the blocks run one after the other, in the order they appear in the README, all
in one temporary folder and in one interpreter: :data:`DRIVER` runs each block's file with
``runpy.run_path(path, run_name="__main__")``, as ``python block_<n>.py`` would, in a fresh
namespace (a block cannot use another block's variables or imports), with the global torch,
numpy and ``random`` generators and Pyro's parameter store reset to what a fresh interpreter
starts with. A block may read the files an earlier block wrote (the job-1 block writes
``data.csv``, which the prior-comparison and sweep blocks read, as a reader following the
README would have it). ``sys.modules["__main__"]`` is the block's own module while it runs, as
for a script run directly; the worker processes of the pool (the sweep block) never import it,
so scripts need no ``if __name__ == "__main__":`` guard.

One interpreter instead of one per block saves an import of torch, Pyro and ArviZ per block
(about 3.5 s of CPU each); the blocks themselves are kept small (short chains, few steps), and
the whole module costs a little over a minute of CPU, on its own pytest-xdist worker
(``xdist_group("readme")``). The subprocess gets one OpenMP thread, as every process the suite
starts (``tests/conftest.py``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
BLOCK_TIMEOUT = 600


def readme_blocks(text: str) -> list[tuple[int, str]]:
    """``(line number, code)`` of every fenced ```python block, in order."""
    matches = BLOCK.finditer(text)
    return [(text.count("\n", 0, match.start()) + 1, match.group(1)) for match in matches]


def test_block_extraction_finds_fenced_python_only():
    text = "intro\n```python\na = 1\n```\n```bash\nls\n```\n\n```python\nb = 2\nc = 3\n```\n"
    assert readme_blocks(text) == [(2, "a = 1\n"), (9, "b = 2\nc = 3\n")]


DRIVER = """\
import random, runpy, sys
import numpy as np
import torch

fresh = (torch.random.get_rng_state(), np.random.get_state(), random.getstate())
for index, path in enumerate(sys.argv[1:]):
    print(f"=== README block {index}", file=sys.stderr, flush=True)
    torch.random.set_rng_state(fresh[0])
    np.random.set_state(fresh[1])
    random.setstate(fresh[2])
    if "pyro" in sys.modules:
        sys.modules["pyro"].clear_param_store()
    sys.argv = [path]
    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as end:
        if end.code:
            raise
"""
"""Runs the block files named on its command line one after the other (see the docstring)."""
MARKER = re.compile(r"^=== README block (\d+)$", re.MULTILINE)


@pytest.mark.slow
@pytest.mark.xdist_group("readme")
def test_every_readme_python_block_runs_as_a_script(tmp_path):
    blocks = readme_blocks(README.read_text())
    assert len(blocks) >= 5  # the overview, the three jobs, the sweep
    names = []
    for index, (_, code) in enumerate(blocks):
        names.append(f"block_{index}.py")
        (tmp_path / names[-1]).write_text(code)
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, *names],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT * len(blocks),
        env=environment,
    )
    started = [int(number) for number in MARKER.findall(done.stderr)]
    if done.returncode != 0 or "Traceback" in done.stderr or len(started) != len(blocks):
        index = started[-1] if started else 0
        line, code = blocks[index]
        pytest.fail(
            f"README.md block {index + 1} (line {line}) failed with exit code "
            f"{done.returncode}:\n{code}\n--- stderr ---\n{done.stderr[-4000:]}",
            pytrace=False,
        )
