"""Shrinkage of a multilevel fit: each subject's estimate, pooled and unpooled (matplotlib).

:func:`plot_shrinkage` draws, for one random effect of a :class:`~hmm_pyro.MultilevelHMM`
fit, one panel per entry (the probability of staying in each state for ``A``; each entry of an
emission parameter): per subject, the posterior mean of the subject-level value with its
credible interval (partial pooling), the subject fitted on its own (no pooling,
:func:`hmm_pyro.learning.fit_subjects_separately`, EM from the group-level posterior mean) and
a line joining them, over the group-level value (the typical subject, ``z = 0``). Points drawn
towards the group line show the shrinkage; it is strongest for subjects with little data.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from hmm_pyro._validation import describe
from hmm_pyro.fit import Fit
from hmm_pyro.learning import fit_subjects_separately
from hmm_pyro.multilevel import MultilevelHMM
from hmm_pyro.plots._axes import fitted, new_figure
from hmm_pyro.plots._labels import values_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_shrinkage"]

_MAX_PANELS = 12
"""Entries drawn at most (the first ones in row-major order)."""


def _entries(hmm: MultilevelHMM, name: str) -> list[tuple[int, ...]]:
    """The entries drawn: the diagonal of ``A`` (staying), every entry otherwise."""
    shape = hmm.param_shapes()[name]
    if name == "A":
        return [(k, k) for k in range(hmm.num_states)]
    return list(itertools.product(*(range(size) for size in shape)))[:_MAX_PANELS]


def _entry_title(name: str, entry: tuple[int, ...]) -> str:
    if name == "A":
        return f"P(stay in state {entry[0]})"
    return f"{name}[{', '.join(str(i) for i in entry)}]"


def plot_shrinkage(
    fit: Fit,
    parameter: str | None = None,
    no_pooling: bool = True,
    level: float = 0.9,
    ax: Sequence[Axes] | None = None,
) -> np.ndarray:
    """Subject-level estimates against the group value, with the unpooled estimates beside.

    Parameters
    ----------
    fit : Fit
        A fit of a :class:`~hmm_pyro.MultilevelHMM` (draws in one labelling).
    parameter : str, optional
        One of the model's random effects (default: the first, ``"A"`` unless excluded).
    no_pooling : bool
        Also fit every subject on its own (EM per subject; costs one short EM run each).
    level : float
        Mass of the credible intervals (not drawn for a point estimate).
    ax : sequence of matplotlib.axes.Axes, optional
        One axes per entry drawn (default: a new figure).

    Returns
    -------
    numpy.ndarray
        The axes.

    Raises
    ------
    ValueError
        For a fit of another model, a parameter without random effects, or the wrong number of
        axes.
    """
    hmm = fit.hmm
    if not isinstance(hmm, MultilevelHMM):
        raise ValueError(f"fit: expected a fit of a MultilevelHMM, got one of {hmm!r}")
    name = hmm.random_effects[0] if parameter is None else parameter
    if name not in hmm.random_effects:
        raise ValueError(
            f"parameter: expected one of the random effects {list(hmm.random_effects)}, "
            f"got {describe(name)}"
        )
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level: expected a probability in (0, 1), got {level}")
    fit._check_labels("plot_shrinkage")
    draws = fit.draws()
    flat = {key: value.reshape(-1, *value.shape[2:]) for key, value in draws.items()}
    subject = hmm.subject_params(flat)[name].numpy()  # (draws, S, *shape)
    group = flat[name].numpy()  # (draws, *shape)
    tail = (1.0 - level) / 2.0
    unpooled = None
    if no_pooling:
        start = {key: value.mean(0) for key, value in flat.items()}
        unpooled = fit_subjects_separately(hmm, fit.data, start)[name].numpy()
    entries = _entries(hmm, name)
    if ax is None:
        columns = min(len(entries), 4)
        rows = -(-len(entries) // columns)
        figure = new_figure(figsize=(3.8 * columns, 3.2 * rows))
        axes = np.asarray(figure.subplots(rows, columns, squeeze=False), dtype=object).ravel()
        for extra in axes[len(entries) :]:
            extra.set_visible(False)
        axes = axes[: len(entries)]
    else:
        axes = np.asarray(ax, dtype=object).reshape(-1)
        if axes.size != len(entries):
            raise ValueError(f"ax: expected {len(entries)} axes (one per entry), got {axes.size}")
    positions = np.arange(hmm.num_subjects)
    point = subject.shape[0] == 1
    for axis, entry in zip(axes, entries, strict=True):
        values = subject[(slice(None), slice(None), *entry)]  # (draws, S)
        mean = values.mean(0)
        axis.axhline(group[(slice(None), *entry)].mean(), color="0.3", lw=1, label="group")
        if unpooled is not None:
            alone = unpooled[(slice(None), *entry)]
            axis.plot(positions - 0.15, alone, "o", mfc="none", color="C1", label="no pooling")
            for x, a, b in zip(positions, alone, mean, strict=True):
                axis.plot([x - 0.15, x], [a, b], color="0.6", lw=0.8)
        if point:
            axis.plot(positions, mean, "o", color="C0", label="partial pooling")
        else:
            lower = np.quantile(values, tail, axis=0)
            upper = np.quantile(values, 1.0 - tail, axis=0)
            axis.errorbar(
                positions,
                mean,
                # a skewed posterior can put its mean outside the interval: no bar there
                yerr=[np.clip(mean - lower, 0, None), np.clip(upper - mean, 0, None)],
                fmt="o",
                color="C0",
                capsize=2,
                label=f"partial pooling ({level:.0%})",
            )
        rotation = 90 if len(positions) > 8 else 0
        axis.set_xticks(positions, list(hmm.subject_names), rotation=rotation)
        axis.set_xlabel("subject")
        axis.set_title(_entry_title(name, entry), fontsize="medium")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize="small", loc="best")
    title = values_label(fit, f"subject-level {name}, shrunk towards the group")
    axes[0].figure.suptitle(fitted(axes[0], title, "medium"), fontsize="medium")
    return axes
