"""Every example runs end to end in quick mode (a subprocess each) and writes its plots, each
checked for clipped or colliding text before it is saved (:mod:`tests.plots.render`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {
    "01_dishonest_casino.py": ["casino_decoding.png", "casino_emissions.png"],
    "02_regime_switching.py": ["regimes.png", "regimes_emissions.png"],
    "03_count_data.py": [
        "counts_decoding.png",
        "counts_emissions.png",
        "rate_priors.md",
        "rate_priors_elpd.png",
    ],
}


LAYOUT_CHECKED = (
    "import runpy, sys\n"
    "from tests.plots.render import checked_savefig\n"
    "script = sys.argv[1]\n"
    "sys.argv = sys.argv[1:]\n"
    "with checked_savefig() as saved:\n"
    "    try:\n"
    "        runpy.run_path(script, run_name='__main__')\n"
    "    except SystemExit as end:\n"
    "        if end.code:\n"
    "            raise\n"
    "print('layout checked:', ' '.join(sorted(saved)))\n"
)
"""Runs an example with every ``Figure.savefig`` checking the figure's text first."""


def test_every_example_is_listed():
    assert sorted(path.name for path in (ROOT / "examples").glob("[0-9]*.py")) == sorted(EXAMPLES)


@pytest.mark.parametrize("script", sorted(EXAMPLES))
def test_example_runs_quick(script, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    command = [sys.executable, "-c", LAYOUT_CHECKED, str(ROOT / "examples" / script)]
    result = subprocess.run(
        [*command, "--quick", "--out", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "DegeneracyReport" in result.stdout
    for name in EXAMPLES[script]:
        assert (tmp_path / name).stat().st_size > 0, name
    checked = result.stdout.rsplit("layout checked:", 1)[1].split()
    assert {name for name in EXAMPLES[script] if name.endswith(".png")} <= set(checked)
    source = (ROOT / "examples" / script).read_text()
    assert source.startswith('"""'), "every example starts with a docstring header"
