"""Degeneracy plots: emissions per state, pairwise distances, relabelling traces (content)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.collections import LineCollection

from hmm_pyro.labels.draws import emission_distances, to_numpy
from hmm_pyro.plots import plot_emissions, plot_relabel_traces, plot_state_distances
from tests.plots.conftest import SYMBOLS
from tests.plots.render import check_layout


def _one_line(text):
    return text.replace("\n", " ")


def _bars(ax):
    return [item for item in ax.collections if isinstance(item, LineCollection)]


def test_emissions_of_a_point_estimate_with_27_named_symbols(point_fit):
    axes = plot_emissions(point_fit)
    check_layout(axes[0].figure)
    assert len(axes) == 3  # one panel per state: 27 entries do not fit side by side
    assert _one_line(axes[0].get_title()) == "Emission parameters per state: point estimate (EM)"
    assert [label.get_text() for label in axes[-1].get_xticklabels()] == SYMBOLS
    assert axes[-1].get_xlabel() == "symbol (B[state, symbol])"
    expected = point_fit.draws()["B"][0, 0].numpy()
    for state, axis in enumerate(axes):
        assert _bars(axis) == []  # a point has no interval
        (line,) = axis.get_lines()
        np.testing.assert_allclose(line.get_ydata(), expected[state])
        assert axis.get_ylabel() == f"state {state}"


def test_emissions_of_draws_side_by_side_with_intervals(draws_fit):
    ax = plot_emissions(draws_fit, prob=0.5)
    check_layout(ax.figure)
    assert _one_line(ax.get_ylabel()) == "posterior median, 50% interval (NUTS)"
    assert [text.get_text() for text in ax.get_legend().get_texts()] == [
        "state 0",
        "state 1",
        "state 2",
    ]
    assert [label.get_text() for label in ax.get_xticklabels()] == ["0", "1", "2", "3", "4"]
    values = draws_fit.draws()["B"].numpy().reshape(-1, 3, 5)
    bars = _bars(ax)
    assert len(bars) == 3
    for state, collection in enumerate(bars):
        segments = np.array(collection.get_segments())  # (entries, 2 ends, xy)
        low, high = np.quantile(values[:, state], [0.25, 0.75], axis=0)
        np.testing.assert_allclose(segments[:, :, 1], np.stack([low, high], axis=1))
    with pytest.raises(ValueError, match=r"prob: expected a probability in \(0, 1\), got 1.5"):
        plot_emissions(draws_fit, prob=1.5)
    with pytest.raises(ValueError, match=r"ax: expected one axes or 3 \(one per state\), got 2"):
        plot_emissions(draws_fit, ax=[ax, ax])


def test_distances_of_a_point_estimate_are_lines(point_fit):
    ax = plot_state_distances(point_fit)
    check_layout(ax.figure)
    distances = emission_distances(point_fit.hmm, to_numpy(point_fit.draws()))[0, 0]
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    pairs = [f"states {i}-{j}: {distances[i, j]:.2f}" for i, j in ((0, 1), (0, 2), (1, 2))]
    assert legend == [*pairs, "prior, closest pair", "collapse threshold 0.05"]
    assert _one_line(ax.get_title()) == "Pairwise state distances at the point estimate (EM)"
    assert ax.get_ylabel() == "prior density"
    lines = [line.get_xdata()[0] for line in ax.get_lines()[:3]]
    np.testing.assert_allclose(lines, [distances[0, 1], distances[0, 2], distances[1, 2]])


def test_distances_of_draws_are_histograms(draws_fit):
    ax = plot_state_distances(draws_fit, bins=10)
    check_layout(ax.figure)
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == [
        "states 0-1",
        "states 0-2",
        "states 1-2",
        "prior, closest pair",
        "collapse threshold 0.05",
    ]
    assert len(ax.patches) == 4 and ax.get_ylabel() == "density"  # 3 pairs and the prior


def test_relabel_traces_name_the_entry_and_the_chains(draws_fit):
    before, after = plot_relabel_traces(draws_fit, draws_fit, entry=4)
    check_layout(before.figure)
    title = "B[symbol 4], before relabelling (2 chains, ending at dotted lines)"
    assert _one_line(before.get_title()) == title
    assert len(before.get_lines()) == 3 + 1  # a trace per state and one chain boundary
    np.testing.assert_allclose(
        after.get_lines()[1].get_ydata(), draws_fit.draws()["B"].numpy()[:, :, 1, 4].ravel()
    )
    assert [text.get_text() for text in before.get_legend().get_texts()] == [
        "state 0",
        "state 1",
        "state 2",
    ]
