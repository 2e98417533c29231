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
from hmm_pyro.plots._axes import _axes, fitted, label_ticks, new_figure, show_message
from hmm_pyro.plots._labels import estimate_label, is_point

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["COMPARISON_PLOT_KINDS", "plot_comparison", "save_comparison"]

COMPARISON_PLOT_KINDS = ("elpd", "separation", "sensitivity", "emissions")
"""The plots of a comparison, in the order of the 2 x 2 grid and of the PNG files."""


def _figure_size(result: PriorComparison, kind: str) -> tuple[float, float]:
    """Inches of one plot's figure: taller with more settings, wider with more entries."""
    settings = len(result.table.index)
    if kind in ("elpd", "separation"):
        return (6.5, min(9.0, 2.0 + 0.5 * settings))
    if kind == "sensitivity":
        return (6.5, 4.0)
    entries = len(result.emissions) // max(settings, 1)
    return (min(18.0, max(8.0, 3.0 + 0.14 * entries)), 4.0)


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
        prior-data conflict, upper left: prior-dominated); point estimates (MAP) have none,
        and the plot says so. ``"emissions"``: posterior median and 90% interval of every
        emission entry (the point for MAP fits), one series per setting (states relabelled
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
        ax = _axes(ax, figsize=_figure_size(result, kind))
        _DRAW[kind](result, ax)
        return ax
    if ax is None:
        ax = new_figure(figsize=(14, 9)).subplots(2, 2)
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

    A plot with nothing to show (the sensitivity of MAP point estimates) says why instead.

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
    label_ticks(ax.yaxis, names, fontsize="medium")
    ax.set_ylim(len(names) - 0.5, -0.5)
    plug_in = ", MAP plug-in" if "plug-in" in result.elpd_method else ""
    ax.set_xlabel(fitted(ax, f"ELPD{plug_in} (+/- 2 SE); red: diagnose raised a flag", "medium"))
    ax.set_title(fitted(ax, f"Predictive fit per prior: {_short_elpd(result.elpd_method)}"))


def _short_elpd(description: str) -> str:
    """The estimator's name without its details: ``"5-fold blocked CV"``, ``"PSIS-LOO ..."``."""
    return description.split(" (")[0].split(":")[0]


def _draw_separation(result: PriorComparison, ax: Axes) -> None:
    """Box plot of the smallest pairwise squared Hellinger distance, per setting."""
    names = list(result.table.index)
    data = [np.asarray(result.min_distance[name], dtype=float) for name in names]
    points = [index for index, values in enumerate(data) if values.size == 1]
    boxes = [index for index, values in enumerate(data) if values.size > 1]
    if boxes:
        ax.boxplot(
            [data[index] for index in boxes],
            positions=boxes,
            orientation="horizontal",
            whis=(5, 95),
            showfliers=False,
        )
    if points:
        ax.plot(
            [float(data[index][0]) for index in points],
            points,
            "o",
            color="k",
            label="point estimate",
        )
    label_ticks(ax.yaxis, names, fontsize="medium")
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.axvline(COLLAPSE_DISTANCE, color="C3", linewidth=1, label=f"collapse {COLLAPSE_DISTANCE:g}")
    ax.set_xlim(0.0, 1.0)
    what = "box: 25-75%, whiskers 5-95%" if boxes else "point estimates"
    ax.set_xlabel(fitted(ax, f"smallest pairwise squared Hellinger distance ({what})", "medium"))
    ax.set_title("How distinct are the states?")
    ax.legend(fontsize="small", loc="lower right")


def _draw_sensitivity(result: PriorComparison, ax: Axes) -> None:
    """Emission-prior against likelihood sensitivity of every emission entry (or why none)."""
    title = "Power-scaling sensitivity of emission entries"
    sensitivity = result.sensitivity
    found = sensitivity[["likelihood", "prior"]].notna().all(axis=1)
    if not found.any():
        reason = (
            f"the fits are point estimates ({result.method})"
            if all(is_point(fit) for fit in result.fits.values())
            else "it could not be computed for any setting (see the notes of the report)"
        )
        show_message(
            ax,
            title,
            f"No sensitivity to show: {reason}. Power-scaling sensitivity needs posterior "
            "draws (method nuts or svi).",
        )
        return
    for colour, name in enumerate(result.table.index):
        rows = sensitivity[(sensitivity["setting"] == name) & found]
        label = name if len(rows) else f"{name} (none)"
        ax.scatter(rows["likelihood"], rows["prior"], s=18, color=f"C{colour % 10}", label=label)
    ax.axhline(PSENS_THRESHOLD, color="0.5", linestyle="--", linewidth=1)
    ax.axvline(PSENS_THRESHOLD, color="0.5", linestyle="--", linewidth=1)
    ax.set_xlabel("likelihood sensitivity")
    ax.set_ylabel("emission-prior sensitivity")
    ax.set_title(fitted(ax, title))
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def _draw_emissions(result: PriorComparison, ax: Axes) -> None:
    """Posterior median and 90% interval (or the point) of every entry, one series per setting."""
    names = list(result.table.index)
    fits = [result.fits[name] for name in names]
    point = all(is_point(fit) for fit in fits)
    first = result.emissions[result.emissions["setting"] == names[0]]
    emission = result.hmm.emission
    labels = [emission.entry_label(row.param, row.state, row.index) for row in first.itertuples()]
    position = np.arange(len(labels))
    width = 0.7 / len(names)
    for colour, name in enumerate(names):
        rows = result.emissions[result.emissions["setting"] == name]
        x = position - 0.35 + (colour + 0.5) * width
        median = rows["median"].to_numpy()
        bars = [median - rows["q05"].to_numpy(), rows["q95"].to_numpy() - median]
        ax.errorbar(
            x,
            median,
            yerr=None if point else bars,
            fmt="o",
            markersize=3,
            capsize=0 if point else 1.5,
            color=f"C{colour % 10}",
            label=name,
        )
    label_ticks(ax.xaxis, labels, fontsize="x-small")
    if emission.entry_axis_label() is not None:
        ax.set_xlabel(emission.entry_axis_label())
    ax.set_ylabel(fitted(ax, estimate_label(fits[0]), "medium", along="y"))
    ax.set_title(fitted(ax, "Emission parameters per prior setting"))
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


_DRAW = {
    "elpd": _draw_elpd,
    "separation": _draw_separation,
    "sensitivity": _draw_sensitivity,
    "emissions": _draw_emissions,
}
