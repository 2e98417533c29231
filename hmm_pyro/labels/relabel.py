"""``relabel``: a new ``Fit`` whose draws all share one labelling of the states.

The permutations come from :func:`hmm_pyro.labels.labelling.compute_labelling` (Stephens, ECR as
a cross-check). The result records them, with the largest R-hat of every parameter before and
after, in the attribute ``relabel``, and sets the attribute ``labels`` to ``"aligned"`` so that
:class:`~hmm_pyro.fit.Fit` knows its per-state results are meaningful. ``fit_nuts`` runs the same
alignment (:func:`align_labels`) before it returns.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np
import xarray as xr

from hmm_pyro.fit import ALIGNED, LABELS_ATTR, Fit
from hmm_pyro.fit.inference_data import az, read_attrs
from hmm_pyro.labels.draws import Arrays, to_numpy, to_torch
from hmm_pyro.labels.labelling import (
    RELABEL_METHODS,
    Labelling,
    align,
    compute_labelling,
    log_posterior,
    prior_is_exchangeable,
)
from hmm_pyro.labels.permutations import permute_dataset, permute_params
from hmm_pyro.labels.thresholds import METHOD_DISAGREEMENT
from hmm_pyro.model import HMM

__all__ = ["RelabelWarning", "align_labels", "find_permutations", "max_r_hat", "relabel"]


class RelabelWarning(UserWarning):
    """Relabelling could not give every draw a trustworthy label."""


def max_r_hat(hmm: HMM, posterior: xr.Dataset) -> dict[str, float | None] | None:
    """Largest rank-normalised split R-hat of each parameter; ``None`` below 2 chains of 4 draws.

    An entry constant over all draws has no R-hat (``None`` when every entry of a parameter is
    constant); ArviZ's 0/0 ``RuntimeWarning`` for it is silenced.
    """
    if posterior.sizes["chain"] < 2 or posterior.sizes["draw"] < 4:  # ArviZ's minimum
        return None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
        values = az.rhat(posterior[list(hmm.param_names)])
    result: dict[str, float | None] = {}
    for name in hmm.param_names:
        finite = np.asarray(values[name].values, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        result[name] = float(finite.max()) if finite.size else None
    return result


def _align_restarts(hmm: HMM, attrs: dict[str, Any], point: Arrays) -> dict[str, Any]:
    """Permute each SVI restart's parameters into the kept point's labelling."""
    restarts = attrs.get("restart_params")
    if not restarts:
        return {}
    arrays = {name: np.asarray(restarts[name], dtype=np.float64) for name in hmm.param_names}
    perms = align(hmm, point, arrays)
    aligned = permute_params(hmm, arrays, perms)
    return {
        "restart_params": {name: value.tolist() for name, value in aligned.items()},
        "restart_permutations": perms.tolist(),
    }


def find_permutations(fit: Fit, method: str = "stephens", cross_check: bool = True) -> Labelling:
    """Per-draw permutations that bring every draw of ``fit`` into one labelling.

    :func:`relabel` applies them; this returns them (e.g. to compare with known labels).

    Parameters
    ----------
    fit : Fit
        Any fit.
    method : {"stephens", "ecr", "chains"}
        See :func:`relabel`.
    cross_check : bool
        Also run the other of Stephens/ECR and record the agreement.

    Returns
    -------
    Labelling
        ``perms`` ``(chain, draw, K)``: ``perms[c, s, j]`` is the old label that becomes
        label ``j`` in draw ``s`` of chain ``c``.
    """
    if not isinstance(fit, Fit):
        raise TypeError(f"fit: expected a hmm_pyro Fit, got {type(fit).__name__}")
    if method not in RELABEL_METHODS:
        raise ValueError(f"method: expected one of {RELABEL_METHODS}, got {method!r}")
    draws = to_numpy(fit.draws())
    return compute_labelling(
        fit.hmm, fit.data, draws, log_posterior(fit), method, cross_check=cross_check
    )


def _relabel(fit: Fit, method: str, cross_check: bool, stacklevel: int) -> Fit:
    """:func:`relabel`, its warnings pointing ``stacklevel`` frames up."""
    labelling = find_permutations(fit, method, cross_check=cross_check)
    hmm = fit.hmm
    perms = labelling.perms
    idata = fit.idata.copy()
    idata.posterior = permute_dataset(fit.idata.posterior, perms)
    exchangeable = prior_is_exchangeable(hmm)
    if not exchangeable:
        relabelled = {name: idata.posterior[name].values for name in hmm.param_names}
        terms = hmm.log_prior_terms(to_torch(hmm, relabelled))
        for name, value in terms.items():
            idata.log_prior[name] = idata.log_prior[name].copy(data=value.numpy())
    if "posterior_predictive" in idata.groups():
        del idata["posterior_predictive"]
    attrs = read_attrs(fit.idata)
    point = {name: idata.posterior[name].values[0, 0] for name in hmm.emission.param_names}
    chain_perms = [np.unique(chain, axis=0).tolist() for chain in perms]
    record = {
        "method": labelling.method,
        "sweeps": labelling.sweeps,
        "agreement": labelling.agreement,
        "collapsed_groups": [list(group) for group in labelling.groups],
        "permutations_per_chain": chain_perms,
        "exchangeable_prior": exchangeable,
        "raw_r_hat": max_r_hat(hmm, fit.idata.posterior),
        "r_hat": max_r_hat(hmm, idata.posterior),
        "previous": attrs.get("relabel"),
    }
    extra = {"relabel": record, LABELS_ATTR: ALIGNED, **_align_restarts(hmm, attrs, point)}
    encoded = {key: json.dumps(value) for key, value in extra.items()}
    for group in idata.groups():
        idata[group].attrs.update(encoded)
    if labelling.groups:
        warnings.warn(
            f"relabel: states {labelling.groups} are collapsed (indistinguishable emission "
            "laws): they are not aligned but keep their original order inside each group, and "
            "their per-state summaries are not meaningful (fit fewer states)",
            RelabelWarning,
            stacklevel=stacklevel,
        )
    if not labelling.identifiable:
        warnings.warn(
            f"relabel: Stephens and ECR agree on only {labelling.agreement:.1%} of the draws "
            f"(more than {METHOD_DISAGREEMENT:.0%} disagree): the state labels are not "
            "identifiable from these data; per-state summaries are unreliable",
            RelabelWarning,
            stacklevel=stacklevel,
        )
    return Fit(hmm, idata)


def relabel(fit: Fit, method: str = "stephens", cross_check: bool = True) -> Fit:
    """Return a new ``Fit`` whose draws are permuted into one common labelling.

    Parameters
    ----------
    fit : Fit
        Any fit (NUTS chains, SVI guide draws, a point estimate).
    method : {"stephens", "ecr", "chains"}
        ``"stephens"`` (default): Stephens' (2000) KL relabelling on the forward-backward
        state probabilities, pooled over chains, each assignment by
        ``scipy.optimize.linear_sum_assignment``. ``"ecr"``: iterative ECR on the most likely
        state at each time (Papastamoulis & Iliopoulos 2010). ``"chains"``: one permutation per
        chain, aligning each chain's mean emission law to the highest-posterior chain's (for
        chains without internal switches; SVI restarts are always aligned this way).
    cross_check : bool
        Run the other of Stephens/ECR too and warn when they disagree on more than 5% of draws.

    Returns
    -------
    Fit
        Posterior permuted consistently (``pi`` entries, rows and columns of ``A``, emission
        rows, every variable with a ``state`` or ``state_to`` dimension). The log likelihood
        is label-invariant and kept; the log prior is recomputed when the prior is not
        exchangeable; ``posterior_predictive`` (state paths of random draws) is dropped. The
        attribute ``relabel`` records the method, permutations per chain, the agreement, the
        collapsed groups and the largest R-hat of each parameter before (``raw_r_hat``) and
        after (``r_hat``); the attribute ``labels`` becomes ``"aligned"``. Relabelling an
        aligned fit again leaves its draws as they are.

    Warns
    -----
    RelabelWarning
        When Stephens and ECR disagree on more than 5% of draws (labels not identifiable), or
        when states are collapsed (their order inside the group is kept, not inferred).

    Examples
    --------
    >>> relabelled = hmm_pyro.relabel(fit)  # doctest: +SKIP
    >>> hmm_pyro.diagnose(relabelled).ok  # doctest: +SKIP
    """
    return _relabel(fit, method, cross_check, stacklevel=3)


def align_labels(fit: Fit) -> Fit:
    """The runners' default: :func:`relabel` with Stephens and the ECR cross-check.

    For a runner to call on the fit it is about to return; the warnings point at the runner's
    caller.
    """
    return _relabel(fit, "stephens", cross_check=True, stacklevel=4)
