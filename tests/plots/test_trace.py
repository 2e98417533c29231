"""The trace plot: the log likelihood and each state's entries, one colour per chain."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hmm_pyro as hp
from hmm_pyro.plots import plot_trace
from tests.plots.render import check_layout


def test_trace_of_two_chains(draws_fit):
    axes = plot_trace(draws_fit, max_entries=2)
    check_layout(axes[0].figure)
    assert len(axes) == 1 + 3
    assert [text.get_text() for text in axes[0].get_legend().get_texts()] == ["chain 0", "chain 1"]
    log_lik = draws_fit.idata.log_likelihood["y"].values.sum(-1)
    for chain, line in enumerate(axes[0].get_lines()):
        np.testing.assert_allclose(line.get_ydata(), log_lik[chain])
        assert line.get_color() == f"C{chain}"
    values = draws_fit.draws()["B"].numpy()
    for state, axis in enumerate(axes[1:]):
        spread = values[:, :, state].reshape(12, 5).std(0)
        shown = sorted(np.argsort(-spread)[:2])
        legend = axis.get_legend()
        assert [text.get_text() for text in legend.get_texts()] == [str(k) for k in shown]
        assert legend.get_title().get_text() == "symbol: 2 of 5,\nlargest sd"
        drawn = [line for line in axis.get_lines() if len(line.get_xdata())]
        assert len(drawn) == 2 * 2  # two entries x two chains
        np.testing.assert_allclose(drawn[1].get_ydata(), values[1, :, state, shown[0]])
    assert axes[0].get_title().replace("\n", " ") == (
        "Trace (NUTS): log likelihood of the data, then emissions per state"
    )


def test_a_point_estimate_has_no_trace(point_fit, draws_fit):
    with pytest.raises(
        ValueError, match=r"fit: a trace needs several draws, got a point estimate \(EM\)"
    ):
        plot_trace(point_fit)
    with pytest.raises(ValueError, match=r"max_entries: expected at most 4, got 5"):
        plot_trace(draws_fit, max_entries=5)
    with pytest.raises(ValueError, match=r"ax: expected 4 axes \(log likelihood, then each"):
        plot_trace(draws_fit, ax=[None, None])


def test_trace_of_every_emission_parameter():
    """A Gaussian fit: ``mu`` and ``sigma`` of each state, drawn from one SVI guide."""
    rng = np.random.default_rng(1)
    draws = {
        "pi": torch.full((1, 5, 2), 0.5, dtype=torch.float64),
        "A": torch.full((1, 5, 2, 2), 0.5, dtype=torch.float64),
        "mu": torch.tensor(rng.normal([-1.0, 2.0], 0.1, size=(1, 5, 2))),
        "sigma": torch.tensor(rng.uniform(0.5, 1.5, size=(1, 5, 2))),
    }
    fit = hp.Fit.from_params(
        hp.HMM(2, hp.Gaussian()), [[0.1, -0.4, 2.2]], draws, method="svi", attrs={"guide": "mvn"}
    )
    axes = plot_trace(fit)
    check_layout(axes[0].figure)
    assert axes[0].get_title().startswith("Trace (SVI, mvn guide)")
    for state, axis in enumerate(axes[1:]):
        legend = axis.get_legend()
        assert [text.get_text() for text in legend.get_texts()] == ["mu", "sigma"]
        assert legend.get_title().get_text() == "parameter"
        mu, sigma = (line.get_ydata() for line in axis.get_lines() if len(line.get_xdata()))
        np.testing.assert_allclose(mu, draws["mu"][0, :, state])
        np.testing.assert_allclose(sigma, draws["sigma"][0, :, state])
    assert axes[-1].get_xlabel() == "draw (independent)"
