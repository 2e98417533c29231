"""``hmm-pyro fit --emission-covariates``: an emission regression on columns of a CSV file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

import hmm_pyro as hp
from hmm_pyro.covariates import Covariates
from tests.cli.test_fit import run


def test_fit_regresses_the_emission_on_standardised_columns(tmp_path):
    """Two Gaussian states whose means move with ``temp`` (raw mean about 20, sd 5): EM on
    2 x 150 steps recovers the slopes on the standardised scale to 0.2 (their standard errors
    are about 0.05), the standardisation is printed and kept, and diagnose runs on the fit."""
    rng = np.random.default_rng(0)
    raw = [20 + 5 * rng.normal(size=150) for _ in range(2)]
    covariates = Covariates(raw, ["temp"])
    hmm = hp.HMM(2, hp.GaussianRegression(["temp"]))
    truth = {
        "pi": torch.tensor([0.5, 0.5], dtype=torch.float64),
        "A": torch.tensor([[0.9, 0.1], [0.1, 0.9]], dtype=torch.float64),
        "w": torch.tensor([[-3.0, 1.0], [3.0, -1.0]], dtype=torch.float64),
        "sigma": torch.tensor([0.5, 0.5], dtype=torch.float64),
    }
    data, _ = hp.simulate(hmm, truth, covariates=covariates, seed=1)
    path = tmp_path / "data.csv"
    data.to_dataframe().to_csv(path, index=False)
    out = tmp_path / "fit.nc"
    code, stdout, stderr = run(
        "fit", str(path), "--states", "2", "--emission", "gaussian", "--method", "em",
        "--emission-covariates", "temp", "--restarts", "1", "--no-progress", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    table = pd.read_csv(path)
    mean, sd = table["temp"].mean(), table["temp"].std(ddof=0)
    assert f"temp (mean {mean:.4g}, sd {sd:.4g})" in stdout
    fit = hp.load(out)
    assert fit.hmm.emission == hp.GaussianRegression(["temp"])
    torch.testing.assert_close(fit.data.covariates.sds[0].item(), sd, rtol=1e-12, atol=0)
    estimate = fit.posterior_mean()["w"]
    order = torch.argsort(estimate[:, 0])
    np.testing.assert_allclose(estimate[order].numpy(), truth["w"].numpy(), atol=0.2)
    code, _, stderr = run("diagnose", str(out))
    assert code in (0, 1) and "Traceback" not in stderr, stderr
    code, _, stderr = run(
        "fit", str(path), "--states", "2", "--emission", "vonmises",
        "--emission-covariates", "temp", "--out", str(tmp_path / "x.nc"),
    )  # fmt: skip
    assert code == 2 and "--emission-covariates: VonMises" in stderr, stderr
    assert "has no emission regression" in stderr and stderr.count("\n") == 1
