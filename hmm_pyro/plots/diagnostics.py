"""Plots for degeneracy checks (matplotlib, imported lazily). Each takes ``ax`` and returns it.

* :func:`plot_emissions` — emission parameters per state with central credible intervals.
* :func:`plot_state_distances` — posterior of each pairwise squared Hellinger distance, with
  the prior's smallest pairwise distance and the collapse threshold.
* :func:`plot_relabel_traces` — traces of one emission entry per state before and after
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
from hmm_pyro.plots._axes import _axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_emissions", "plot_relabel_traces", "plot_state_distances"]


def _colour(state: int) -> str:
    return f"C{state % 10}"


def _emission_entries(fit: Fit) -> tuple[list[str], np.ndarray]:
    """Labels and ``(S, K, entries)`` draws of every emission entry (chains pooled)."""
    hmm = fit.hmm
    draws = to_numpy(fit.draws())
    labels, columns = [], []
    for name in hmm.emission.param_names:
        value = draws[name]
        value = value.reshape(-1, hmm.num_states, int(np.prod(value.shape[3:], dtype=int)))
        width = value.shape[-1]
        variable = fit.idata.posterior[name]  # its last coordinate names entries (symbols)
        entries = variable[variable.dims[-1]].values if variable.ndim == 4 else range(width)
        labels += [name] if width == 1 else [f"{name}[{i}]" for i in entries]
        columns.append(value)
    return labels, np.concatenate(columns, axis=-1)


def plot_emissions(fit: Fit, ax: Axes | None = None, prob: float = 0.9) -> Axes:
    """Posterior median and central ``prob`` interval of every emission entry, per state.

    Parameters
    ----------
    fit : Fit
        Preferably relabelled (:func:`hmm_pyro.relabel`): otherwise states may be mixed.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on (default: a new figure).
    prob : float
        Mass of the central credible interval.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob: expected a probability in (0, 1), got {prob}")
    ax = _axes(ax, figsize=(7, 3.5))
    labels, values = _emission_entries(fit)
    num = fit.hmm.num_states
    lower, median, upper = np.quantile(values, [(1 - prob) / 2, 0.5, (1 + prob) / 2], axis=0)
    positions = np.arange(len(labels))
    width = 0.6 / max(num, 1)
    for state in range(num):
        x = positions - 0.3 + (state + 0.5) * width
        ax.errorbar(
            x,
            median[state],
            yerr=[median[state] - lower[state], upper[state] - median[state]],
            fmt="o",
            color=_colour(state),
            capsize=2,
            label=f"state {state}",
        )
    ax.set_xticks(positions)
    ax.set_xticklabels(labels)
    ax.set_ylabel(f"posterior median, {prob:.0%} interval")
    ax.set_title("Emission parameters per state")
    ax.legend(fontsize="small")
    return ax


def plot_state_distances(
    fit: Fit, ax: Axes | None = None, distance: float = COLLAPSE_DISTANCE, bins: int = 40
) -> Axes:
    """Posterior of each pairwise squared Hellinger distance between emission laws.

    The prior's smallest pairwise distance (dashed) shows how alike the prior alone makes the
    states; the vertical line is the collapse threshold.

    Parameters
    ----------
    fit : Fit
        The fit (pairs are labelled as in the fit; relabel first to compare pairs).
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
    ax = _axes(ax, figsize=(6, 3.5))
    hmm = fit.hmm
    num = hmm.num_states
    edges = np.linspace(0.0, 1.0, bins + 1)
    posterior = emission_distances(hmm, to_numpy(fit.draws())).reshape(-1, num, num)
    colour = 0
    for i in range(num):
        for j in range(i + 1, num):
            ax.hist(
                posterior[:, i, j],
                bins=edges,
                density=True,
                histtype="step",
                color=_colour(colour),
                label=f"states {i}-{j}",
            )
            colour += 1
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
    ax.set_xlabel("squared Hellinger distance between emission laws")
    ax.set_ylabel("density")
    ax.set_title("Pairwise state distances")
    ax.legend(fontsize="small")
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
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(2, 1, figsize=(8, 5), sharex=True, sharey=True)
    if len(ax) != 2:
        raise ValueError(f"ax: expected two axes (before, after), got {len(ax)}")
    for axis, fit, title in zip(ax, (before, after), ("before", "after"), strict=True):
        values = to_numpy(fit.draws())[param]  # (chain, draw, K, ...)
        chains, draws = values.shape[:2]
        flat = values.reshape(chains * draws, hmm.num_states, -1)
        if not 0 <= entry < flat.shape[-1]:
            raise ValueError(f"entry: expected an index in [0, {flat.shape[-1]}), got {entry}")
        for state in range(hmm.num_states):
            axis.plot(flat[:, state, entry], color=_colour(state), lw=0.6, label=f"state {state}")
        for boundary in range(1, chains):
            axis.axvline(boundary * draws, color="0.6", linewidth=0.8, linestyle=":")
        axis.set_title(f"{param} entry {entry}, {title} relabelling (chains end at dotted lines)")
        axis.set_ylabel(param)
    ax[0].legend(fontsize="small", loc="upper right")
    ax[-1].set_xlabel("draw (chains concatenated)")
    return ax
