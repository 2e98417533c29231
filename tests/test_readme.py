"""Every ```python block of README.md runs unchanged as a script: ``python block.py``, no guard.

Running order: the blocks run one after the other, in the order they appear in the README, each
in its own interpreter (a fresh ``python block_<n>.py``) but all in one temporary folder. A block
may read the files an earlier block wrote (the job-1 block writes ``data.csv``, which the
prior-comparison and sweep blocks read, as a reader following the README would have it); it
cannot use another block's variables. Blocks that start the embedded Dask cluster (the
comparison and the sweep) check that scripts need no ``if __name__ == "__main__":`` guard.

The blocks themselves are kept small (short chains, few steps) so that the whole module costs
about a minute of CPU; it runs on its own pytest-xdist worker (``xdist_group("readme")``). The
subprocesses get one OpenMP thread, as every process the suite starts (``tests/conftest.py``).
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


@pytest.mark.slow
@pytest.mark.xdist_group("readme")
def test_every_readme_python_block_runs_as_a_script(tmp_path):
    blocks = readme_blocks(README.read_text())
    assert len(blocks) >= 5  # the overview, the three jobs, the sweep
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for index, (line, code) in enumerate(blocks):
        script = tmp_path / f"block_{index}.py"
        script.write_text(code)
        done = subprocess.run(
            [sys.executable, script.name],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
            env=environment,
        )
        if done.returncode != 0 or "Traceback" in done.stderr:
            pytest.fail(
                f"README.md block {index + 1} (line {line}) failed with exit code "
                f"{done.returncode}:\n{code}\n--- stderr ---\n{done.stderr[-4000:]}",
                pytrace=False,
            )
