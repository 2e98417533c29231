"""Plots of one fit: what the loss plot says it shows."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import pytest

import hmm_pyro as hp
from hmm_pyro.plots import plot_losses
from hmm_pyro.simulate import REFERENCE_PARAMS

matplotlib.use("Agg")


@pytest.mark.parametrize(
    ("runner", "options", "ylabel", "xlabel"),
    [
        (hp.fit_map, {}, "loss (negative log posterior)", "evaluation"),
        (hp.fit_map, {"optimizer": "adam"}, "loss (negative log posterior)", "step"),
        (hp.fit_svi, {"num_draws": 5}, "loss (negative ELBO)", "step"),
    ],
    ids=["map-lbfgs", "map-adam", "svi"],
)
def test_loss_plot_names_the_objective_and_its_steps(runner, options, ylabel, xlabel):
    hmm = hp.HMM(3, hp.Categorical(5))
    data = hp.simulate(hmm, REFERENCE_PARAMS, [40, 30], seed=2)[0]
    fit = runner(hmm, data, steps=20, restarts=2, seed=0, progress=False, **options)
    ax = plot_losses(fit)
    assert (ax.get_ylabel(), ax.get_xlabel()) == (ylabel, xlabel)
    assert len(ax.get_lines()) == 2 and ax.get_title().startswith(f"{fit.method} restarts")
    plt.close(ax.figure)
