"""Plots of a prior comparison: what each shows for MAP fits with blocked K-fold CV."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import hmm_pyro as hp
from hmm_pyro.compare import compare_priors
from hmm_pyro.plots import plot_comparison, save_comparison
from hmm_pyro.simulate import REFERENCE_PARAMS
from tests.plots.render import check_layout, checked_savefig

PRIORS = {"flat": hp.Prior(), "sticky": hp.Prior(stickiness=10.0)}


@pytest.fixture(scope="module")
def comparison():
    """MAP fits of one sequence: blocked K-fold CV (the ELPD title that used to be clipped)."""
    hmm = hp.HMM(3, hp.Categorical(5))
    data, _ = hp.simulate(hmm, REFERENCE_PARAMS, [120], seed=0)
    return compare_priors(
        hmm, data, PRIORS, method="map", seed=0, parallel=False, folds=2, restarts=1
    )


def _one_line(text):
    return text.replace("\n", " ")


def test_every_plot_of_a_map_comparison(comparison, tmp_path):
    assert comparison.elpd_method.startswith("2-fold blocked CV: contiguous time blocks")
    with checked_savefig() as saved:  # every PNG is checked for clipped or colliding text
        paths = save_comparison(comparison, tmp_path, prefix="cmp")
    assert saved == [
        f"cmp_{kind}.png" for kind in ("elpd", "separation", "sensitivity", "emissions")
    ]
    for kind in ("elpd", "separation", "sensitivity", "emissions"):
        assert paths[kind].stat().st_size > 1000

    elpd = plot_comparison(comparison, "elpd")
    check_layout(elpd.figure)
    assert elpd.get_title() == "Predictive fit per prior: 2-fold blocked CV"
    assert (
        _one_line(elpd.get_xlabel()) == "ELPD, MAP plug-in (+/- 2 SE); red: diagnose raised a flag"
    )
    assert [label.get_text() for label in elpd.get_yticklabels()] == ["flat", "sticky"]
    (bars,) = [line for line in elpd.get_lines() if line.get_linestyle() == "None"][:1]
    np.testing.assert_allclose(bars.get_xdata(), comparison.table["elpd"].to_numpy())

    separation = plot_comparison(comparison, "separation")
    check_layout(separation.figure)
    (points,) = [line for line in separation.get_lines() if line.get_label() == "point estimate"]
    expected = [float(comparison.min_distance[name][0]) for name in PRIORS]
    np.testing.assert_allclose(points.get_xdata(), expected)
    assert "(point estimates)" in _one_line(separation.get_xlabel())

    sensitivity = plot_comparison(comparison, "sensitivity")
    check_layout(sensitivity.figure)
    assert not sensitivity.axison and len(sensitivity.collections) == 0
    (message,) = sensitivity.texts
    assert _one_line(message.get_text()).startswith(
        "No sensitivity to show: the fits are point estimates (map)."
    )

    emissions = plot_comparison(comparison, "emissions")
    check_layout(emissions.figure)
    assert _one_line(emissions.get_ylabel()) == "point estimate (MAP, L-BFGS)"
    legend = [text.get_text() for text in emissions.get_legend().get_texts()]
    assert legend == list(PRIORS) and len(emissions.get_lines()) == 2


def test_sensitivity_scatter_and_the_grid(comparison):
    frame = comparison.sensitivity.copy()
    frame["prior"] = np.linspace(0.0, 0.2, len(frame))
    frame["likelihood"] = np.linspace(0.3, 0.0, len(frame))
    frame.loc[frame["setting"] == "sticky", ["prior", "likelihood"]] = np.nan
    drawn = dataclasses.replace(comparison, sensitivity=frame)
    ax = plot_comparison(drawn, "sensitivity")
    check_layout(ax.figure)
    flat, sticky = ax.collections
    assert len(flat.get_offsets()) == 15 and len(sticky.get_offsets()) == 0
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["flat", "sticky (none)"]
    axes = plot_comparison(drawn)
    check_layout(axes[0, 0].figure)
    assert axes.shape == (2, 2)
    assert [_one_line(axis.get_title()) for axis in axes.ravel()] == [
        "Predictive fit per prior: 2-fold blocked CV",
        "How distinct are the states?",
        "Power-scaling sensitivity of emission entries",
        "Emission parameters per prior setting",
    ]
