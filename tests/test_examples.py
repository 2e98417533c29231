"""Every example runs end to end in quick mode (a subprocess each) and writes its plots."""

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


def test_every_example_is_listed():
    assert sorted(path.name for path in (ROOT / "examples").glob("[0-9]*.py")) == sorted(EXAMPLES)


@pytest.mark.parametrize("script", sorted(EXAMPLES))
def test_example_runs_quick(script, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), "--quick", "--out", str(tmp_path)],
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
    source = (ROOT / "examples" / script).read_text()
    assert source.startswith('"""'), "every example starts with a docstring header"
