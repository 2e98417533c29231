"""``plot_shrinkage``: subject-level estimates, the unpooled fits and the group value."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hmm_pyro as hp
from hmm_pyro.learning import fit_subjects_separately
from hmm_pyro.plots import plot_shrinkage
from tests.plots.render import check_layout


@pytest.fixture(scope="module")
def multilevel_fit():
    """2 chains x 3 draws (declared aligned) around planted parameters of 3 subjects."""
    hmm = hp.MultilevelHMM(2, hp.Gaussian(), ["a", "b", "a", "c"])
    truth = {
        "pi": torch.tensor([0.5, 0.5]),
        "A": torch.tensor([[0.9, 0.1], [0.2, 0.8]]),
        "mu": torch.tensor([-3.0, 3.0]),
        "sigma": torch.ones(2),
        "tau_A": torch.full((2,), 0.5),
        "z_A": torch.randn(3, 2, 2, generator=torch.Generator().manual_seed(0)),
        "tau_mu": torch.full((2,), 1.0),
        "z_mu": torch.tensor([[1.0, -1.0], [0.0, 0.5], [-1.0, 0.0]]),
    }
    truth = {name: value.double() for name, value in truth.items()}
    data, _ = hp.simulate(hmm, truth, [80, 60, 40, 50], seed=1)
    jitter = torch.linspace(-0.05, 0.05, 6).reshape(2, 3)
    draws = {
        name: value + (jitter.reshape(2, 3, *[1] * value.dim()) if name.startswith("z") else 0)
        for name, value in truth.items()
    }
    draws = {name: value.expand(2, 3, *truth[name].shape) for name, value in draws.items()}
    fit = hp.Fit.from_params(hmm, data, draws, method="nuts", attrs={"labels": "aligned"})
    return fit, truth


def test_points_are_the_subject_means_and_the_unpooled_fits(multilevel_fit):
    fit, _ = multilevel_fit
    axes = plot_shrinkage(fit, "mu")
    assert [axis.get_title() for axis in axes] == ["mu[0]", "mu[1]"]
    posterior = fit.idata.posterior["mu_subject"].mean(("chain", "draw")).values  # (S, K)
    start = {name: value.mean((0, 1)) for name, value in fit.draws().items()}
    alone = fit_subjects_separately(fit.hmm, fit.data, start)["mu"].numpy()
    for k, axis in enumerate(axes):
        group_line = axis.lines[0].get_ydata()
        assert np.allclose(group_line, float(fit.draws()["mu"][..., k].mean()))
        drawn = [line.get_ydata() for line in axis.lines if line.get_marker() == "o"]
        assert np.allclose(drawn[0], alone[:, k])
        assert np.allclose(axis.containers[0].lines[0].get_ydata(), posterior[:, k])
    check_layout(axes[0].figure)


def test_unpooled_fits_follow_each_subjects_data(multilevel_fit):
    """Subject ``a`` (two sequences, z_mu = [1, -1]) sits near mu + tau z = [-2, 2]: its own
    EM estimate is within 0.3 of it (140 steps, sd of a state mean about 0.15)."""
    fit, truth = multilevel_fit
    alone = fit_subjects_separately(fit.hmm, fit.data, truth)
    planted = fit.hmm.subject_params(truth)["mu"]
    assert (alone["mu"][0] - planted[0]).abs().max() < 0.3
    assert alone["A"].shape == (3, 2, 2)


def test_stay_probabilities_and_bad_input(multilevel_fit):
    fit, _ = multilevel_fit
    axes = plot_shrinkage(fit, no_pooling=False)
    assert [axis.get_title() for axis in axes] == ["P(stay in state 0)", "P(stay in state 1)"]
    with pytest.raises(ValueError, match="parameter: expected one of the random effects"):
        plot_shrinkage(fit, "sigma")
    with pytest.raises(ValueError, match="ax: expected 2 axes"):
        plot_shrinkage(fit, "A", no_pooling=False, ax=[axes[0]])
