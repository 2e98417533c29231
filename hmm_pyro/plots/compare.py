"""Plots of a prior comparison (matplotlib, imported lazily), and its files with the plots.

:func:`plot_comparison` draws the :class:`~hmm_pyro.compare.PriorComparison` of
:func:`hmm_pyro.compare_priors`: one of :data:`COMPARISON_PLOT_KINDS` (``"elpd"``,
``"separation"``, ``"sensitivity"``, ``"emissions"``), or all four on a 2 x 2 grid.
:func:`save_comparison` writes the comparison's files and the four plots as PNG files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hmm_pyro._io import atomic_path
from hmm_pyro._validation import check_choice, describe
from hmm_pyro.compare import PSENS_THRESHOLD, PriorComparison
from hmm_pyro.diagnostics.thresholds import COLLAPSE_DISTANCE
from hmm_pyro.plots._axes import _axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["COMPARISON_PLOT_KINDS", "plot_comparison", "save_comparison"]

COMPARISON_PLOT_KINDS = ("elpd", "separation", "sensitivity", "emissions")
"""The plots of a comparison, in the order of the 2 x 2 grid and of the PNG files."""

_FIGURE_SIZES = {
    "elpd": (6, 3.5),
    "separation": (6, 3.5),
    "sensitivity": (5, 4),
    "emissions": (8, 3.5),
}


def plot_comparison(result: PriorComparison, kind: str = "all", ax: Any = None) -> Any:
    """Plot a prior comparison: one of its four plots, or all four on a 2 x 2 grid.

    Parameters
    ----------
    result : PriorComparison
        The comparison.
    kind : {"all", "elpd", "separation", "sensitivity", "emissions"}
        ``"elpd"``: the ELPD of each setting with a 2-standard-error bar (higher is better;
        red: ``diagnose`` raised a flag). ``"separation"``: the posterior of the smallest
        pairwise squared Hellinger distance per setting (box 25-75%, whiskers 5-95%), with the
        collapse threshold :data:`~hmm_pyro.diagnostics.thresholds.COLLAPSE_DISTANCE`.
        ``"sensitivity"``: emission-prior against likelihood power-scaling sensitivity of every
        emission entry; dashed lines at :data:`~hmm_pyro.compare.PSENS_THRESHOLD` (upper right:
        prior-data conflict, upper left: prior-dominated). ``"emissions"``: posterior median
        and 90% interval of every emission entry, one series per setting (states relabelled
        and ordered by emission location, so state ``k`` is comparable across settings).
        ``"all"``: the four, in this order, on a 2 x 2 grid.
    ax : matplotlib.axes.Axes, or an array of four for ``"all"``, optional
        Axes to draw on (default: a new figure; 13 x 8 inches for ``"all"``).

    Returns
    -------
    matplotlib.axes.Axes, or numpy.ndarray of four for ``"all"``

    Raises
    ------
    TypeError
        If ``kind`` is not a string (such as axes passed second instead of as ``ax=``).
    ValueError
        For an unknown ``kind``, or ``kind="all"`` with other than four axes.
    """
    kinds = ("all", *COMPARISON_PLOT_KINDS)
    if not isinstance(kind, str):
        raise TypeError(f"kind: expected one of {kinds} (axes go in ax=), got {describe(kind)}")
    check_choice("kind", kind, kinds)
    if kind != "all":
        ax = _axes(ax, figsize=_FIGURE_SIZES[kind])
        _DRAW[kind](result, ax)
        return ax
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(2, 2, figsize=(13, 8), constrained_layout=True)
    axes = np.asarray(ax).ravel()
    if axes.size != 4:
        raise ValueError(f"ax: expected four axes, got {axes.size}")
    for one, name in zip(axes, COMPARISON_PLOT_KINDS, strict=True):
        _DRAW[name](result, one)
    return np.asarray(ax)


def save_comparison(
    result: PriorComparison, out_dir: str | Path, prefix: str = "compare"
) -> dict[str, Path]:
    """Write the table (CSV), the report (JSON, Markdown) and the four plots (PNG), atomically.

    Parameters
    ----------
    result : PriorComparison
        The comparison.
    out_dir : str or pathlib.Path
        Folder (created if needed).
    prefix : str
        Start of every file name: ``{prefix}.csv``, ``{prefix}_elpd.png``, ...

    Returns
    -------
    dict of pathlib.Path
        ``{"csv", "json", "markdown", "elpd", "separation", "sensitivity", "emissions"}``.
    """
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    paths = result.save(out_dir, prefix)
    for kind in COMPARISON_PLOT_KINDS:
        figure = plot_comparison(result, kind).figure
        figure.tight_layout()
        paths[kind] = out_dir / f"{prefix}_{kind}.png"
        with atomic_path(paths[kind]) as temporary:
            figure.savefig(temporary, dpi=110)
        plt.close(figure)
    return paths


def _draw_elpd(result: PriorComparison, ax: Axes) -> None:
    """ELPD of each setting with a 2-standard-error bar; red: ``diagnose`` raised a flag."""
    names = list(result.table.index)
    position = np.arange(len(names))
    table = result.table
    ax.errorbar(
        table["elpd"].to_numpy(),
        position,
        xerr=2 * table["elpd_se"].to_numpy(),
        fmt="o",
        color="k",
        capsize=3,
    )
    best = table["elpd"].max()
    ax.axvline(best, color="0.6", linestyle=":", linewidth=1)
    flagged = [not ok for ok in table["ok"]]
    for index, bad in enumerate(flagged):
        if bad:
            ax.plot(table["elpd"].iloc[index], index, "o", color="C3", markersize=9)
    ax.set_yticks(position)
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    ax.set_xlabel("ELPD (+/- 2 SE); red: diagnose raised a flag")
    ax.set_title(f"Predictive fit per prior ({result.elpd_method.split(' (')[0]})")


def _draw_separation(result: PriorComparison, ax: Axes) -> None:
    """Box plot of the smallest pairwise squared Hellinger distance, per setting."""
    names = list(result.table.index)
    data = [result.min_distance[name] for name in names]
    ax.boxplot(data, orientation="horizontal", whis=(5, 95), showfliers=False)
    ax.set_yticks(np.arange(1, len(names) + 1))
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    ax.axvline(COLLAPSE_DISTANCE, color="C3", linewidth=1, label=f"collapse {COLLAPSE_DISTANCE:g}")
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("smallest pairwise squared Hellinger distance (box: 25-75%, whiskers 5-95%)")
    ax.set_title("How distinct are the states?")
    ax.legend(fontsize="small", loc="lower right")


def _draw_sensitivity(result: PriorComparison, ax: Axes) -> None:
    """Emission-prior against likelihood sensitivity of every emission entry."""
    for colour, name in enumerate(result.table.index):
        rows = result.sensitivity[result.sensitivity["setting"] == name]
        ax.scatter(rows["likelihood"], rows["prior"], s=18, color=f"C{colour % 10}", label=name)
    ax.axhline(PSENS_THRESHOLD, color="0.5", linestyle="--", linewidth=1)
    ax.axvline(PSENS_THRESHOLD, color="0.5", linestyle="--", linewidth=1)
    ax.set_xlabel("likelihood sensitivity")
    ax.set_ylabel("emission-prior sensitivity")
    ax.set_title("Power-scaling sensitivity of emission entries")
    ax.legend(fontsize="small")


def _draw_emissions(result: PriorComparison, ax: Axes) -> None:
    """Posterior median and 90% interval of every emission entry, one series per setting."""
    names = list(result.table.index)
    first = result.emissions[result.emissions["setting"] == names[0]]
    emission = result.hmm.emission
    labels = [emission.entry_label(row.param, row.state, row.index) for row in first.itertuples()]
    position = np.arange(len(labels))
    width = 0.7 / len(names)
    for colour, name in enumerate(names):
        rows = result.emissions[result.emissions["setting"] == name]
        x = position - 0.35 + (colour + 0.5) * width
        median = rows["median"].to_numpy()
        ax.errorbar(
            x,
            median,
            yerr=[median - rows["q05"].to_numpy(), rows["q95"].to_numpy() - median],
            fmt="o",
            markersize=3,
            capsize=1.5,
            color=f"C{colour % 10}",
            label=name,
        )
    ax.set_xticks(position)
    ax.set_xticklabels(labels, fontsize="x-small", rotation=90)
    if emission.entry_axis_label() is not None:
        ax.set_xlabel(emission.entry_axis_label())
    ax.set_ylabel("posterior median, 90% interval")
    ax.set_title("Emission parameters per prior setting")
    ax.legend(fontsize="small")


_DRAW = {
    "elpd": _draw_elpd,
    "separation": _draw_separation,
    "sensitivity": _draw_sensitivity,
    "emissions": _draw_emissions,
}
