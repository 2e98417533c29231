"""Fit statistics of any fit: log likelihood, log prior, free parameters, AIC and BIC.

One route for every consumer (the CLI's summary after ``fit``, :func:`hmm_pyro.sweep`): the
per-sequence log likelihoods and per-site log prior densities that every ``Fit`` stores
(computed by :meth:`hmm_pyro.HMM.log_likelihood` and :meth:`hmm_pyro.HMM.log_prior_terms` when
the fit was built), and :meth:`hmm_pyro.HMM.num_free_params`.

- **Free parameters** count ``pi`` only when it is estimated on its own: a fit with
  ``initial="stationary"`` (``pi`` tied to ``A``) has ``K - 1`` fewer.
- **The prior that was used**: a fit with ``emission_prior=False`` (EM, Viterbi training,
  supervised) maximised the likelihood of the emission parameters, so its log prior has the
  ``pi`` and ``A`` terms only; with flat Dirichlet priors on those too (concentration 1, no
  stickiness) the fit is a plain maximum-likelihood estimate and has no log prior at all.
- **AIC and BIC** are for point estimates: ``-2 log L + 2 p`` and ``-2 log L + p log n``, with
  ``n`` the number of observed steps (steps with at least one observed value).
- **Fits to a store** (``fit_svi_stream``) keep only the first sequences in the fit: the log
  likelihood of all of them is the recorded whole-store value when there is one (MAP), with AIC
  but no BIC (``n`` of the store is not recorded); otherwise it covers the kept sequences only,
  and :attr:`FitStatistics.sequences` says how many of :attr:`FitStatistics.num_sequences`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from hmm_pyro.fit._fit import Fit

__all__ = ["FitStatistics", "fit_statistics"]


@dataclass(frozen=True)
class FitStatistics:
    """Goodness-of-fit numbers of a fit (see the module notes).

    Attributes
    ----------
    log_likelihood : float
        Log marginal likelihood of all sequences (the mean over draws for a posterior).
    log_likelihood_sd : float or None
        Its standard deviation over draws (``None`` for a point estimate).
    log_prior : float or None
        Log prior density of the parameters under the prior the fit used (mean over draws);
        ``None`` for a maximum-likelihood estimate.
    num_params : int
        Free parameters.
    num_observed : int
        Observed steps ``n``.
    aic, bic : float or None
        Information criteria of a point estimate (``None`` for draws, and BIC for a store
        whose observed steps are not counted).
    maximum_likelihood : bool
        Whether the fit is a plain maximum-likelihood estimate (no prior).
    sequences, num_sequences : int
        Sequences the log likelihood covers, of all the fit's sequences (fewer only for a
        fit to a store that recorded no whole-store log likelihood).
    """

    log_likelihood: float
    log_likelihood_sd: float | None
    log_prior: float | None
    num_params: int
    num_observed: int
    aic: float | None
    bic: float | None
    maximum_likelihood: bool
    sequences: int
    num_sequences: int

    @property
    def log_posterior(self) -> float | None:
        """``log p(y | theta) + log p(theta)`` (unnormalised; ``None`` without a prior)."""
        return None if self.log_prior is None else self.log_likelihood + self.log_prior


def _flat_dirichlets(fit: Fit) -> bool:
    """Whether the priors of ``pi`` and ``A`` are flat (concentration 1, no stickiness)."""
    num, prior = fit.hmm.num_states, fit.hmm.prior
    return bool(
        torch.all(prior.resolve_initial(num) == 1)
        and torch.all(prior.resolve_transitions(num) == 1)
    )


def fit_statistics(fit: Fit) -> FitStatistics:
    """Log likelihood, log prior, free parameters, AIC and BIC of ``fit``.

    Parameters
    ----------
    fit : Fit
        Any fit (a point estimate, or posterior draws).

    Returns
    -------
    FitStatistics

    Examples
    --------
    >>> stats = fit_statistics(fit)  # doctest: +SKIP
    >>> stats.log_likelihood, stats.bic  # doctest: +SKIP
    """
    if not isinstance(fit, Fit):
        raise TypeError(f"fit: expected a hmm_pyro.Fit, got {type(fit).__name__}")
    idata, hmm, attrs = fit.idata, fit.hmm, fit.attrs
    log_lik = np.asarray(idata.log_likelihood["y"].values).sum(axis=-1).ravel()  # per draw
    emission_prior = attrs.get("emission_prior", True) is not False
    sites = hmm.param_names if emission_prior else ("pi", "A")
    maximum_likelihood = not emission_prior and _flat_dirichlets(fit)
    log_prior = None
    if not maximum_likelihood:
        terms = sum(np.asarray(idata.log_prior[name].values) for name in sites)
        log_prior = float(np.mean(terms))
    num_params = hmm.num_free_params(str(attrs.get("initial", "free")))
    num_observed = fit.data.num_observed
    point = log_lik.size == 1
    value = float(log_lik.mean())
    sequences = fit.data.num_sequences
    stream = attrs.get("stream")
    num_sequences = int(stream["num_sequences"]) if isinstance(stream, dict) else sequences
    counted = sequences == num_sequences  # observed steps known for all sequences
    totals = attrs.get("log_likelihood_total")
    if not counted and point and isinstance(totals, list):
        value, sequences = float(totals[int(attrs.get("best_restart", 0))]), num_sequences
    aic = bic = None
    if point and sequences == num_sequences:
        aic = -2.0 * value + 2.0 * num_params
        if counted:
            bic = -2.0 * value + num_params * math.log(max(num_observed, 1))
    return FitStatistics(
        log_likelihood=value,
        log_likelihood_sd=None if point else float(log_lik.std(ddof=1)),
        log_prior=log_prior,
        num_params=num_params,
        num_observed=num_observed,
        aic=aic,
        bic=bic,
        maximum_likelihood=maximum_likelihood,
        sequences=sequences,
        num_sequences=num_sequences,
    )
