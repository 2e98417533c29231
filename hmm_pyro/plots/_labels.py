"""What the plots call a fit's numbers, and the names of its emission entries.

A fit with one draw is a point estimate (MAP, EM, ...): it has no interval, and its plots say
"point estimate (MAP, L-BFGS)" rather than "posterior median, 90% interval". Entry and symbol
names come from the coordinates of the fit's ArviZ output, so named symbols (text data) label
the axes when the fit has them.
"""

from __future__ import annotations

import itertools

import numpy as np

from hmm_pyro.fit import Fit

__all__ = [
    "emission_entries",
    "entry_names",
    "estimate_label",
    "is_point",
    "method_label",
    "shown",
    "symbol_names",
    "values_label",
]

_METHODS = {
    "nuts": "NUTS",
    "svi": "SVI",
    "map": "MAP",
    "em": "EM",
    "viterbi_training": "Viterbi training",
    "supervised": "supervised counts",
}
"""Display names of the runners recorded in a fit's ``inference`` attribute."""


def is_point(fit: Fit) -> bool:
    """Whether the fit is one draw (a point estimate), which has no interval."""
    return fit.num_chains * fit.num_draws == 1


def method_label(fit: Fit) -> str:
    """The runner in words, with its optimiser or guide: ``"MAP, L-BFGS"``, ``"SVI, normal guide"``.

    Parameters
    ----------
    fit : Fit
        The fit.

    Returns
    -------
    str
        ``""`` for a fit of unknown origin (``Fit.from_params`` with the default method).
    """
    method = fit.method
    if method in ("point", "unknown"):
        return ""
    name = _METHODS.get(method, method)
    attrs = fit.attrs
    if method == "map" and attrs.get("optimizer"):
        optimiser = {"lbfgs": "L-BFGS", "adam": "Adam"}.get(attrs["optimizer"], attrs["optimizer"])
        return f"{name}, {optimiser}"
    if method == "svi" and attrs.get("guide"):
        return f"{name}, {attrs['guide']} guide"
    return name


def _with_method(text: str, fit: Fit) -> str:
    method = method_label(fit)
    return f"{text} ({method})" if method else text


def estimate_label(fit: Fit, prob: float = 0.9) -> str:
    """What an emission plot's markers and bars are, for this fit.

    ``"point estimate (EM)"`` for one draw; ``"posterior median, 90% interval (NUTS)"`` for
    posterior draws; ``"approximate posterior median, 90% interval (SVI, normal guide)"`` for
    the draws of a variational guide.

    Parameters
    ----------
    fit : Fit
        The fit.
    prob : float
        Mass of the central interval drawn.

    Returns
    -------
    str
    """
    if is_point(fit):
        return _with_method("point estimate", fit)
    interval = f"median, {prob:.0%} interval"
    if fit.method == "svi":
        return _with_method(f"approximate posterior {interval}", fit)
    if fit.method in _METHODS:
        return _with_method(f"posterior {interval}", fit)
    return f"{interval} of the draws"


def values_label(fit: Fit, what: str) -> str:
    """``"<what> at the point estimate (EM)"`` or ``"posterior mean <what> (NUTS)"``."""
    if is_point(fit):
        return _with_method(f"{what} at the point estimate", fit)
    if fit.method == "svi":
        return _with_method(f"approximate posterior mean {what}", fit)
    return _with_method(f"posterior mean {what}", fit)


def shown(name: object) -> str:
    """A name as a label: quoted when blank or padded (a space symbol stays visible)."""
    text = str(name)
    return repr(text) if not text.strip() or text != text.strip() else text


def _coordinate(fit: Fit, param: str, dim: str) -> list[str]:
    array = fit.idata.posterior[param]
    values = array.coords[dim].values if dim in array.coords else np.arange(array.sizes[dim])
    return [shown(value) for value in np.asarray(values).tolist()]


def entry_names(fit: Fit, param: str) -> tuple[str, list[str]]:
    """The dimension and names of the entries of one state's ``param`` (flattened, C order).

    Names are the ArviZ coordinate values (symbol names when the fit has them, else indices),
    quoted when blank or padded (:func:`shown`).

    Parameters
    ----------
    fit : Fit
        The fit.
    param : str
        An emission parameter, e.g. ``"B"`` or ``"mu"``.

    Returns
    -------
    dim : str
        The dimension names joined by ``","`` (``""`` for a scalar per state).
    names : list of str
        One name per entry (``[""]`` for a scalar per state).
    """
    dims = [dim for dim in fit.idata.posterior[param].dims if dim not in ("chain", "draw")][1:]
    if not dims:
        return "", [""]
    values = [_coordinate(fit, param, dim) for dim in dims]
    return ",".join(dims), [",".join(combo) for combo in itertools.product(*values)]


def emission_entries(fit: Fit) -> tuple[str, list[str], np.ndarray]:
    """Every emission entry of every state: axis label, entry names and the draws.

    Parameters
    ----------
    fit : Fit
        The fit.

    Returns
    -------
    axis_label : str
        ``"symbol (B[state, symbol])"`` for one parameter with a dimension, else
        ``"parameter"``.
    names : list of str
        One name per entry: the coordinate (e.g. the symbol) for one parameter with a
        dimension, else ``"mu"``, ``"mu[0]"``, ...
    values : numpy.ndarray
        ``(chain, draw, K, entries)``.
    """
    hmm = fit.hmm
    params = hmm.emission.param_names
    names, columns, axis_label = [], [], "parameter"
    for name in params:
        value = fit.idata.posterior[name].values
        columns.append(value.reshape(*value.shape[:3], -1))
        dim, entries = entry_names(fit, name)
        if len(params) == 1 and dim:
            names += entries
            axis_label = f"{dim} ({name}[state, {dim}])"
        else:
            names += [name if not dim else f"{name}[{entry}]" for entry in entries]
    return axis_label, names, np.concatenate(columns, axis=-1).astype(float)


def symbol_names(fit: Fit) -> list[str] | None:
    """Names of the observed symbols (the ``symbol`` coordinate when it holds text) or ``None``.

    Blank or padded names are quoted (:func:`shown`), so that they stay visible on an axis.

    Parameters
    ----------
    fit : Fit
        The fit.

    Returns
    -------
    list of str or None
    """
    posterior = fit.idata.posterior
    if "symbol" not in posterior.coords:
        return None
    values = np.asarray(posterior.coords["symbol"].values)
    if values.dtype.kind not in "OUS":
        return None
    return [shown(value) for value in values.tolist()]
