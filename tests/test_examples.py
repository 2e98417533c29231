"""Every example runs end to end in quick mode and writes its plots, each checked for clipped or
colliding text before it is saved (:mod:`tests.plots.render`). All examples run one after the
other in one subprocess (the module fixture :func:`series`: one import of torch and Pyro instead
of seven, about 4 s of CPU each), each as its own ``__main__`` (``runpy``), and each has its own
test of what it printed and wrote; the real-data examples (04-08) must print their data set's
reproduced number equal, to the printed digits, to the published or independently computed
one."""

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
    "08_seasonal_rain.py": ["seasonal_switching.png"],
}
"""The real-data examples (``hmm_pyro.datasets``) and the plots each writes."""
REPRODUCED = re.compile(
    r"log likelihood (-?\d+\.\d{4}) \((?:published|independent) (-?\d+\.\d{4})\)"
)
"""A line printing a fitted log likelihood beside the number it reproduces."""


LAYOUT_CHECKED_SERIES = (
    "import runpy, sys, traceback\n"
    "from pathlib import Path\n"
    "from tests.plots.render import checked_savefig\n"
    "out, scripts = sys.argv[1], sys.argv[2:]\n"
    "failed = []\n"
    "for script in scripts:\n"
    "    name = Path(script).name\n"
    "    print('=== example', name, flush=True)\n"
    "    sys.argv = [script, '--quick', '--out', str(Path(out) / name)]\n"
    "    try:\n"
    "        with checked_savefig() as saved:\n"
    "            try:\n"
    "                runpy.run_path(script, run_name='__main__')\n"
    "            except SystemExit as end:\n"
    "                if end.code:\n"
    "                    raise\n"
    "    except BaseException:\n"
    "        traceback.print_exc(file=sys.stdout)\n"
    "        print('example failed:', name, flush=True)\n"
    "        failed.append(name)\n"
    "        continue\n"
    "    print('layout checked:', ' '.join(sorted(saved)), flush=True)\n"
    "sys.exit(f'failed: {failed}' if failed else 0)\n"
)
"""Runs several examples in one process, each in quick mode into ``OUT/<script name>``, going
on after a failure (which it prints)."""


@pytest.fixture(scope="module")
def series(tmp_path_factory) -> tuple[Path, dict[str, str], str]:
    """Every example run by :data:`LAYOUT_CHECKED_SERIES`: (folder, output per script, stderr)."""
    folder = tmp_path_factory.mktemp("examples")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    scripts = [str(ROOT / "examples" / script) for script in [*EXAMPLES, *DATA_EXAMPLES]]
    result = subprocess.run(
        [sys.executable, "-c", LAYOUT_CHECKED_SERIES, str(folder), *scripts],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    outputs = {
        output.split()[0]: output for output in result.stdout.split("=== example ")[1:] if output
    }
    return folder, outputs, result.stderr


def example_output(series: tuple[Path, dict[str, str], str], script: str) -> str:
    """What ``script`` printed in the series; fails the test if it did not finish."""
    _, outputs, stderr = series
    assert script in outputs, f"{script} did not run:\n{stderr[-4000:]}"
    output = outputs[script]
    assert "example failed:" not in output and "layout checked:" in output, output + stderr[-4000:]
    return output


EXAMPLES_GROUP = pytest.mark.xdist_group("examples")
"""The tests of :func:`series`: one pytest-xdist worker runs it."""


def test_every_example_is_listed():
    listed = sorted(path.name for path in (ROOT / "examples").glob("[0-9]*.py"))
    assert listed == sorted([*EXAMPLES, *DATA_EXAMPLES])


@EXAMPLES_GROUP
@pytest.mark.parametrize("script", sorted(EXAMPLES))
def test_example_runs_quick(script, series):
    output = example_output(series, script)
    assert "DegeneracyReport" in output
    folder = series[0] / script
    for name in EXAMPLES[script]:
        assert (folder / name).stat().st_size > 0, name
    checked = output.rsplit("layout checked:", 1)[1].split()
    assert {name for name in EXAMPLES[script] if name.endswith(".png")} <= set(checked)
    source = (ROOT / "examples" / script).read_text()
    assert source.startswith('"""'), "every example starts with a docstring header"


@EXAMPLES_GROUP
@pytest.mark.parametrize("script", list(DATA_EXAMPLES))
def test_data_example_runs_quick_and_reproduces_its_numbers(script, series):
    """The real-data example prints at least one fitted log likelihood beside its published or
    independently computed optimum, equal to 4 decimals, diagnoses a fit, and writes its
    layout-checked plots."""
    output = example_output(series, script)
    pairs = REPRODUCED.findall(output)
    assert pairs and all(ours == reference for ours, reference in pairs), (script, pairs)
    assert "DegeneracyReport" in output, script
    checked = output.rsplit("layout checked:", 1)[1].split()
    for name in DATA_EXAMPLES[script]:
        assert (series[0] / script / name).stat().st_size > 0, name
        assert name in checked, name
    assert (ROOT / "examples" / script).read_text().startswith('"""'), script
