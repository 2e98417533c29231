"""Every degeneracy study in diagnostics/ runs in quick mode and writes its Markdown report.

The committed reports in diagnostics/reports/ come from the full runs; the tests run the quick
versions into a temporary folder and also check that the committed reports exist.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STUDIES = (
    "a_insufficient_data",
    "b_informative_prior",
    "c_remedy",
    "d_symmetric_start",
    "e_label_switching",
    "f_too_many_states",
)


def run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, str(ROOT / "diagnostics" / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def check_report(folder: Path, study: str) -> str:
    text = (folder / f"{study}.md").read_text()
    assert "## Results" in text and "## What `diagnose` says" in text
    images = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text)
    assert images, "a report embeds at least one plot"
    for image in images:
        assert (folder / image).stat().st_size > 1000, image
    return text


@pytest.mark.parametrize("study", STUDIES)
def test_study_runs_quick(study, tmp_path):
    result = run(f"{study}.py", "--quick", "--out", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    text = check_report(tmp_path, study)
    assert "mode: quick" in text


def test_run_all_writes_an_index(tmp_path):
    result = run("run_all.py", "--quick", "--only", "d_symmetric_start", "--out", str(tmp_path),
                 cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    index = (tmp_path / "README.md").read_text()
    assert "[d_symmetric_start.md](d_symmetric_start.md)" in index
    assert "a_insufficient_data" not in index


@pytest.mark.parametrize("study", STUDIES)
def test_committed_full_report(study):
    folder = ROOT / "diagnostics" / "reports"
    text = check_report(folder, study)
    assert "mode: full" in text
