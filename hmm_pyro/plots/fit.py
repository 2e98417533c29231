"""General plots of a fit (matplotlib, imported lazily). Each takes ``ax=None`` and returns it.

* :func:`plot_state_probs` - one sequence's observations with its smoothed state probabilities.
* :func:`plot_transitions` - posterior mean transition matrix as a heat map.
* :func:`plot_losses` - optimisation histories of SVI, EM or Viterbi-training restarts.

The degeneracy plots (emissions per state, pairwise state distances, relabelling traces) are in
:mod:`hmm_pyro.plots.diagnostics`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hmm_pyro._types import SequencesLike
from hmm_pyro._validation import check_int
from hmm_pyro.fit import Fit
from hmm_pyro.plots._axes import _axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_losses", "plot_state_probs", "plot_transitions"]


def plot_state_probs(
    fit: Fit,
    sequence: int = 0,
    data: SequencesLike | None = None,
    ax: Axes | None = None,
    max_draws: int = 200,
) -> Axes:
    """Observations of one sequence over its smoothed state probabilities.

    The state probabilities ``p(z_t = k | y)`` (averaged over posterior draws) are drawn as a
    stacked area on the right axis; the observations as points on the left axis; the Viterbi
    path under the posterior mean as a step line on the probability axis (scaled to ``[0, 1]``).

    Parameters
    ----------
    fit : Fit
        The fit (relabel it first if its chains disagree on labels).
    sequence : int
        Index of the sequence.
    data : Sequences or array-like, optional
        Sequences to decode (default: the fitted data).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on (default: a new figure).
    max_draws : int
        Posterior draws averaged.

    Returns
    -------
    matplotlib.axes.Axes
        The axes of the observations (the probabilities are on its twin).
    """
    data = fit.data if data is None else fit.hmm.prepare_data(data)
    sequence = check_int("sequence", sequence, minimum=0)
    if sequence >= data.num_sequences:
        raise ValueError(
            f"sequence: expected an index in [0, {data.num_sequences}), got {sequence}"
        )
    subset = data.select([sequence])
    probs = fit.state_probs(subset, max_draws=max_draws)[0].numpy()
    paths, _ = fit.viterbi(subset)
    length = int(subset.lengths[0])
    time = np.arange(length)
    ax = _axes(ax, figsize=(10, 3.5))
    twin = ax.twinx()
    num = fit.hmm.num_states
    twin.stackplot(
        time,
        probs[:length].T,
        colors=[f"C{k % 10}" for k in range(num)],
        alpha=0.25,
        labels=[f"p(state {k})" for k in range(num)],
        step="mid",
    )
    path = paths[0, :length].numpy()
    twin.step(time, (path + 0.5) / num, where="mid", color="k", linewidth=0.8, label="Viterbi")
    twin.set_ylim(0.0, 1.0)
    twin.set_ylabel("state probability; Viterbi state (k + 0.5) / K")
    values = subset.values[0, :length].numpy()
    for d in range(values.shape[1]):
        ax.plot(time, values[:, d], ".", markersize=3, color="0.2" if d == 0 else f"C{d}")
    ax.set_zorder(twin.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.set_xlabel("time")
    ax.set_ylabel("observation")
    ax.set_title(f"Sequence {sequence}: observations and smoothed state probabilities")
    twin.legend(fontsize="x-small", loc="upper right", ncol=min(num + 1, 6))
    return ax


def plot_transitions(fit: Fit, ax: Axes | None = None) -> Axes:
    """Posterior mean transition matrix ``A[i, j] = P(z_t = j | z_{t-1} = i)`` as a heat map.

    Parameters
    ----------
    fit : Fit
        The fit (relabel it first if its chains disagree on labels).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes
    """
    matrix = fit.posterior_mean()["A"].numpy()
    num = matrix.shape[0]
    ax = _axes(ax, figsize=(1.2 * num + 2, 1.0 * num + 1.5))
    image = ax.imshow(matrix, vmin=0.0, vmax=1.0, cmap="Blues")
    for i in range(num):
        for j in range(num):
            colour = "white" if matrix[i, j] > 0.6 else "black"
            ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", color=colour)
    ax.set_xticks(range(num))
    ax.set_yticks(range(num))
    ax.set_xlabel("to state")
    ax.set_ylabel("from state")
    ax.set_title("Posterior mean transition matrix")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax


def plot_losses(fit: Fit, ax: Axes | None = None) -> Axes:
    """Optimisation history of every restart (SVI or MAP loss, or EM/Viterbi-training objective).

    Parameters
    ----------
    fit : Fit
        A fit by :func:`hmm_pyro.fit_svi`, :func:`hmm_pyro.fit_map`, :func:`hmm_pyro.fit_em` or
        :func:`hmm_pyro.fit_viterbi_training`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        If the fit has no optimisation history (e.g. NUTS).
    """
    stats = fit.idata.sample_stats if "sample_stats" in fit.idata.groups() else {}
    if "loss" in stats:
        history = np.asarray(stats["loss"].values)[0, 0]
        label = "loss (negative log posterior)" if fit.method == "map" else "loss (negative ELBO)"
    elif "objective" in stats:
        history, label = np.asarray(stats["objective"].values)[0, 0], "log posterior"
    else:
        raise ValueError(
            f"fit: expected an SVI, MAP, EM or Viterbi-training fit, got {fit.method!r}"
        )
    best = fit.attrs.get("best_restart")
    ax = _axes(ax, figsize=(7, 3.5))
    for restart, values in enumerate(history):
        kept = values[np.isfinite(values)]
        style = {"linewidth": 1.6, "color": "k"} if restart == best else {"linewidth": 0.8}
        ax.plot(np.arange(kept.size), kept, label=f"restart {restart}", **style)
    if "loss" in stats and np.all(history[np.isfinite(history)] > 0):
        ax.set_yscale("log")
    if "loss" not in stats:
        ax.set_xlabel("iteration")
    else:  # L-BFGS records every objective evaluation (line-search trials included)
        ax.set_xlabel("evaluation" if fit.attrs.get("optimizer") == "lbfgs" else "step")
    ax.set_ylabel(label)
    ax.set_title(f"{fit.method} restarts (black: kept)")
    ax.legend(fontsize="x-small")
    return ax
