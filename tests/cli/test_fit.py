"""``hmm-pyro fit``: the statistics it prints, the classical learners' settings, and data files
with one sequence, gaps in time, or text values (in-process ``main([...])`` calls)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import hmm_pyro as hp
from hmm_pyro.cli import main
from hmm_pyro.datasets import dataset
from tests.datasets.direct_likelihood import REFERENCE

EARTHQUAKES = dataset("earthquakes")
PUBLISHED = {"free": (-341.8787, 5), "stationary": (-342.3183, 4)}
"""Zucchini & MacDonald (2009): maximum log likelihood of the two-state Poisson HMM of the
earthquake counts, and its free parameters, with pi estimated or stationary."""


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def value(text: str, label: str) -> str:
    (line,) = [line for line in text.splitlines() if line.startswith(label + " ")]
    return line[len(label) :].split()[0]


@pytest.fixture(scope="module")
def earthquake_runs(tmp_path_factory) -> dict[str, tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("earthquakes")
    runs = {}
    for initial, extra in (("free", []), ("stationary", ["--stationary"])):
        out = folder / f"{initial}.nc"
        code, stdout, stderr = run(
            "fit", str(EARTHQUAKES.path), *EARTHQUAKES.cli_options(), "--states", "2",
            "--method", "em", "--mle", "--tol", "1e-10", "--restarts", "1", "--no-progress",
            "--out", str(out), *extra,
        )  # fmt: skip
        assert code == 0, stderr
        runs[initial] = (stdout, out)
    return runs


@pytest.mark.parametrize("initial", ["free", "stationary"])
def test_earthquakes_reproduce_the_published_maximum_likelihoods(earthquake_runs, initial):
    """The CLI alone prints the published optimum to 4 decimals, its parameter count, and AIC
    and BIC computed from them (n = 107 years)."""
    stdout, path = earthquake_runs[initial]
    log_lik, num_params = PUBLISHED[initial]
    assert value(stdout, "log likelihood") == f"{log_lik:.4f}"
    assert value(stdout, "free parameters") == str(num_params)
    assert float(value(stdout, "AIC")) == pytest.approx(-2 * log_lik + 2 * num_params, abs=2e-4)
    bic = -2 * log_lik + num_params * np.log(107)
    assert float(value(stdout, "BIC")) == pytest.approx(bic, abs=2e-4)
    assert "log posterior    none: maximum likelihood (no prior)" in stdout
    assert f"initial={initial}" in stdout and "emission_prior=False" in stdout
    fit = hp.load(path)
    assert fit.attrs["initial"] == initial and fit.attrs["tol"] == 1e-10


@pytest.mark.parametrize("name", ["fetal_lamb", "old_faithful"])
def test_real_data_sets_reproduce_the_direct_maximum_likelihood(name, tmp_path):
    """``hmm-pyro fit`` of a shipped file with ``--method em --mle`` prints the two-state
    optimum (pi estimated) that direct maximisation finds independently of hmm_pyro
    (``tests/datasets/test_datasets.py`` recomputes the recorded value)."""
    entry = dataset(name)
    code, stdout, stderr = run(
        "fit", str(entry.path), *entry.cli_options(), "--states", "2", "--method", "em",
        "--mle", "--tol", "1e-10", "--max-iter", "2000", "--restarts", "1", "--no-progress",
        "--out", str(tmp_path / "fit.nc"),
    )  # fmt: skip
    assert code == 0, stderr
    assert value(stdout, "log likelihood") == f"{REFERENCE[name, 'free']:.4f}"
    assert "log posterior    none: maximum likelihood (no prior)" in stdout


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--mle"], ["--mle", "--method nuts", "em, viterbi, supervised"]),
        (["--method", "svi", "--stationary"], ["--stationary", "--method svi"]),
        (["--method", "em", "--mle", "--prior-A", "2"], ["--mle", "no prior", "['A']"]),
        (["--tol", "1e-3"], ["--tol", "--method nuts has no such setting", "em"]),
        (["--method", "map", "--max-iter", "5"], ["--max-iter", "--method map"]),
        (["--time-gaps", "sometimes"], ["--time-gaps", "invalid choice"]),
    ],
)
def test_settings_a_method_does_not_take_are_refused_in_one_line(extra, words, capsys):
    with contextlib.suppress(SystemExit):  # argparse's own refusals exit
        assert main(["fit", str(EARTHQUAKES.path), "--states", "2", *extra]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and all(word in lines[0] for word in words), lines


def test_gaps_in_time_are_missing_steps_with_a_note_or_an_error(tmp_path):
    """One sequence without a sequence column; times 0, 5, 9, 10: 7 missing steps."""
    path = tmp_path / "gaps.csv"
    pd.DataFrame({"time": [0, 5, 9, 10], "value": [1, 3, 2, 4]}).to_csv(path, index=False)
    common = ["--states", "2", "--emission", "poisson", "--method", "em", "--restarts", "1"]
    out = str(tmp_path / "gaps.nc")
    code, stdout, stderr = run("fit", str(path), *common, "--no-progress", "--out", out)
    assert code == 0, stderr
    (note,) = stderr.strip().splitlines()
    assert note.startswith("note: time column 'time': 2 gap(s), 7 skipped step(s) of 1")
    assert note.endswith("(--time-gaps error refuses gaps)")
    assert "lengths=[11], missing=7" in stdout and "(n = 4 observed steps)" in stdout
    code, _, stderr = run("fit", str(path), *common, "--time-gaps", "error", "--out", out)
    assert code == 2 and "skips steps" in stderr and "--time-gaps missing" in stderr
    code, stdout, _ = run("fit", str(path), *common, "--time-gaps", "ignore", "--out", out)
    assert code == 0 and "lengths=[4], missing=0" in stdout


def test_text_data_fit_prints_top_symbols_by_name_and_decodes_to_names(tmp_path):
    """Letters as values: 27 named symbols; each state's five most probable symbols printed
    by name in order; the decoded table and the emission plot name them too."""
    text = "the quick brown fox jumps over the lazy dog " * 4
    path = tmp_path / "text.csv"
    pd.DataFrame({"value": list(text)}).to_csv(path, index=False)
    out = tmp_path / "text.nc"
    code, stdout, stderr = run(
        "fit", str(path), "--time-column", "none", "--states", "2", "--method", "em",
        "--restarts", "1", "--no-progress", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    fit = hp.load(out)
    names = fit.hmm.emission.symbol_names
    assert names is not None and names[:3] == (" ", "a", "b") and len(names) == 27
    assert list(fit.idata.posterior["B"].coords["symbol"].values) == list(names)
    assert "27 entries per state; the 5 largest:" in stdout
    B = fit.posterior_mean()["B"]
    for state in range(2):
        (line,) = [
            line for line in stdout.splitlines() if line.strip().startswith(f"state {state}:")
        ]
        top = torch.argsort(B[state], descending=True, stable=True)[:5]
        assert re.findall(r"'(.)' \d\.\d{4}", line) == [names[i] for i in top]
    decoded = tmp_path / "decoded.csv"
    assert run("decode", str(out), "--data", str(path), "--time-column", "none",
               "--out", str(decoded))[0] == 0  # fmt: skip
    assert "".join(pd.read_csv(decoded, keep_default_na=False)["value"]) == text
    import matplotlib

    matplotlib.use("Agg")
    axes = hp.plots.plot_emissions(fit)  # 27 symbols: one panel per state
    labels = [label.get_text() for label in axes[-1].get_xticklabels()]
    assert "q" in labels and "' '" in labels  # a space, quoted to stay visible
    matplotlib.pyplot.close(axes[-1].figure)


def test_product_of_step_lengths_and_turning_angles_fits_and_diagnoses(tmp_path):
    """A movement track (CSV of step lengths and turning angles, one missing angle) fitted by
    ``--emission product --blocks step=gamma,angle=vonmises`` (EM), then ``diagnose``.

    Two planted states with mean steps 0.5 and 8 and mean angles 0 and 3 (about 60 steps
    each): the printed estimates per block are the saved fit's, the fitted mean steps are
    within 30% and the mean directions within 0.5 rad of the planted ones (several standard
    errors: a swapped block, column or state assignment fails it).
    """
    planted = {
        "pi": [0.5, 0.5], "A": [[0.9, 0.1], [0.2, 0.8]],
        "step_concentration": [2.0, 8.0], "step_rate": [4.0, 1.0],
        "angle_mu": [0.0, 3.0], "angle_kappa": [6.0, 2.0],
    }  # fmt: skip
    hmm = hp.HMM(2, hp.Product(step=hp.Gamma(), angle=hp.VonMises()))
    params = {name: torch.tensor(value, dtype=torch.float64) for name, value in planted.items()}
    data, _ = hp.simulate(hmm, params, [70, 50], seed=1)
    rows = [
        {"sequence": n, "time": t, "step": step, "angle": angle}
        for n, sequence in enumerate(data.to_list())
        for t, (step, angle) in enumerate(np.asarray(sequence))
    ]
    rows[5]["angle"] = np.nan
    path = tmp_path / "track.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    out = tmp_path / "track.nc"
    code, stdout, stderr = run(
        "fit", str(path), "--value-column", "step,angle", "--states", "2", "--emission",
        "product", "--blocks", "step=gamma,angle=vonmises", "--method", "em", "--restarts", "1",
        "--no-progress", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    assert "missing=1" in stdout
    fit = hp.load(out)
    assert fit.hmm.emission == hp.Product(step=hp.Gamma(), angle=hp.VonMises())
    estimates = fit.posterior_mean()
    for name in ("step_concentration", "step_rate", "angle_mu", "angle_kappa"):
        assert f"{name} =" in stdout
        block = stdout.split(f"{name} =\n")[1].splitlines()[1:3]
        printed = [float(line.split()[1]) for line in block]
        np.testing.assert_allclose(printed, estimates[name].numpy(), rtol=1e-3, atol=1e-4)
    order = torch.argsort(estimates["step_concentration"] / estimates["step_rate"])
    means = (estimates["step_concentration"] / estimates["step_rate"])[order]
    np.testing.assert_allclose(means.numpy(), [0.5, 8.0], rtol=0.3)
    directions = estimates["angle_mu"][order]
    assert abs(float(directions[0])) < 0.5 and abs(abs(float(directions[1])) - 3.0) < 0.5
    code, stdout, stderr = run("diagnose", str(out), "--out", str(tmp_path))
    assert code == 0, stdout + stderr
    assert "No degeneracy found" in stdout
    assert (tmp_path / "track_diagnosis.json").is_file()
