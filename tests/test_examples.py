"""Every example runs end to end in quick mode and writes its plots, each checked for clipped or
colliding text before it is saved (:mod:`tests.plots.render`). The simulated-data examples run
in a subprocess each; the real-data examples (04-07) share one subprocess (one import of torch
and Pyro instead of four) and must print their data set's reproduced number equal, to the
printed digits, to the published or independently computed one."""

from __future__ import annotations

import os
import re
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
DATA_EXAMPLES = {
    "04_earthquakes.py": ["earthquakes_states.png", "earthquakes_emissions.png"],
    "05_fetal_lamb.py": ["lamb_states.png"],
    "06_old_faithful.py": ["faithful_states.png", "faithful_emissions.png"],
    "07_declaration.py": ["declaration_emissions.png"],
}
"""The real-data examples (``hmm_pyro.datasets``) and the plots each writes."""
REPRODUCED = re.compile(
    r"log likelihood (-?\d+\.\d{4}) \((?:published|independent) (-?\d+\.\d{4})\)"
)
"""A line printing a fitted log likelihood beside the number it reproduces."""


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
LAYOUT_CHECKED_SERIES = (
    "import runpy, sys\n"
    "from pathlib import Path\n"
    "from tests.plots.render import checked_savefig\n"
    "out, scripts = sys.argv[1], sys.argv[2:]\n"
    "for script in scripts:\n"
    "    name = Path(script).name\n"
    "    print('=== example', name, flush=True)\n"
    "    sys.argv = [script, '--quick', '--out', str(Path(out) / name)]\n"
    "    with checked_savefig() as saved:\n"
    "        try:\n"
    "            runpy.run_path(script, run_name='__main__')\n"
    "        except SystemExit as end:\n"
    "            if end.code:\n"
    "                raise\n"
    "    print('layout checked:', ' '.join(sorted(saved)), flush=True)\n"
)
"""Runs several examples in one process, each in quick mode into ``OUT/<script name>``."""


def test_every_example_is_listed():
    listed = sorted(path.name for path in (ROOT / "examples").glob("[0-9]*.py"))
    assert listed == sorted([*EXAMPLES, *DATA_EXAMPLES])


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


def test_data_examples_run_quick_and_reproduce_their_numbers(tmp_path):
    """Each real-data example prints at least one fitted log likelihood beside its published
    or independently computed optimum, equal to 4 decimals, diagnoses a fit, and writes its
    layout-checked plots."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    scripts = [str(ROOT / "examples" / script) for script in DATA_EXAMPLES]
    result = subprocess.run(
        [sys.executable, "-c", LAYOUT_CHECKED_SERIES, str(tmp_path), *scripts],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    outputs = result.stdout.split("=== example ")[1:]
    assert [output.split()[0] for output in outputs] == list(DATA_EXAMPLES)
    for output in outputs:
        script = output.split()[0]
        pairs = REPRODUCED.findall(output)
        assert pairs and all(ours == reference for ours, reference in pairs), (script, pairs)
        assert "DegeneracyReport" in output, script
        checked = output.rsplit("layout checked:", 1)[1].split()
        for name in DATA_EXAMPLES[script]:
            assert (tmp_path / script / name).stat().st_size > 0, name
            assert name in checked, name
        assert (ROOT / "examples" / script).read_text().startswith('"""'), script
