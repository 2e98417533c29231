"""Posterior fits compared with fewer states: PSIS-LOO over sequences or over time blocks.

For a fit with posterior draws (NUTS, SVI), the model with fewer states is refitted by the same
runner with the fit's own settings (:func:`posterior_refit`), started at the point estimate of
the smaller model (:mod:`hmm_pyro.diagnostics.refits`), and both are scored by their expected
log predictive density:

- with at least :data:`~hmm_pyro.diagnostics.folds.MIN_LOO_SEQUENCES` sequences, PSIS-LOO over
  whole sequences (the per-sequence log likelihood of each draw), as ``compare_priors`` does;
- otherwise (one long sequence, or a few), PSIS leave-one-block-out: the data are cut into
  contiguous time blocks (:func:`~hmm_pyro.diagnostics.folds.make_folds`, the blocks of
  ``compare_priors``' blocked cross-validation) and the pointwise term of block ``b`` is
  ``log p(y_b | y_rest, theta) = log p(y | theta) - log p(y_rest | theta)`` (block ``b``
  marginalised as missing). Because ``p(y_b | y_rest) = 1 / E[1 / p(y_b | y_rest, theta) | y]``,
  Pareto-smoothed importance sampling estimates the blocked cross-validation without refits
  (the leave-one-out identity holds for any factorisation ``p(y) = p(y_rest) p(y_b | y_rest)``;
  Buerkner, Gabry & Vehtari 2021 use it for non-factorised models).

Pareto ``k`` above :data:`~hmm_pyro.diagnostics.folds.HIGH_PARETO_K` marks a unit whose
estimate is unreliable; the caller then falls back to the point-estimate comparison.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from hmm_pyro._types import Params
from hmm_pyro.diagnostics.folds import MIN_LOO_SEQUENCES, make_folds
from hmm_pyro.fit import Fit
from hmm_pyro.fit.inference_data import az
from hmm_pyro.inference import fit_nuts, fit_svi
from hmm_pyro.model import HMM

__all__ = [
    "BLOCKS",
    "MAX_ELPD_DRAWS",
    "POSTERIOR_RUNNERS",
    "interior",
    "pointwise_elpd",
    "posterior_refit",
]

BLOCKS = 20
"""Time blocks per sequence of PSIS leave-one-block-out (fewer for shorter sequences). Leaving
out a twentieth of the data moves the posterior little enough for stable importance weights
(with tenths, Pareto k exceeded 0.7 in about half of our 300-step checks), while a block of
15 or more steps still spans several dwell times."""
MAX_ELPD_DRAWS = 1000
"""Posterior draws (evenly thinned) whose pointwise log densities enter PSIS."""
POSTERIOR_RUNNERS = ("nuts", "svi")
"""Fit methods whose smaller model is refitted by the same runner."""
_FLOOR = 1e-6
"""Weight of the uniform distribution mixed into probability rows of a start (samplers and
guides need finite unconstrained coordinates; EM solutions can hold exact zeros)."""


def interior(hmm: HMM, params: Params) -> Params:
    """``params`` with every probability row mixed with a little of the uniform distribution."""
    result = {}
    for name, value in params.items():
        value = torch.as_tensor(value, dtype=hmm.dtype)
        if name in hmm.simplex_params:
            value = (1.0 - _FLOOR) * value + _FLOOR / value.shape[-1]
        result[name] = value
    return result


def _thinned(fit: Fit) -> Params:
    return fit.flat_draws(MAX_ELPD_DRAWS)


def pointwise_elpd(fit: Fit) -> tuple[np.ndarray, np.ndarray, str]:
    """PSIS-LOO pointwise ELPD of a posterior fit: over sequences, or over time blocks.

    Parameters
    ----------
    fit : Fit
        A fit with several posterior draws.

    Returns
    -------
    numpy.ndarray
        ``(units,)`` pointwise ELPD.
    numpy.ndarray
        ``(units,)`` Pareto ``k`` of each unit.
    str
        How the units were made, in words.
    """
    hmm, data = fit.hmm, fit.data
    draws = _thinned(fit)
    if data.num_sequences >= MIN_LOO_SEQUENCES:
        log_lik = hmm.log_likelihood(draws, data).numpy()
        text = "PSIS-LOO over sequences"
    else:
        count = max(2, min(BLOCKS, int(data.lengths.min())))
        split = make_folds(data, count)
        full = hmm.log_likelihood(draws, data).numpy()
        log_lik = np.empty((full.shape[0], split.num_units))
        for fold in range(count):
            rest = split.sequences(fold, "train")
            log_lik[:, split.units[fold]] = full - hmm.log_likelihood(draws, rest).numpy()
        text = f"PSIS leave-one-block-out ({count} contiguous time blocks per sequence)"
    smoothed, pareto_k = az.psislw(-log_lik.T)  # (units, draws): normalised log weights
    log_weights = np.asarray(smoothed).T
    peak = (log_weights + log_lik).max(0)
    elpd = peak + np.log(np.exp(log_weights + log_lik - peak).sum(0))
    return elpd, np.asarray(pareto_k, dtype=float), text


def _settings(fit: Fit) -> dict[str, Any] | None:
    """The runner settings recorded on ``fit``, or ``None`` if they are not all there."""
    attrs = fit.attrs
    if fit.method == "nuts":
        names = ("num_chains", "num_warmup", "num_draws", "target_accept", "max_tree_depth")
        if not all(name in attrs for name in names):
            return None
        return {
            "chains": int(attrs["num_chains"]),
            "warmup": int(attrs["num_warmup"]),
            "draws": int(attrs["num_draws"]),
            "target_accept": float(attrs["target_accept"]),
            "max_tree_depth": int(attrs["max_tree_depth"]),
            # fits saved before the option existed ran with a diagonal mass matrix
            "dense_mass": bool(attrs.get("dense_mass", False)),
            "parallel": False,
            "relabel": False,
        }
    if fit.method == "svi":
        names = ("guide", "steps", "lr", "tol")
        if not all(name in attrs for name in names):
            return None
        return {
            "guide": str(attrs["guide"]),
            "steps": int(attrs["steps"]),
            "lr": float(attrs["lr"]),
            "tol": float(attrs["tol"]),
            "restarts": 1,
            "num_draws": min(fit.num_draws, MAX_ELPD_DRAWS),
        }
    return None


def can_refit(fit: Fit) -> bool:
    """Whether :func:`posterior_refit` can refit ``fit``'s smaller model by its own runner."""
    return fit.method in POSTERIOR_RUNNERS and _settings(fit) is not None


def posterior_refit(fit: Fit, hmm: HMM, start: Params) -> Fit:
    """Refit ``hmm`` (fewer states) by ``fit``'s runner with ``fit``'s settings from ``start``.

    Parameters
    ----------
    fit : Fit
        The diagnosed fit (``method`` ``"nuts"`` or ``"svi"`` with its settings recorded).
    hmm : HMM
        The smaller model.
    start : dict of torch.Tensor
        Its starting point (every chain, or the one restart, starts there).

    Returns
    -------
    Fit
    """
    settings = _settings(fit)
    if settings is None:
        raise ValueError(f"fit: no recorded runner settings to refit a {fit.method!r} fit")
    seed = int(fit.attrs.get("seed", 0))
    init = interior(hmm, start)
    if fit.method == "nuts":
        return fit_nuts(hmm, fit.data, seed=seed, init=init, progress=False, **settings)
    return fit_svi(hmm, fit.data, seed=seed, init=init, progress=False, **settings)
