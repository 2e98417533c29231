"""Plots for degeneracy checks (matplotlib, imported lazily). Each takes ``ax`` and returns it.

* :func:`plot_emissions` - emission parameters per state with central credible intervals (the
  point itself for a point estimate); one panel per state when there are many entries.
* :func:`plot_state_distances` - posterior of each pairwise squared Hellinger distance (or the
  point estimate's distances), with the prior's smallest pairwise distance and the collapse
  threshold.
* :func:`plot_relabel_traces` - traces of one emission entry per state before and after
  relabelling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from hmm_pyro.diagnostics.collapse import min_pairwise
from hmm_pyro.diagnostics.thresholds import COLLAPSE_DISTANCE
from hmm_pyro.fit import Fit
from hmm_pyro.labels.draws import emission_distances, to_numpy
from hmm_pyro.plots._axes import _axes, fitted, label_ticks, new_figure, state_colours
from hmm_pyro.plots._labels import (
    emission_entries,
    entry_names,
    estimate_label,
    is_point,
    method_label,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_emissions", "plot_relabel_traces", "plot_state_distances"]

GROUPED_ENTRIES = 12
"""Up to this many emission entries per state, the states share one axes (side by side per
entry); beyond it (e.g. 27 symbols) a new figure draws one panel per state."""
LABELLED_PAIRS = 6
"""Up to this many pairs of states, each pair's distances get their own colour and legend
entry; beyond it the pairs are grey and only the closest pair is named."""


def plot_emissions(
    fit: Fit, ax: Axes | Sequence[Axes] | None = None, prob: float = 0.9
) -> Axes | np.ndarray:
    """Posterior median and central ``prob`` interval of every emission entry, per state.

    A point estimate (one draw: MAP, EM, ...) is drawn as points and labelled as such. Entries
    are named by the fit's coordinates (symbol names when the fit has them).

    Parameters
    ----------
    fit : Fit
        Preferably with draws in one labelling (``fit.labelling``): otherwise states may be
        mixed.
    ax : matplotlib.axes.Axes or sequence of them, optional
        One axes: the states side by side per entry. One axes per state: a panel per state.
        Default: a new figure, with one panel per state when there are more than
        :data:`GROUPED_ENTRIES` entries per state.
    prob : float
        Mass of the central credible interval.

    Returns
    -------
    matplotlib.axes.Axes, or numpy.ndarray of one axes per state (panels)

    Raises
    ------
    ValueError
        If ``prob`` is not in ``(0, 1)`` or ``ax`` holds other than one axes per state.
    """
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob: expected a probability in (0, 1), got {prob}")
    axis_label, labels, values = emission_entries(fit)
    values = values.reshape(-1, *values.shape[2:])  # chains pooled
    num = fit.hmm.num_states
    lower, median, upper = np.quantile(values, [(1 - prob) / 2, 0.5, (1 + prob) / 2], axis=0)
    point = is_point(fit)
    what = estimate_label(fit, prob)
    colours = state_colours(num)
    panels = ax is None and len(labels) > GROUPED_ENTRIES and num > 1
    if ax is not None and not hasattr(ax, "plot"):
        panels = True
        axes = np.ravel(np.asarray(ax, dtype=object))
        if axes.size != num:
            raise ValueError(f"ax: expected one axes or {num} (one per state), got {axes.size}")
    elif panels:
        width = min(16.0, max(7.0, 0.28 * len(labels) + 2.0))
        figure = new_figure(figsize=(width, 1.3 * num + 1.4))
        axes = np.ravel(figure.subplots(num, 1, sharex=True, sharey=True, squeeze=False))
    positions = np.arange(len(labels))
    style = {"fmt": "o", "markersize": 4 if panels else 6, "capsize": 0 if point else 2}
    if panels:
        for state, axis in enumerate(axes):
            bars = None if point else [median[state] - lower[state], upper[state] - median[state]]
            axis.errorbar(positions, median[state], yerr=bars, color=colours[state], **style)
            axis.set_ylabel(f"state {state}")
            axis.grid(axis="x", color="0.9", linewidth=0.6)
            label_ticks(axis.xaxis, labels)
        axes[0].set_title(fitted(axes[0], f"Emission parameters per state: {what}"))
        axes[-1].set_xlabel(axis_label)
        return axes
    ax = _axes(ax, figsize=(7, 3.5))
    width = 0.6 / max(num, 1)
    for state in range(num):
        x = positions - 0.3 + (state + 0.5) * width
        bars = None if point else [median[state] - lower[state], upper[state] - median[state]]
        ax.errorbar(
            x, median[state], yerr=bars, color=colours[state], label=f"state {state}", **style
        )
    label_ticks(ax.xaxis, labels)
    ax.set_xlabel(axis_label)
    ax.set_ylabel(fitted(ax, what, "medium", along="y"))
    ax.set_title("Emission parameters per state")
    ax.legend(
        fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0,
        ncol=-(-num // 12),
    )
    return ax


def plot_state_distances(
    fit: Fit, ax: Axes | None = None, distance: float = COLLAPSE_DISTANCE, bins: int = 40
) -> Axes:
    """Posterior of each pairwise squared Hellinger distance between emission laws.

    The prior's smallest pairwise distance (dashed) shows how alike the prior alone makes the
    states; the vertical line is the collapse threshold. A point estimate's distances are
    vertical lines. With more than :data:`LABELLED_PAIRS` pairs, the pairs are grey and only
    the closest one (smallest median distance) is named.

    Parameters
    ----------
    fit : Fit
        The fit (pairs are labelled as in the fit).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.
    distance : float
        Collapse threshold drawn as a vertical line.
    bins : int
        Histogram bins on ``[0, 1]``.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax, figsize=(6.5, 3.5))
    hmm = fit.hmm
    num = hmm.num_states
    edges = np.linspace(0.0, 1.0, bins + 1)
    posterior = emission_distances(hmm, to_numpy(fit.draws())).reshape(-1, num, num)
    pairs = [(i, j) for i in range(num) for j in range(i + 1, num)]
    closest = min(pairs, key=lambda pair: np.median(posterior[:, pair[0], pair[1]]), default=None)
    point = is_point(fit)
    many, others_named = len(pairs) > LABELLED_PAIRS, False
    for index, (i, j) in enumerate(pairs):
        if not many:
            colour, label = f"C{index}", f"states {i}-{j}"
        elif (i, j) == closest:
            colour, label = "C3", f"closest pair {i}-{j}"
        else:
            colour, label = "0.7", None if others_named else f"other {len(pairs) - 1} pairs"
            others_named = True
        layer = 1.5 if colour == "0.7" else 2.0  # the named pairs over the grey ones
        if point:
            value = float(posterior[0, i, j])
            ax.axvline(
                value,
                color=colour,
                linewidth=1.5,
                zorder=layer,
                label=label if label is None or colour == "0.7" else f"{label}: {value:.2f}",
            )
        else:
            ax.hist(
                posterior[:, i, j],
                bins=edges,
                density=True,
                histtype="step",
                color=colour,
                label=label,
                zorder=layer,
            )
    if num > 1:
        prior = min_pairwise(emission_distances(hmm, to_numpy(fit.draws("prior")))).ravel()
        ax.hist(
            prior,
            bins=edges,
            density=True,
            histtype="step",
            linestyle="--",
            color="0.4",
            label="prior, closest pair",
        )
    ax.axvline(distance, color="k", linewidth=1, label=f"collapse threshold {distance:g}")
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("squared Hellinger distance between emission laws")
    ax.set_ylabel("density" if not point else "prior density")
    method = method_label(fit)
    title = "Pairwise state distances"
    if point:
        title += f" at the point estimate{f' ({method})' if method else ''}"
    ax.set_title(fitted(ax, title))
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return ax


def plot_relabel_traces(
    before: Fit,
    after: Fit,
    param: str | None = None,
    entry: int = 0,
    ax: Sequence[Axes] | None = None,
) -> Sequence[Axes]:
    """Traces of one emission entry for every state, before and after relabelling.

    Parameters
    ----------
    before, after : Fit
        The fit and its relabelled version (:func:`hmm_pyro.relabel`).
    param : str, optional
        Emission parameter (default: the first, e.g. ``"B"`` or ``"mu"``).
    entry : int
        Flat index of the entry within one state's parameter (e.g. the symbol).
    ax : sequence of two matplotlib.axes.Axes, optional
        Axes for the two panels (default: a new figure with two rows).

    Returns
    -------
    sequence of matplotlib.axes.Axes
        The two axes (before, after).
    """
    hmm = before.hmm
    param = hmm.emission.param_names[0] if param is None else param
    if param not in hmm.emission.param_names:
        raise ValueError(f"param: expected one of {list(hmm.emission.param_names)}, got {param!r}")
    if ax is None:
        ax = new_figure(figsize=(8, 5)).subplots(2, 1, sharex=True, sharey=True)
    if len(ax) != 2:
        raise ValueError(f"ax: expected two axes (before, after), got {len(ax)}")
    dim, names = entry_names(before, param)
    colours = state_colours(hmm.num_states)
    for axis, fit, title in zip(ax, (before, after), ("before", "after"), strict=True):
        values = to_numpy(fit.draws())[param]  # (chain, draw, K, ...)
        chains, draws = values.shape[:2]
        flat = values.reshape(chains * draws, hmm.num_states, -1)
        if not 0 <= entry < flat.shape[-1]:
            raise ValueError(f"entry: expected an index in [0, {flat.shape[-1]}), got {entry}")
        for state in range(hmm.num_states):
            axis.plot(flat[:, state, entry], color=colours[state], lw=0.6, label=f"state {state}")
        for boundary in range(1, chains):
            axis.axvline(boundary * draws, color="0.6", linewidth=0.8, linestyle=":")
        shown = param if not dim else f"{param}[{dim} {names[entry]}]"
        axis.set_title(
            fitted(axis, f"{shown}, {title} relabelling ({chains} chains, ending at dotted lines)")
        )
        axis.set_ylabel(param)
    ax[0].legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax[-1].set_xlabel("draw (chains concatenated)")
    return ax
