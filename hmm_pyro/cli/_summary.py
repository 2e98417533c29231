"""What ``hmm-pyro fit`` prints after a fit: the estimates, compactly, and the fit statistics.

Estimates (a point, or posterior means of draws) are printed as small tables labelled with the
fit's ArviZ coordinates (so named symbols show by name). Large ones are summarised instead of
dumped: at most :data:`MAX_ROWS` states are shown, and a probability row wider than
:data:`MAX_COLUMNS` shows its :data:`TOP_ENTRIES` largest entries (a text model's top symbols
per state); other wide rows show their first columns. The file holds everything.

The statistics come from :func:`hmm_pyro.fit.fit_statistics` (one route with ``sweep``): log
likelihood, log posterior, free parameters, AIC and BIC (point estimates), and the elapsed time,
after a line naming the method and its recorded settings.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from hmm_pyro.fit import Fit, fit_statistics

__all__ = [
    "MAX_COLUMNS",
    "MAX_ROWS",
    "TOP_ENTRIES",
    "convergence_lines",
    "estimate_lines",
    "summary_lines",
]

MAX_ROWS = 12
"""States shown per parameter; the rest are counted."""
MAX_COLUMNS = 10
"""Widest row printed in full."""
TOP_ENTRIES = 5
"""Entries shown of a probability row wider than :data:`MAX_COLUMNS`."""
_SUMMARY_ROWS = 40
"""Largest ArviZ summary table printed in full (draws)."""

_UNSHOWN_ATTRS = {
    "created_at",
    "arviz_version",
    "hmm_pyro_version",
    "inference_library",
    "inference",
    "model",
    "sampling_time",
    "labels",
    "parallel",
    "estimated_sequential_seconds",
    "data_subset",
}
"""Attributes that are not settings of the run (metadata, timings, outcomes)."""


def _number(value: float) -> str:
    """A parameter value in 8 characters or so."""
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3g}"
    return f"{value:.4f}"


def _table(rows: list[list[str]]) -> list[str]:
    """Right-aligned columns, two spaces apart, indented."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]


def _labels(fit: Fit, name: str, axis: int, size: int) -> list[str]:
    """Coordinate labels of ``axis`` of parameter ``name``: numbers, or names quoted."""
    variable = fit.idata.posterior[name]
    dims = variable.dims[2:]  # after chain, draw
    if axis < len(dims) and dims[axis] in variable.coords:
        labels = [str(label) for label in variable.coords[dims[axis]].values]
    else:
        labels = [str(index) for index in range(size)]
    return [label if label.isdigit() else repr(label) for label in labels]


def _matrix_lines(values: np.ndarray, columns: Sequence[str], probabilities: bool) -> list[str]:
    """A ``(K, C)`` parameter: a table, or its top entries / first columns when wide."""
    count, width = values.shape
    shown = min(count, MAX_ROWS)
    lines: list[str] = []
    if width <= MAX_COLUMNS:
        rows = [["state", *columns]]
        rows += [[str(k)] + [_number(v) for v in values[k]] for k in range(shown)]
        lines += _table(rows)
    elif probabilities:
        lines.append(f"  {width} entries per state; the {TOP_ENTRIES} largest:")
        rows = []
        for k in range(shown):
            top = np.argsort(-values[k], kind="stable")[:TOP_ENTRIES]
            rows.append([f"state {k}:", *(f"{columns[i]} {_number(values[k, i])}" for i in top)])
        lines += _table(rows)
    else:
        first = MAX_COLUMNS - 2
        rows = [["state", *columns[:first], "..."]]
        rows += [
            [str(k), *(_number(v) for v in values[k, :first]), f"({width - first} more)"]
            for k in range(shown)
        ]
        lines += _table(rows)
    if count > shown:
        lines.append(f"  ... {count - shown} more states")
    return lines


def estimate_lines(fit: Fit, params: dict[str, Any]) -> list[str]:
    """Lines showing each parameter of ``params`` (one draw's shapes), compactly.

    Parameters
    ----------
    fit : Fit
        The fit (for the coordinates and which parameters are probability rows).
    params : dict of torch.Tensor
        A point estimate or the posterior means.

    Returns
    -------
    list of str
    """
    simplex = set(fit.hmm.simplex_params)
    lines = []
    for name in fit.hmm.param_names:
        values = np.asarray(params[name].detach().cpu().numpy(), dtype=np.float64)
        lines.append(f"{name} =")
        if values.ndim == 1:
            values = values[:, None]
            columns = [name]
            if name in simplex:  # pi: a probability per state, shown as one row
                values = values.T
                columns = _labels(fit, name, 0, values.shape[1])
                lines += _vector_lines(values[0], columns)
                continue
        elif values.ndim == 2:
            columns = _labels(fit, name, 1, values.shape[1])
        elif _is_pairwise(fit, name):
            lines += _pair_lines(fit, name, values)
            continue
        else:
            lines.append(
                f"  array of shape {values.shape}: min {_number(values.min())}, "
                f"max {_number(values.max())}"
            )
            continue
        lines += _matrix_lines(values, columns, name in simplex)
    return lines


def _is_pairwise(fit: Fit, name: str) -> bool:
    """A ``(K, K, C)`` parameter of state pairs: transition coefficients per term."""
    dims = fit.idata.posterior[name].dims[2:]
    return len(dims) == 3 and dims[:2] == ("state", "state_to")


def _pair_lines(fit: Fit, name: str, values: np.ndarray) -> list[str]:
    """One row per pair ``i -> j`` (pairs of all-zero rows, references, left out)."""
    count = values.shape[0]
    columns = _labels(fit, name, 2, values.shape[2])
    pairs = [(i, j) for i in range(count) for j in range(count) if values[i, j].any()]
    rows = [["from -> to", *columns]]
    rows += [[f"{i} -> {j}", *(_number(v) for v in values[i, j])] for i, j in pairs[:MAX_ROWS]]
    lines = _table(rows)
    if len(pairs) > MAX_ROWS:
        lines.append(f"  ... {len(pairs) - MAX_ROWS} more pairs")
    return lines


def _vector_lines(values: np.ndarray, labels: Sequence[str]) -> list[str]:
    """A probability vector (``pi``): in full when short, else its largest entries."""
    if len(values) <= MAX_COLUMNS:
        return _table([["state", *labels], ["", *(_number(v) for v in values)]])
    top = np.argsort(-values, kind="stable")[:TOP_ENTRIES]
    entries = ", ".join(f"state {labels[i]} {_number(values[i])}" for i in top)
    return [f"  {len(values)} states; the {TOP_ENTRIES} largest: {entries}"]


def _settings(attrs: dict[str, Any]) -> str:
    """The run's recorded settings (scalar attributes) and how its restarts converged."""
    parts = [
        f"{key}={value}"
        for key, value in attrs.items()
        if key not in _UNSHOWN_ATTRS
        and isinstance(value, (str, int, float, bool))
        and key != "best_restart"
    ]
    converged = attrs.get("converged")
    if isinstance(converged, list) and converged:
        parts.append(f"converged {sum(bool(item) for item in converged)}/{len(converged)}")
        if "best_restart" in attrs:
            parts.append(f"best restart {attrs['best_restart']}")
    return ", ".join(parts)


def summary_lines(fit: Fit, seconds: float) -> list[str]:
    """The fit statistics block: method and settings, likelihood, prior, size, AIC, BIC, time.

    Parameters
    ----------
    fit : Fit
        The fit.
    seconds : float
        Elapsed wall-clock time of the fit.

    Returns
    -------
    list of str
    """
    stats = fit_statistics(fit)
    attrs = fit.attrs
    draws = fit.num_chains * fit.num_draws
    what = "point estimate" if draws == 1 else f"{fit.num_chains} x {fit.num_draws} draws"
    settings = _settings(attrs)
    lines = [f"fit: {fit.method} ({what}){': ' if settings else ''}{settings}"]
    rows = []
    covered = ""
    if stats.sequences < stats.num_sequences:
        covered = f" (the first {stats.sequences} of {stats.num_sequences} sequences)"
    if draws == 1:
        rows.append(("log likelihood", f"{stats.log_likelihood:.4f}{covered}"))
    else:
        spread = f" (mean over draws; sd {stats.log_likelihood_sd:.2f}){covered}"
        rows.append(("log likelihood", f"{stats.log_likelihood:.4f}{spread}"))
    if stats.log_posterior is None:
        rows.append(("log posterior", "none: maximum likelihood (no prior)"))
    else:
        mean = "" if draws == 1 else " (mean over draws)"
        rows.append(("log posterior", f"{stats.log_posterior:.4f}{mean}, unnormalised"))
    tied = " (pi: stationary distribution of A)" if attrs.get("initial") == "stationary" else ""
    rows.append(("free parameters", f"{stats.num_params}{tied}"))
    if stats.aic is not None:
        rows.append(("AIC", f"{stats.aic:.4f}"))
    if stats.bic is not None:
        rows.append(("BIC", f"{stats.bic:.4f} (n = {stats.num_observed} observed steps)"))
    rows.append(("elapsed", f"{seconds:.1f} s"))
    width = max(len(label) for label, _ in rows)
    return lines + [f"{label.ljust(width)}  {value}" for label, value in rows]


def convergence_lines(fit: Fit) -> list[str]:
    """For draws: the ArviZ summary of the emission parameters (when small) and its extremes."""
    names = list(fit.hmm.emission.param_names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the estimates' lines already warned about labels
        table = fit.summary(var_names=names, kind="all")
    lines = table.to_string().splitlines() if len(table) <= _SUMMARY_ROWS else []
    if fit.num_chains > 1 and "r_hat" in table and table["r_hat"].notna().any():
        worst = table["r_hat"].idxmax()
        fewest = table["ess_bulk"].idxmin()
        lines.append(
            f"R-hat max {table.loc[worst, 'r_hat']:.3f} ({worst}); ESS bulk min "
            f"{table.loc[fewest, 'ess_bulk']:.0f} ({fewest}) over {len(table)} emission entries"
        )
    elif len(table) > _SUMMARY_ROWS:
        lines.append(f"({len(table)} emission entries; 'hmm-pyro diagnose' checks them)")
    return lines
