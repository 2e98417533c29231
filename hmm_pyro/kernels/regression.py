"""Log likelihood of a chain whose transition rows are multinomial-logit regressions.

``P(z_{t+1} = j | z_t = i, x_t) = softmax_j(x_t . coefficients[i, j])``: the transition
matrix out of step ``t`` is computed from that step's covariates ``x_t`` (a design row,
intercept included if wanted) and ``(K, K, P)`` coefficients. This is
:func:`~hmm_pyro.kernels.log_likelihood` with ``time_varying=True`` and
``log_A = log_softmax(einsum(design, coefficients))``, which the ``"torch"`` backend computes
as written. The ``"numba"`` backend builds the matrices inside its sweeps and returns the
gradient with respect to the coefficients from its backward sweep
(:mod:`hmm_pyro.kernels._numba.regression`): no ``(T, K, K)`` array per sequence goes in or
out, which is what a fit needs and what makes it cheap (``benchmarks/time_varying.py``).
"""

from __future__ import annotations

import torch

from hmm_pyro.kernels import _numba
from hmm_pyro.kernels._inputs import prepare_regression_inputs
from hmm_pyro.kernels.forward_backward import log_likelihood, use_numba

__all__ = ["regression_log_likelihood", "regression_log_transitions"]


def regression_log_transitions(coefficients: torch.Tensor, design: torch.Tensor) -> torch.Tensor:
    """``log A_t = log_softmax(x_t . coefficients)`` for every sequence and step.

    ``coefficients (..., K, K, P)``, ``design (..., N, T, P)`` (the leading dimensions of the
    two broadcast); returns ``(..., N, T, K, K)``.
    """
    return torch.einsum("...ntp,...ijp->...ntij", design, coefficients).log_softmax(-1)


def regression_log_likelihood(
    log_pi: torch.Tensor,
    coefficients: torch.Tensor,
    design: torch.Tensor,
    log_lik: torch.Tensor,
    lengths: torch.Tensor | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Log marginal likelihood with transition rows ``softmax(x_t . coefficients[i])``.

    Parameters
    ----------
    log_pi : torch.Tensor
        ``(..., N, K)`` log initial distribution (state of the first observation).
    coefficients : torch.Tensor
        ``(..., K, K, P)`` finite coefficients: ``log P(z_{t+1} = j | z_t = i)`` is
        ``x_t . coefficients[i, j]`` up to the row's normaliser. One set per index of the
        leading dimensions, shared by the ``N`` sequences (one set per posterior draw, say).
    design : torch.Tensor
        ``(..., N, T, P)`` covariates: row ``t`` gives the transition from step ``t`` to
        ``t + 1``, so it is not read from the last step of a sequence on (padding may hold
        NaN). Not differentiated by the ``"numba"`` backend.
    log_lik : torch.Tensor
        ``(..., N, T, K)`` per-step, per-state log emission likelihoods.
    lengths : torch.Tensor, optional
        ``(..., N)`` number of valid steps of each sequence (default: all ``T``).
    backend : {"auto", "numba", "torch"}
        As in :func:`~hmm_pyro.kernels.log_likelihood`; both agree to round-off.

    Returns
    -------
    torch.Tensor
        ``(..., N)`` log likelihood of each sequence; differentiable in ``log_pi``,
        ``coefficients`` and ``log_lik`` (and ``design`` with ``"torch"``).
    """
    inputs = prepare_regression_inputs(log_pi, coefficients, design, log_lik, lengths)
    log_pi, coefficients, design, log_lik, lengths = inputs
    if not use_numba(backend, log_pi, coefficients, design, log_lik):
        log_A = regression_log_transitions(coefficients, design)
        return log_likelihood(log_pi, log_A, log_lik, lengths, backend="torch", time_varying=True)
    if design.requires_grad and torch.is_grad_enabled():
        raise ValueError(
            "design: the 'numba' backend gives no gradient with respect to the covariates; "
            "detach them or use backend='torch'"
        )
    if design.shape[:-3].numel() > 1:  # covariates that differ between coefficient sets
        design = design.expand(*lengths.shape, *design.shape[-2:])
    return _numba.RegressionLogLikelihood.apply(log_pi, coefficients, design, log_lik, lengths)
