"""Plots of one fit: state probabilities, Viterbi paths, transitions, losses (drawn content)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

import hmm_pyro as hp
from hmm_pyro.plots import plot_losses, plot_state_paths, plot_state_probs, plot_transitions
from hmm_pyro.plots.fit import MAX_COLUMNS
from hmm_pyro.simulate import REFERENCE_PARAMS
from tests.plots.conftest import SYMBOLS
from tests.plots.render import check_layout


def _image(ax):
    (image,) = ax.get_images()
    return np.ma.getdata(image.get_array()), np.ma.getmaskarray(image.get_array())


def test_state_probs_of_a_long_sequence_in_bins_with_named_symbols(point_fit):
    observed, heat = plot_state_probs(point_fit, sequence=0)
    check_layout(observed.figure)
    length = 1500
    (points,) = observed.get_lines()
    np.testing.assert_array_equal(points.get_ydata(), point_fit.data.values[0, :length, 0])
    assert [label.get_text() for label in observed.get_yticklabels()] == SYMBOLS
    probs = point_fit.state_probs(point_fit.data.select([0]))[0].numpy()
    width = -(-length // MAX_COLUMNS)
    values, _ = _image(heat)
    assert width == 2 and values.shape == (3, length // width)
    np.testing.assert_allclose(values, probs.reshape(-1, width, 3).mean(1).T, atol=1e-12)
    (viterbi,) = heat.get_lines()
    np.testing.assert_array_equal(viterbi.get_ydata(), point_fit.viterbi()[0][0].numpy())
    assert heat.get_xlabel() == "time (columns: mean probability over 2 steps)"
    assert heat.get_title().replace("\n", " ") == (
        "State probabilities (shade) and Viterbi path (red) at the point estimate (EM)"
    )
    assert observed.get_ylabel() == "symbol" and heat.get_xlim() == (-0.5, length - 0.5)


def test_state_probs_of_a_short_sequence_step_by_step(draws_fit):
    figure, axes = plt.subplots(2, 1, figsize=(6, 4), layout="constrained")
    returned = plot_state_probs(draws_fit, sequence=1, ax=axes)
    assert list(returned) == list(axes)
    check_layout(figure)
    values, _ = _image(axes[1])
    expected = draws_fit.state_probs(draws_fit.data.select([1]))[0].numpy()
    np.testing.assert_allclose(values, expected[:50].T)
    assert axes[1].get_xlabel() == "time"
    assert axes[1].get_title().replace("\n", " ") == (
        "State probabilities averaged over posterior draws (shade); Viterbi path under the "
        "posterior mean (red) (NUTS)"
    )
    assert axes[0].get_yticklabels()[0].get_text() != "a"  # numbers, not names
    with pytest.raises(ValueError, match=r"ax: expected two axes \(observations, state"):
        plot_state_probs(draws_fit, ax=axes[0])
    with pytest.raises(ValueError, match=r"sequence: expected an index in \[0, 2\), got 2"):
        plot_state_probs(draws_fit, sequence=2)


def test_state_paths_of_every_sequence(point_fit):
    ax = plot_state_paths(point_fit)
    check_layout(ax.figure)
    values, masked = _image(ax)
    paths = point_fit.viterbi()[0].numpy()
    assert values.shape == (3, 750)
    # each column is the most frequent state of two steps (a tie: the lower state)
    pairs = paths[0].reshape(-1, 2)
    np.testing.assert_array_equal(
        values[0], np.where(pairs[:, 0] == pairs[:, 1], pairs[:, 0], pairs.min(1))
    )
    assert not masked[0].any() and masked[1, 20:].all() and not masked[1, :20].any()
    assert masked[2, 13:].all() and not masked[2, :12].any()  # 25 steps: 12.5 columns
    assert ax.get_title() == "Viterbi state paths of 3 sequence(s) under the point estimate (EM)"
    assert ax.get_xlabel() == "time (columns: most frequent state over 2 steps)"
    colourbar = ax.figure.axes[-1]
    assert [label.get_text() for label in colourbar.get_yticklabels()] == ["0", "1", "2"]


def test_transitions_point_and_many_states(point_fit):
    ax = plot_transitions(point_fit)
    check_layout(ax.figure)
    values, _ = _image(ax)
    np.testing.assert_allclose(values, point_fit.draws()["A"][0, 0].numpy())
    assert sorted(text.get_text() for text in ax.texts) == sorted(["0.90"] * 3 + ["0.05"] * 6)
    assert ax.get_title().replace("\n", " ") == "transition matrix at the point estimate (EM)"
    hmm = hp.HMM(12, hp.Poisson())
    params = {name: value[0] for name, value in hmm.sample_prior(1, seed=0).items()}
    many = hp.Fit.from_params(hmm, [[1.0, 2.0, 3.0]], params, method="em")
    ax = plot_transitions(many)
    check_layout(ax.figure)
    assert len(ax.texts) == 0 and _image(ax)[0].shape == (12, 12)  # no numbers in 144 cells


@pytest.mark.parametrize(
    ("runner", "options", "ylabel", "xlabel", "method"),
    [
        (hp.fit_map, {}, "loss (negative log posterior)", "evaluation", "MAP, L-BFGS"),
        (hp.fit_map, {"optimizer": "adam"}, "loss (negative log posterior)", "step", "MAP, Adam"),
        (hp.fit_svi, {"num_draws": 5}, "loss (negative ELBO)", "step", "SVI, normal guide"),
    ],
    ids=["map-lbfgs", "map-adam", "svi"],
)
def test_loss_plot_names_the_objective_and_its_steps(runner, options, ylabel, xlabel, method):
    hmm = hp.HMM(3, hp.Categorical(5))
    data = hp.simulate(hmm, REFERENCE_PARAMS, [40, 30], seed=2)[0]
    fit = runner(hmm, data, steps=20, restarts=2, seed=0, progress=False, **options)
    ax = plot_losses(fit)
    check_layout(ax.figure)
    assert (ax.get_ylabel(), ax.get_xlabel()) == (ylabel, xlabel)
    assert ax.get_title() == f"{fit.method} restarts ({method}); black: kept"
    assert len(ax.get_lines()) == 2
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["restart 0", "restart 1"]


def test_no_loss_history(draws_fit):
    with pytest.raises(ValueError, match=r"fit: expected an SVI, MAP, EM or Viterbi-training fit"):
        plot_losses(draws_fit)
