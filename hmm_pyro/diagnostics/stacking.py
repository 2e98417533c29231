"""Stacking of non-mixing chains (Yao, Vehtari & Gelman 2022): weights from predictive fit.

When chains sit in different modes, pooling their draws weighs each mode by the number of
chains that happened to land there, not by its posterior mass. Yao, Vehtari & Gelman
("Stacking for non-mixing Bayesian computations: the curse and blessing of multimodal
posteriors", JMLR 23, 2022) combine the chains instead with the weights that maximise the
leave-one-out log predictive density of the mixture:

``w = argmax_{w in simplex} sum_i log sum_c w_c exp(elpd_{c,i})``,

where ``elpd_{c,i}`` is chain ``c``'s PSIS-LOO log predictive density of unit ``i``. Units are
whole sequences when there are at least :data:`MIN_STACKING_SEQUENCES`; otherwise contiguous
time blocks of every sequence, each scored by ``log p(block | rest of its sequence, theta)``
(the block treated as missing, which the forward algorithm marginalises), the non-factorised
leave-one-out of Buerkner, Gabry & Vehtari (2021). **The stacked draws are not the posterior**:
they are a predictive combination of the chains, labelled as such
(``fit.method == "stacked chains"``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import minimize
from scipy.special import logsumexp, softmax

from hmm_pyro._random import make_generator
from hmm_pyro._validation import check_int
from hmm_pyro.data import Sequences
from hmm_pyro.fit import ALIGNED, LABELS_ATTR, Fit
from hmm_pyro.fit.inference_data import az

__all__ = [
    "MIN_STACKING_SEQUENCES",
    "PARETO_K_LIMIT",
    "ChainStacking",
    "stack_chains",
    "stacked_fit",
]

MIN_STACKING_SEQUENCES = 10
"""Whole sequences are the leave-one-out units from 10 sequences on; with fewer, time blocks."""
PARETO_K_LIMIT = 0.7
"""Pareto ``k`` above 0.7 makes a PSIS-LOO term unreliable (Vehtari et al. 2024)."""


@dataclass(frozen=True)
class ChainStacking:
    """Stacking weights of the chains and what they rest on.

    Attributes
    ----------
    weights : numpy.ndarray
        ``(C,)`` stacking weights (sum to 1).
    elpd : numpy.ndarray
        ``(C,)`` each chain's own PSIS-LOO ELPD (sum over units).
    pointwise : numpy.ndarray
        ``(C, U)`` the per-unit terms.
    pareto_k : numpy.ndarray
        ``(C,)`` largest Pareto ``k`` of each chain's terms.
    units : str
        ``"sequences"`` or ``"blocks of B steps"``.
    """

    weights: np.ndarray
    elpd: np.ndarray
    pointwise: np.ndarray
    pareto_k: np.ndarray
    units: str

    @property
    def stacked_elpd(self) -> float:
        """ELPD of the stacked mixture."""
        mixed = logsumexp(self.pointwise + np.log(np.maximum(self.weights, 1e-300))[:, None], 0)
        return float(mixed.sum())

    def to_dict(self) -> dict[str, object]:
        """The numbers, JSON-friendly."""
        return {
            "method": "stacking of chains (Yao, Vehtari & Gelman 2022)",
            "weights": self.weights.tolist(),
            "chain_elpd": self.elpd.tolist(),
            "stacked_elpd": self.stacked_elpd,
            "max_pareto_k": self.pareto_k.tolist(),
            "units": self.units,
            "num_units": int(self.pointwise.shape[1]),
        }


def _unit_log_likelihood(fit: Fit, params: dict[str, torch.Tensor], blocks: int) -> np.ndarray:
    """``(S, U)`` log predictive density of each unit under each draw, and the unit name."""
    hmm, data = fit.hmm, fit.data
    full = hmm.log_likelihood(params, data).numpy()  # (S, N)
    if data.num_sequences >= MIN_STACKING_SEQUENCES:
        return full
    values = data.values.numpy()
    lengths = data.lengths.numpy()
    columns = []
    for block in range(blocks):
        masked = values.copy()
        for sequence, length in enumerate(lengths):
            masked[sequence, np.array_split(np.arange(int(length)), blocks)[block]] = np.nan
        rest = hmm.log_likelihood(params, Sequences(masked, lengths=lengths)).numpy()
        columns.append(full - rest)  # log p(block | rest of the sequence)
    return np.concatenate(columns, axis=1)


def _stacking_weights(pointwise: np.ndarray) -> np.ndarray:
    """Maximise ``sum_i log sum_c w_c exp(pointwise[c, i])`` over the simplex."""
    count = pointwise.shape[0]
    peak = pointwise.max(0, keepdims=True)
    density = np.exp(pointwise - peak)  # (C, U), each column's largest entry 1

    def objective(free: np.ndarray) -> tuple[float, np.ndarray]:
        weights = softmax(np.append(free, 0.0))
        mixture = weights @ density
        value = -float(np.log(mixture).sum())
        gradient_w = -(density / mixture).sum(1)
        gradient = weights * (gradient_w - weights @ gradient_w)
        return value, gradient[:-1]

    result = minimize(objective, np.zeros(count - 1), jac=True, method="L-BFGS-B")
    return softmax(np.append(result.x, 0.0))


def stack_chains(fit: Fit, blocks: int = 10, draws_per_chain: int = 100) -> ChainStacking:
    """Stacking weights of the chains of ``fit`` from their leave-one-out predictive density.

    Parameters
    ----------
    fit : Fit
        A fit with several chains (e.g. NUTS chains in different modes).
    blocks : int
        Time blocks per sequence when there are fewer than :data:`MIN_STACKING_SEQUENCES`
        sequences (each block costs one forward pass per kept draw).
    draws_per_chain : int
        Draws of each chain used (evenly spaced).

    Returns
    -------
    ChainStacking

    Raises
    ------
    ValueError
        For a fit with a single chain, or blocks longer than the shortest sequence allows.

    Warns
    -----
    UserWarning
        When a chain's largest Pareto ``k`` exceeds :data:`PARETO_K_LIMIT` (its PSIS-LOO terms,
        hence the weights, are unreliable).

    Examples
    --------
    >>> stacking = hmm_pyro.diagnostics.stack_chains(fit)  # doctest: +SKIP
    >>> stacked = hmm_pyro.diagnostics.stacked_fit(fit, stacking)  # doctest: +SKIP
    """
    if not isinstance(fit, Fit):
        raise TypeError(f"fit: expected a hmm_pyro Fit, got {type(fit).__name__}")
    if fit.num_chains < 2:
        raise ValueError(f"fit: stacking combines chains; got {fit.num_chains} chain")
    blocks = check_int("blocks", blocks, minimum=2)
    draws_per_chain = check_int("draws_per_chain", draws_per_chain, minimum=2)
    if fit.data.num_sequences < MIN_STACKING_SEQUENCES and blocks > int(fit.data.lengths.min()):
        raise ValueError(
            f"blocks: expected at most {int(fit.data.lengths.min())} (the shortest sequence's "
            f"steps), got {blocks}"
        )
    all_draws = fit.draws()
    index = np.unique(np.linspace(0, fit.num_draws - 1, draws_per_chain).round().astype(int))
    pointwise, pareto = [], []
    for chain in range(fit.num_chains):
        params = {name: value[chain, index] for name, value in all_draws.items()}
        log_lik = _unit_log_likelihood(fit, params, blocks)  # (S, U)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # arviz's own k warning: reported below instead
            log_weights, k_hat = az.psislw(-log_lik.T, reff=1.0)
        pointwise.append(logsumexp(log_weights + log_lik.T, axis=1))
        pareto.append(float(np.max(k_hat)))
    terms = np.stack(pointwise)
    pareto_k = np.array(pareto)
    if (pareto_k > PARETO_K_LIMIT).any():
        bad = ", ".join(str(c) for c in np.flatnonzero(pareto_k > PARETO_K_LIMIT))
        warnings.warn(
            f"stack_chains: Pareto k above {PARETO_K_LIMIT} in chain(s) {bad} (largest "
            f"{pareto_k.max():.2f}): their leave-one-out terms, hence the weights, are "
            "unreliable; use more draws per chain or more units",
            UserWarning,
            stacklevel=2,
        )
    length = math.ceil(int(fit.data.lengths.max()) / blocks)
    units = (
        "sequences"
        if fit.data.num_sequences >= MIN_STACKING_SEQUENCES
        else f"{blocks} time blocks per sequence (about {length} steps each)"
    )
    return ChainStacking(
        weights=_stacking_weights(terms),
        elpd=terms.sum(1),
        pointwise=terms,
        pareto_k=pareto_k,
        units=units,
    )


def stacked_fit(fit: Fit, stacking: ChainStacking, draws: int = 1000, seed: int = 0) -> Fit:
    """Draws of the stacked mixture of the chains: chain ``c`` with probability ``w_c``.

    Parameters
    ----------
    fit : Fit
        The fit whose chains were stacked.
    stacking : ChainStacking
        From :func:`stack_chains`.
    draws : int
        Draws of the result (one chain).
    seed : int
        Seed of the resampling.

    Returns
    -------
    Fit
        ``method == "stacked chains"``; attributes ``stacking_weights`` and ``stacking`` (a
        note that the draws are a predictive combination, not the posterior).
    """
    draws = check_int("draws", draws, minimum=1)
    if stacking.weights.shape != (fit.num_chains,):
        raise ValueError(
            f"stacking: expected weights for {fit.num_chains} chains, got "
            f"{stacking.weights.shape[0]}"
        )
    generator = make_generator(seed)
    weights = torch.as_tensor(stacking.weights, dtype=torch.float64)
    chains = torch.multinomial(weights, draws, replacement=True, generator=generator)
    picks = torch.randint(fit.num_draws, (draws,), generator=generator)
    params = {name: value[chains, picks][None] for name, value in fit.draws().items()}
    attrs = {
        "stacking_weights": stacking.weights.tolist(),
        "stacking": (
            "draws of the stacking mixture of the chains (Yao, Vehtari & Gelman 2022): a "
            "combination by leave-one-out predictive density, not the posterior"
        ),
        "source_method": fit.method,
    }
    if fit.labelling == ALIGNED:
        attrs[LABELS_ATTR] = ALIGNED
    return Fit.from_params(fit.hmm, fit.data, params, method="stacked chains", attrs=attrs)
