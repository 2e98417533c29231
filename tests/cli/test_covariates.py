"""``hmm-pyro fit --transition-covariates``: covariate columns of a CSV file, the fit, its plots,
and decoding new data with the fit's covariates (in-process ``main([...])`` calls)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch

import hmm_pyro as hp
from hmm_pyro.covariates import Covariates
from tests.cli.test_fit import run


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory):
    """Two sequences of a 2-state Gaussian HMM whose switching follows ``hour``."""
    hmm = hp.CovariateHMM(2, hp.Gaussian(), ["hour"])
    beta = torch.tensor([[[0.0, 0.0], [-2.0, 1.5]], [[-2.0, -1.5], [0.0, 0.0]]])
    params = {
        "pi": torch.tensor([0.5, 0.5], dtype=torch.float64),
        "beta_A": beta.to(torch.float64),
        "mu": torch.tensor([-2.0, 2.0], dtype=torch.float64),
        "sigma": torch.ones(2, dtype=torch.float64),
    }
    steps = np.arange(100)
    hours = [np.sin(2 * np.pi * steps / 24), np.cos(2 * np.pi * steps / 24)]
    covariates = Covariates([h * 10 + 12 for h in hours], ["hour"], standardize=False)
    data, _ = hp.simulate(hmm, params, covariates=covariates, seed=0)
    table = data.to_dataframe()
    table["wind"] = np.random.default_rng(0).normal(size=len(table))
    path = tmp_path_factory.mktemp("covariates") / "data.csv"
    table.to_csv(path, index=False)
    return path


def test_fit_reads_standardises_and_plots_the_covariates(csv_file, tmp_path):
    out = tmp_path / "fit.nc"
    code, stdout, stderr = run(
        "fit", str(csv_file), "--states", "2", "--emission", "gaussian", "--method", "map",
        "--restarts", "1", "--transition-covariates", "hour", "--initial-covariates", "wind",
        "--no-progress",
        "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    table = pd.read_csv(csv_file)
    mean, sd = table["hour"].mean(), table["hour"].std(ddof=0)
    assert f"hour (mean {mean:.4g}, sd {sd:.4g})" in stdout
    assert re.search(r"from -> to +'intercept' +'hour'", stdout)
    assert re.search(r"state +'intercept' +'wind'", stdout)  # the initial distribution's
    assert (tmp_path / "fit_covariates_hour.png").stat().st_size > 1000
    assert f"saved {out}; next: hmm-pyro diagnose {out}" in stdout
    code, stdout, stderr = run("diagnose", str(out))
    assert code in (0, 1) and "Traceback" not in stderr, stderr
    assert "refits skipped: the transitions change with covariates" in stdout
    fit = hp.load(out)
    assert fit.hmm.transition_covariates == ("hour",)
    assert fit.hmm.initial_covariates == ("wind",)
    torch.testing.assert_close(fit.data.covariates.means[0].item(), mean, rtol=1e-12, atol=0)
    decoded = tmp_path / "decoded.csv"
    code, _, stderr = run("decode", str(out), "--data", str(csv_file), "--out", str(decoded))
    assert code == 0, stderr
    states = pd.read_csv(decoded)
    torch.testing.assert_close(
        torch.as_tensor(states[["p_state_0", "p_state_1"]].to_numpy()),
        fit.state_probs()[fit.data.mask],
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--method", "em"], "--transition-covariates: fitted by --method nuts, svi, map"),
        (["--batch-size", "1", "--method", "svi"], "--transition-covariates: covariates are read"),
        (["--stickiness", "2"], "prior: ['stickiness'] set, but a CovariateHMM"),
    ],
)
def test_covariate_options_are_checked(csv_file, tmp_path, options, message):
    code, _, stderr = run(
        "fit", str(csv_file), "--states", "2", "--emission", "gaussian",
        "--transition-covariates", "hour", "--out", str(tmp_path / "x.nc"), *options,
    )  # fmt: skip
    assert code == 2 and message in stderr and stderr.count("\n") == 1
    code, _, stderr = run("fit", str(csv_file), "-K", "2", "--initial-covariates", "hour")
    assert code == 2 and "--initial-covariates: goes with --transition-covariates" in stderr


def test_compare_and_sweep_take_the_covariate_options(csv_file, tmp_path):
    """``compare`` and ``sweep`` read the covariate columns as ``fit`` does and fit the
    CovariateHMM in their tasks; ``compare`` asks for settings, as its default varies the
    stickiness the model does not have."""
    common = (str(csv_file), "--emission", "gaussian", "--method", "map", "--restarts", "1")
    options = ("--transition-covariates", "hour", "--serial", "--no-progress")
    code, _, stderr = run("compare", *common, "-K", "2", *options)
    assert code == 2 and "error: --prior: the default settings vary the stickiness" in stderr
    assert stderr.count("\n") == 1
    out = tmp_path / "compare"
    code, stdout, stderr = run(
        "compare", *common, "-K", "2", *options, "--prior", "flat", "--prior",
        "tight:mu_scale=0.1", "--folds", "2", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    assert "CovariateHMM(num_states=2" in stdout
    table = pd.read_csv(out / "compare.csv")
    assert table["setting"].tolist() == ["flat", "tight"] and table["elpd"].notna().all()
    assert (table["elpd_method"].str.startswith("2-fold CV over whole sequences")).all()
    code, stdout, stderr = run(
        "sweep", *common, "--states", "2", *options, "--no-fits", "--out", str(tmp_path / "s"),
    )  # fmt: skip
    assert code == 0, stderr
    assert pd.read_csv(tmp_path / "s" / "sweep.csv")["log_likelihood"].notna().all()
    code, _, stderr = run("sweep", *common, "--states", "2", *options[:2], "--method", "em")
    assert code == 2 and "--transition-covariates: fitted by --method nuts, svi, map" in stderr
