"""Tick labels thinned at draw time so that they never collide; messages instead of empty plots."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from hmm_pyro.plots._axes import _step, label_ticks, show_message
from tests.plots.render import check_layout

NAMES = [f"s{k}" for k in range(27)]


def _shown(axis):
    return [label.get_text() for label in axis.get_ticklabels() if label.get_text()]


@pytest.mark.parametrize("vertical", [False, True])
def test_every_name_when_there_is_room_else_every_nth(vertical):
    figure, ax = plt.subplots(figsize=(12, 8), layout="constrained")
    axis = ax.yaxis if vertical else ax.xaxis
    (ax.set_ylim if vertical else ax.set_xlim)(-0.5, 26.5)
    label_ticks(axis, NAMES)
    check_layout(figure)
    assert _shown(axis) == NAMES
    figure.set_size_inches(2.5, 1.6)  # the same axes, too small for 27 names
    check_layout(figure)
    shown = _shown(axis)
    step = int(shown[1][1:]) - int(shown[0][1:])
    assert 1 < step and shown == NAMES[::step]


def test_long_names_on_x_are_turned_upright():
    figure, ax = plt.subplots(figsize=(6, 3), layout="constrained")
    ax.set_xlim(-0.5, 26.5)
    label_ticks(ax.xaxis, [f"a long name {k}" for k in range(27)])
    check_layout(figure)
    assert {label.get_rotation() for label in ax.get_xticklabels()} == {90.0}


def test_steps():
    assert [_step(n) for n in (0, 1, 3, 5, 6, 11, 21, 26, 51)] == [1, 1, 3, 5, 10, 20, 25, 50, 100]


def test_a_message_instead_of_an_empty_plot():
    figure, ax = plt.subplots(figsize=(4, 3), layout="constrained")
    show_message(ax, "Sensitivity", "Nothing to show here: " + "because " * 20 + "reasons.")
    texts = sorted(text.text for text in check_layout(figure))
    assert texts[0].startswith("Nothing to show here:") and texts[1] == "Sensitivity"
    assert "\n" in texts[0] and not ax.axison
