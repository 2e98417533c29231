"""Plots of fits (matplotlib, imported lazily): ``hp.plots``.

Each ``plot_*`` function takes ``ax=None`` and returns the axes it drew on (new figures use
constrained layout, so nothing is clipped); :func:`save_fit_plots` and :func:`save_comparison`
save a fit's or a prior comparison's plots as PNG files. Point estimates (one draw) are
labelled as such, and named symbols (the fit's ``symbol`` coordinate) label the axes.

Layer rule: ``plots`` sits just below the CLI. It may import every library layer below it
(``compare``, ``sweep``, the runners, ``diagnostics``, ``fit``, ...); nothing in the library
imports ``plots``. With the CLI, it is the only package that imports matplotlib.
"""

from hmm_pyro.plots.compare import plot_comparison, save_comparison
from hmm_pyro.plots.covariates import plot_covariate_transitions
from hmm_pyro.plots.diagnostics import plot_emissions, plot_relabel_traces, plot_state_distances
from hmm_pyro.plots.fit import plot_losses, plot_state_paths, plot_state_probs, plot_transitions
from hmm_pyro.plots.multilevel import plot_shrinkage
from hmm_pyro.plots.predictive import plot_predictive_checks
from hmm_pyro.plots.save import FIT_PLOT_KINDS, save_fit_plots, skipped_plots
from hmm_pyro.plots.trace import plot_trace

__all__ = [
    "FIT_PLOT_KINDS",
    "plot_comparison",
    "plot_covariate_transitions",
    "plot_emissions",
    "plot_losses",
    "plot_predictive_checks",
    "plot_relabel_traces",
    "plot_shrinkage",
    "plot_state_distances",
    "plot_state_paths",
    "plot_state_probs",
    "plot_trace",
    "plot_transitions",
    "save_comparison",
    "save_fit_plots",
    "skipped_plots",
]
