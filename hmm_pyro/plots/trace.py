"""Trace plot of a fit with draws (matplotlib, imported lazily): :func:`plot_trace`.

One row for the log likelihood of the data (label-invariant: chains that agree here sample the
same posterior, whatever their labels) and one row per state for its emission entries (the
most variable ones); every chain has its own colour, named in the legend, so chains that
disagree stand out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from hmm_pyro._validation import check_int
from hmm_pyro.fit import Fit
from hmm_pyro.plots._axes import fitted, new_figure
from hmm_pyro.plots._labels import emission_entries, method_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_trace"]

LINESTYLES = ("-", "--", ":", "-.")
"""Line styles of the entries drawn per state (so at most four entries per state)."""


def _outside_legend(ax: Axes, **options: object) -> None:
    ax.legend(
        loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, fontsize="small", **options
    )


def plot_trace(
    fit: Fit,
    max_entries: int = 3,
    ax: Sequence[Axes] | None = None,
) -> np.ndarray:
    """Traces of the log likelihood and of each state's emission entries, one colour per chain.

    Parameters
    ----------
    fit : Fit
        A fit with several draws (NUTS chains, or the draws of an SVI guide).
    max_entries : int
        Emission entries drawn per state, at most 4 (one line style each): those with the
        largest posterior standard deviation when the state has more (e.g. 3 of 27 symbols,
        or of ``mu`` and ``sigma``).
    ax : sequence of matplotlib.axes.Axes, optional
        ``1 + num_states`` axes: the log likelihood, then one per state (default: a new
        figure).

    Returns
    -------
    numpy.ndarray
        The axes (log likelihood first).

    Raises
    ------
    ValueError
        For a fit with one draw (a point estimate has no trace), ``max_entries`` outside 1-4,
        or the wrong number of axes.
    """
    total = fit.num_chains * fit.num_draws
    method = method_label(fit)
    which = f" ({method})" if method else ""
    if total < 2:
        raise ValueError(f"fit: a trace needs several draws, got a point estimate{which}")
    max_entries = check_int("max_entries", max_entries, minimum=1)
    if max_entries > len(LINESTYLES):
        raise ValueError(f"max_entries: expected at most {len(LINESTYLES)}, got {max_entries}")
    num = fit.hmm.num_states
    if ax is None:
        figure = new_figure(figsize=(9, 1.5 * (num + 1) + 0.8))
        ax = figure.subplots(num + 1, 1, sharex=True, squeeze=False)[:, 0]
    axes = np.ravel(np.asarray(ax, dtype=object))
    if axes.size != num + 1:
        raise ValueError(
            f"ax: expected {num + 1} axes (log likelihood, then each state), got {axes.size}"
        )

    chains, draws = fit.num_chains, fit.num_draws
    draw = np.arange(draws)
    log_lik = np.asarray(fit.idata.log_likelihood["y"].values).reshape(chains, draws, -1)
    for chain in range(chains):
        axes[0].plot(
            draw, log_lik[chain].sum(-1), color=f"C{chain % 10}", lw=0.8, label=f"chain {chain}"
        )
    axes[0].set_ylabel("log likelihood")
    axes[0].set_title(
        fitted(axes[0], f"Trace{which}: log likelihood of the data, then emissions per state")
    )
    _outside_legend(axes[0])

    axis_label, names, values = emission_entries(fit)  # (chain, draw, K, entries)
    heading = axis_label.split(" (")[0]
    for state in range(num):
        axis = axes[state + 1]
        spread = values[:, :, state].reshape(total, -1).std(axis=0)
        shown = np.sort(np.argsort(-spread, kind="stable")[:max_entries])
        for style, entry in zip(LINESTYLES, shown, strict=False):
            for chain in range(chains):
                axis.plot(
                    draw,
                    values[chain, :, state, entry],
                    color=f"C{chain % 10}",
                    lw=0.7,
                    linestyle=style,
                )
            axis.plot([], [], color="0.3", linestyle=style, label=names[entry])
        axis.set_ylabel(f"state {state}")
        title = heading
        if len(names) > shown.size:
            title = f"{heading}: {shown.size} of {len(names)},\nlargest sd"
        _outside_legend(axis, title=title, handlelength=2.5)
    axes[-1].set_xlabel("draw" if chains > 1 or fit.method == "nuts" else "draw (independent)")
    return axes
