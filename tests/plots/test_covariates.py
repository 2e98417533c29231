"""``plot_covariate_transitions``: transition probabilities against a covariate (drawn values)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import hmm_pyro as hp
from hmm_pyro.covariates import Covariates
from hmm_pyro.plots import plot_covariate_transitions, save_fit_plots, skipped_plots
from tests.plots.render import check_layout


@pytest.fixture(scope="module")
def covariate_fit():
    """Four draws (declared aligned) of a 2-state model with covariates hour and temp."""
    rng = np.random.default_rng(1)
    columns = [np.column_stack([rng.uniform(0, 24, 30), rng.normal(15, 5, 30)]) for _ in range(2)]
    data = hp.Sequences(
        list(rng.normal(size=(2, 30))), covariates=Covariates(columns, ["hour", "temp"])
    )
    hmm = hp.CovariateHMM(2, hp.Gaussian(), ["hour", "temp"])
    draws = {k: v.reshape(2, 2, *v.shape[1:]) for k, v in hmm.sample_prior(4, seed=0).items()}
    return hp.Fit.from_params(hmm, data, draws, method="nuts", attrs={"labels": "aligned"})


def test_curves_are_the_posterior_means_with_their_bands(covariate_fit):
    axes = plot_covariate_transitions(covariate_fit, "temp", values=[5.0, 15.0, 25.0])
    check_layout(axes[0].figure)
    summary = covariate_fit.transition_matrix({"temp": [5.0, 15.0, 25.0]})
    assert len(axes) == 2
    for i, axis in enumerate(axes):
        lines = axis.get_lines()[:2]  # one per state of arrival, then the rug
        for j, line in enumerate(lines):
            np.testing.assert_array_equal(line.get_xdata(), [5.0, 15.0, 25.0])
            np.testing.assert_allclose(line.get_ydata(), summary.mean[:, i, j].numpy())
        assert len(axis.collections) == 2  # the bands
        assert axis.get_title() == f"from state {i}" and axis.get_xlabel() == "temp"
    title = axes[0].figure.get_suptitle().replace("\n", " ")
    assert title == "posterior mean transition probabilities, 90% band (NUTS); hour at their mean"
    plt.close(axes[0].figure)


def test_saved_with_the_other_plots_one_file_per_covariate(covariate_fit, tmp_path):
    assert "covariates" not in skipped_plots(covariate_fit)
    paths = save_fit_plots(covariate_fit, tmp_path, kinds=["covariates", "transitions"])
    assert [path.name for path in paths] == [
        "fit_covariates_hour.png",
        "fit_covariates_temp.png",
        "fit_transitions.png",
    ]


def test_a_model_without_covariates_is_refused():
    hmm = hp.HMM(2, hp.Poisson())
    fit = hp.Fit.from_params(hmm, [[1, 2, 3]], hmm.sample_prior(seed=0))
    with pytest.raises(ValueError, match=r"^fit: HMM.* has no transition covariates"):
        plot_covariate_transitions(fit)
    params = {name: value[0, 0] for name, value in fit.draws().items()}
    assert torch.equal(params["A"], fit.transition_matrix().mean)
