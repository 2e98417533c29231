"""Save a fit's plots as PNG files, one per kind: what ``hmm-pyro plot`` writes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hmm_pyro._io import atomic_path
from hmm_pyro._validation import check_int, describe
from hmm_pyro.fit import Fit
from hmm_pyro.plots._axes import first_axes
from hmm_pyro.plots.covariates import plot_covariate_transitions
from hmm_pyro.plots.diagnostics import plot_emissions, plot_state_distances
from hmm_pyro.plots.fit import plot_losses, plot_state_paths, plot_state_probs, plot_transitions
from hmm_pyro.plots.trace import plot_trace

__all__ = ["FIT_PLOT_KINDS", "save_fit_plots", "skipped_plots"]

FIT_PLOT_KINDS = (
    "emissions",
    "distances",
    "states",
    "paths",
    "transitions",
    "covariates",
    "trace",
    "loss",
)
"""The plots :func:`save_fit_plots` draws, in the order it draws them by default."""


def skipped_plots(fit: Fit) -> dict[str, str]:
    """The kinds of plot the fit has nothing to show for, each with the reason.

    ``trace`` needs several draws, ``loss`` an optimisation history (SVI, MAP, EM, Viterbi
    training), ``distances`` a pair of states, ``covariates`` a model with transition
    covariates. :func:`save_fit_plots` leaves these kinds out.

    Parameters
    ----------
    fit : Fit
        The fit.

    Returns
    -------
    dict of str
        ``{kind: reason}``, e.g. ``{"trace": "the fit has a single draw"}``.
    """
    skipped = {}
    if fit.num_chains * fit.num_draws < 2:
        skipped["trace"] = "the fit has a single draw"
    stats = fit.idata.sample_stats if "sample_stats" in fit.idata.groups() else {}
    if "loss" not in stats and "objective" not in stats:
        skipped["loss"] = "the fit has no loss history"
    if fit.hmm.num_states < 2:
        skipped["distances"] = "the model has one state"
    if not fit.hmm.transition_covariates:
        skipped["covariates"] = "the model has no transition covariates"
    return skipped


def save_fit_plots(
    fit: Fit,
    out_dir: str | Path,
    kinds: Sequence[str] | None = None,
    prefix: str = "fit",
    sequence: int = 0,
    dpi: int = 110,
) -> list[Path]:
    """Draw plots of a fit and save each as ``OUT_DIR/PREFIX_KIND.png``.

    Parameters
    ----------
    fit : Fit
        The fit.
    out_dir : str or pathlib.Path
        Folder for the files (created if needed).
    kinds : sequence of str, optional
        Some of :data:`FIT_PLOT_KINDS` (default: all): ``emissions``
        (:func:`~hmm_pyro.plots.plot_emissions`), ``distances``
        (:func:`~hmm_pyro.plots.plot_state_distances`), ``states``
        (:func:`~hmm_pyro.plots.plot_state_probs`), ``paths``
        (:func:`~hmm_pyro.plots.plot_state_paths`), ``transitions``
        (:func:`~hmm_pyro.plots.plot_transitions`), ``covariates``
        (:func:`~hmm_pyro.plots.plot_covariate_transitions`, one file per transition
        covariate: ``PREFIX_covariates_NAME.png``), ``trace``
        (:func:`~hmm_pyro.plots.plot_trace`) and ``loss`` (:func:`~hmm_pyro.plots.plot_losses`).
        The kinds the fit has nothing to show for (:func:`skipped_plots`) are left out: no file
        is an empty plot.
    prefix : str
        Start of every file name.
    sequence : int
        The sequence of the ``states`` plot.
    dpi : int
        Resolution of the PNG files.

    Returns
    -------
    list of pathlib.Path
        The files written, in the order of ``kinds``.

    Raises
    ------
    ValueError
        If a kind is not one of :data:`FIT_PLOT_KINDS`.

    Examples
    --------
    >>> save_fit_plots(fit, "plots", kinds=["emissions", "trace"])  # doctest: +SKIP
    [PosixPath('plots/fit_emissions.png'), PosixPath('plots/fit_trace.png')]
    """
    import matplotlib.pyplot as plt

    if not isinstance(fit, Fit):
        raise TypeError(f"fit: expected a hmm_pyro.Fit, got {describe(fit)}")
    kinds = list(FIT_PLOT_KINDS) if kinds is None else list(kinds)
    for kind in kinds:
        if kind not in FIT_PLOT_KINDS:
            raise ValueError(f"kinds: expected some of {', '.join(FIT_PLOT_KINDS)}, got {kind!r}")
    dpi = check_int("dpi", dpi, minimum=1)
    skipped = skipped_plots(fit)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    drawers = {
        "emissions": lambda: plot_emissions(fit),
        "distances": lambda: plot_state_distances(fit),
        "states": lambda: plot_state_probs(fit, sequence=sequence),
        "paths": lambda: plot_state_paths(fit),
        "transitions": lambda: plot_transitions(fit),
        "covariates": lambda: [
            (name, plot_covariate_transitions(fit, name)) for name in fit.hmm.transition_covariates
        ],
        "trace": lambda: plot_trace(fit),
        "loss": lambda: plot_losses(fit),
    }
    written = []
    for kind in kinds:
        if kind in skipped:
            continue
        drawn = drawers[kind]()
        named = drawn if kind == "covariates" else [("", drawn)]
        for name, axes in named:
            figure = first_axes(axes).figure
            path = out_dir / f"{prefix}_{kind}{'_' + name if name else ''}.png"
            with atomic_path(path) as temporary:
                figure.savefig(temporary, dpi=dpi)
            plt.close(figure)
            written.append(path)
    return written
