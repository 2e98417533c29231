"""Every degeneracy study in diagnostics/ runs in quick mode and writes its Markdown report.

The committed reports in diagnostics/reports/ come from the full runs; the tests run the quick
versions into a temporary folder and also check that the committed reports exist.

``run_all.py --only d_symmetric_start`` runs ``d_symmetric_start.py --quick`` in its own process,
exactly as a direct call does, so one run (the module fixture :func:`run_all`) serves both the
index test and that study's test instead of running the study twice; the two tests share an
``xdist_group`` so that one worker runs it. The other studies run their ``main(["--quick",
...])`` one after the other in one process (the module fixture :func:`one_process`): one
interpreter start and one import of torch, Pyro and ArviZ instead of ten (about 4 s of CPU
each), which keeps them within the suite's time budget.
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
    "g_essay_situation",
    "h_uninformative_prior",
    "i_misspecification",
    "j_local_optima",
    "k_chain_modes",
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


RUN_ALL_STUDY = "d_symmetric_start"
"""The study that :func:`run_all` runs (through ``run_all.py``) for both tests that use it."""

_RUN_ALL_GROUP = pytest.mark.xdist_group("studies_run_all")


@pytest.fixture(scope="module")
def run_all(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """``run_all.py --quick --only d_symmetric_start`` into a fresh folder: (result, folder)."""
    folder = tmp_path_factory.mktemp("run_all")
    result = run("run_all.py", "--quick", "--only", RUN_ALL_STUDY, "--out", str(folder),
                 cwd=folder)  # fmt: skip
    return result, folder


ONE_PROCESS_STUDIES = tuple(study for study in STUDIES if study != RUN_ALL_STUDY)
"""The studies that :func:`one_process` runs."""

_ONE_PROCESS_GROUP = pytest.mark.xdist_group("studies_one_process")

ONE_PROCESS_SCRIPT = """\
import importlib, sys, traceback
sys.path.insert(0, sys.argv[1])
failed = []
for name in sys.argv[3:]:
    print(f"== {name}", flush=True)
    try:
        code = importlib.import_module(name).main(["--quick", "--out", sys.argv[2]])
    except Exception:
        traceback.print_exc()
        code = "exception"
    print(f"== {name} returned {code}", flush=True)
    if code != 0:
        failed.append(name)
sys.exit(f"failed: {failed}" if failed else 0)
"""
"""Runs each named study's ``main(["--quick", "--out", OUT])`` in turn, going on after a failure."""


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """The quick runs of :data:`ONE_PROCESS_STUDIES` in one process: (result, folder)."""
    folder = tmp_path_factory.mktemp("studies")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, "-c", ONE_PROCESS_SCRIPT, str(ROOT / "diagnostics"), str(folder),
         *ONE_PROCESS_STUDIES],
        cwd=folder, env=env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    return result, folder


@pytest.mark.parametrize(
    "study",
    [
        pytest.param(study, marks=_RUN_ALL_GROUP if study == RUN_ALL_STUDY else _ONE_PROCESS_GROUP)
        for study in STUDIES
    ],
)
def test_study_runs_quick(study, request):
    if study == RUN_ALL_STUDY:
        result, folder = request.getfixturevalue("run_all")
        assert result.returncode == 0, result.stdout + result.stderr
    else:
        result, folder = request.getfixturevalue("one_process")
        assert f"== {study} returned 0" in result.stdout, result.stdout + result.stderr
    text = check_report(folder, study)
    assert "mode: quick" in text


@_RUN_ALL_GROUP
def test_run_all_writes_an_index(run_all):
    result, folder = run_all
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"== {RUN_ALL_STUDY}" in result.stdout  # the study ran, in its own process
    index = (folder / "README.md").read_text()
    assert "[d_symmetric_start.md](d_symmetric_start.md)" in index
    assert "a_insufficient_data" not in index


@pytest.mark.parametrize("study", STUDIES)
def test_committed_full_report(study):
    folder = ROOT / "diagnostics" / "reports"
    text = check_report(folder, study)
    assert "mode: full" in text
