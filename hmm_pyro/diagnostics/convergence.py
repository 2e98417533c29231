"""Convergence: R-hat, ESS and divergences on raw parameters and label-invariant quantities.

R-hat is the rank-normalised split R-hat, ESS the bulk and tail ESS (Vehtari et al. 2021).

Invariant quantities (total log likelihood, log joint density, sorted emission parameters,
sorted self-transition probabilities, smallest pairwise emission distance) do not change when
labels are permuted, so they separate "not converged" (invariants disagree across chains) from
"converged up to labels" (invariants agree, raw per-state parameters do not)
(docs/degeneracy.md#label-invariant-quantities). For each invariant the pair of chains whose
means differ most in Monte Carlo errors is kept (:mod:`hmm_pyro.diagnostics.modes`): it tells
chains in different modes from chains that need a longer run.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from hmm_pyro.diagnostics.collapse import min_pairwise
from hmm_pyro.diagnostics.modes import ChainGap, chain_gap, family_level, rhat_noise
from hmm_pyro.diagnostics.thresholds import ESS_PER_CHAIN, RHAT, RHAT_NOISE
from hmm_pyro.fit.inference_data import az
from hmm_pyro.labels.draws import Arrays, emission_distances
from hmm_pyro.model import HMM

__all__ = [
    "ConvergenceStatistics",
    "convergence_statistics",
    "diagnostics_table",
    "invariant_quantities",
    "scalar_entries",
]

MIN_CHAINS = 2
MIN_DRAWS = 4
"""ArviZ needs at least two chains of four draws for R-hat (fewer give NaN and a log message)."""


def _entries(name: str, values: np.ndarray) -> dict[str, np.ndarray]:
    """Split ``(chain, draw, ...)`` into scalar ``(chain, draw)`` entries named ``name[i, j]``."""
    trailing = values.shape[2:]
    if not trailing:
        return {name: values}
    flat = values.reshape(*values.shape[:2], -1)
    return {
        f"{name}[{', '.join(map(str, index))}]": flat[..., position]
        for position, index in enumerate(np.ndindex(*trailing))
    }


def scalar_entries(quantities: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every scalar ``(chain, draw)`` entry of ``(chain, draw, ...)`` quantities, by name."""
    scalars: dict[str, np.ndarray] = {}
    for name, values in quantities.items():
        scalars.update(_entries(name, np.asarray(values, dtype=np.float64)))
    return scalars


def diagnostics_table(quantities: dict[str, np.ndarray]) -> pd.DataFrame:
    """R-hat, bulk ESS and tail ESS of each ``(chain, draw, ...)`` quantity, one row per entry.

    R-hat and ESS of an entry that is constant across all draws are undefined (NaN); ArviZ then
    divides zero by zero and emits a ``RuntimeWarning``, which is silenced here because a
    constant entry (e.g. a fixed parameter or a crafted test draw) is not a convergence problem.
    """
    scalars = scalar_entries(quantities)
    dataset = az.convert_to_dataset({key: value for key, value in scalars.items()})
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="invalid value encountered", category=RuntimeWarning
        )
        rhat = az.rhat(dataset)
        bulk = az.ess(dataset, method="bulk")
        tail = az.ess(dataset, method="tail")
    return pd.DataFrame(
        {
            "r_hat": [float(rhat[key]) for key in scalars],
            "ess_bulk": [float(bulk[key]) for key in scalars],
            "ess_tail": [float(tail[key]) for key in scalars],
        },
        index=list(scalars),
    )


def invariant_quantities(
    hmm: HMM, draws: Arrays, log_likelihood: np.ndarray, log_prior: np.ndarray
) -> dict[str, np.ndarray]:
    """Label-invariant functionals of every draw.

    Parameters
    ----------
    hmm : HMM
        The model.
    draws : dict of numpy.ndarray
        Posterior draws ``(chain, draw, ...)``.
    log_likelihood, log_prior : numpy.ndarray
        ``(chain, draw)`` total log likelihood and log prior density of each draw.

    Returns
    -------
    dict of numpy.ndarray
        ``(chain, draw, ...)`` quantities.
    """
    transitions = reference_transitions(hmm, draws)
    quantities = {
        "log_likelihood": log_likelihood,
        "log_joint": log_likelihood + log_prior,
        "sorted_self_transition": np.sort(np.diagonal(transitions, axis1=-2, axis2=-1), -1),
    }
    for name in hmm.emission.param_names:
        quantities[f"sorted_{name}"] = np.sort(draws[name], axis=2)
    if hmm.num_states > 1:
        quantities["min_distance"] = min_pairwise(emission_distances(hmm, draws))
    return quantities


def reference_transitions(hmm: HMM, draws: Arrays) -> np.ndarray:
    """The transition matrix of each draw, ``(..., K, K)``.

    ``A``, or for a model whose transitions change with covariates the matrix at covariates 0
    (their means when standardised).
    """
    if "A" in draws:
        return np.asarray(draws["A"])
    params = {name: torch.as_tensor(np.asarray(value)) for name, value in draws.items()}
    rows = torch.zeros(1, len(hmm.transition_covariates), dtype=hmm.dtype)
    return hmm.transition_matrices(params, rows)[..., 0, :, :].numpy()


@dataclass(frozen=True)
class ConvergenceStatistics:
    """R-hat and ESS tables and divergence counts.

    Attributes
    ----------
    raw, invariant : pandas.DataFrame
        Columns ``r_hat``, ``ess_bulk``, ``ess_tail``; one row per scalar entry.
    divergences : int
        Divergent transitions (NUTS), 0 when not recorded.
    transitions : int
        Draws in all chains.
    num_chains : int
        Chains.
    gaps : dict of ChainGap
        For each invariant entry, the two chains whose means differ by the most Monte Carlo
        standard errors (entries without a finite error are left out).
    """

    raw: pd.DataFrame
    invariant: pd.DataFrame
    divergences: int
    transitions: int
    num_chains: int
    gaps: dict[str, ChainGap] = field(default_factory=dict)

    @staticmethod
    def _worst(table: pd.DataFrame) -> dict[str, float | str]:
        rhat = table["r_hat"].dropna()
        ess = table[["ess_bulk", "ess_tail"]].min(axis=1).dropna()
        return {
            "max_r_hat": float(rhat.max()) if len(rhat) else float("nan"),
            "worst_r_hat": str(rhat.idxmax()) if len(rhat) else "",
            "min_ess": float(ess.min()) if len(ess) else float("nan"),
            "worst_ess": str(ess.idxmin()) if len(ess) else "",
        }

    def summary(self) -> dict[str, dict[str, float | str]]:
        """Worst R-hat and ESS of the raw and invariant quantities."""
        return {"raw": self._worst(self.raw), "invariant": self._worst(self.invariant)}

    @property
    def min_ess(self) -> float:
        """ESS threshold for all chains together (``ESS_PER_CHAIN`` per chain)."""
        return float(ESS_PER_CHAIN * self.num_chains)

    def _well_sampled(self, table: pd.DataFrame) -> pd.Series:
        return table[["ess_bulk", "ess_tail"]].min(axis=1) >= 2 * self.min_ess

    def failing_rhat(self, table: pd.DataFrame) -> list[str]:
        """Entries of ``table`` (``raw`` or ``invariant``) with R-hat above the threshold.

        R-hat up to ``RHAT_NOISE`` with ample ESS is within its sampling noise and does not fail
        (see :meth:`borderline_rhat`).
        """
        above = table["r_hat"] > RHAT
        noise = (table["r_hat"] <= RHAT_NOISE) & self._well_sampled(table)
        return list(table.index[above & ~noise])

    def borderline_rhat(self, table: pd.DataFrame) -> list[str]:
        """Entries with R-hat in ``(RHAT, RHAT_NOISE]`` and ample ESS (reported as a note)."""
        above = table["r_hat"] > RHAT
        noise = (table["r_hat"] <= RHAT_NOISE) & self._well_sampled(table)
        return list(table.index[above & noise])

    def failing_ess(self, table: pd.DataFrame) -> list[str]:
        """Entries of ``table`` with bulk or tail ESS below ``ESS_PER_CHAIN`` per chain."""
        return list(table.index[table[["ess_bulk", "ess_tail"]].min(axis=1) < self.min_ess])

    def rhat_noise(self, table: pd.DataFrame) -> pd.Series:
        """R-hat up to which each entry is within its own sampling noise, given its ESS.

        :func:`hmm_pyro.diagnostics.modes.rhat_noise` of the smaller of bulk and tail ESS, at
        the family-wise level of :func:`family_level` over the entries of ``table``: with
        ``m`` quantities checked, each is held to ``1 - (1 - RHAT_NOISE_LEVEL) / m``, so that
        converged chains exceed some entry's bound with probability at most
        ``1 - RHAT_NOISE_LEVEL`` (Bonferroni), not ``m`` times that.
        """
        ess = table[["ess_bulk", "ess_tail"]].min(axis=1)
        draws = self.transitions // self.num_chains
        level = family_level(len(table))
        return ess.map(lambda value: rhat_noise(value, self.num_chains, draws, level))

    def within_noise(self, table: pd.DataFrame, entries: list[str]) -> bool:
        """Every one of ``entries`` has R-hat within its sampling noise for its ESS."""
        bounds = self.rhat_noise(table)
        return bool((table.loc[entries, "r_hat"] <= bounds[entries]).all())

    def separated(self, entries: list[str]) -> list[ChainGap]:
        """Gaps of ``entries`` beyond ``MODE_SEPARATION`` standard errors, the widest first."""
        gaps = [self.gaps[name] for name in entries if name in self.gaps]
        return sorted((gap for gap in gaps if gap.separated), key=lambda gap: -gap.standard_errors)

    def widest_gap(self, entries: list[str]) -> ChainGap | None:
        """The gap of ``entries`` with the most standard errors, if any."""
        gaps = [self.gaps[name] for name in entries if name in self.gaps]
        return max(gaps, key=lambda gap: gap.standard_errors, default=None)

    @property
    def raw_failing(self) -> list[str]:
        """Raw entries with R-hat above or ESS below the thresholds."""
        return sorted(set(self.failing_rhat(self.raw)) | set(self.failing_ess(self.raw)))

    @property
    def invariant_failing(self) -> list[str]:
        """Invariant quantities with R-hat above or ESS below the thresholds."""
        failing = set(self.failing_rhat(self.invariant)) | set(self.failing_ess(self.invariant))
        return sorted(failing)


def convergence_statistics(
    hmm: HMM,
    draws: Arrays,
    log_likelihood: np.ndarray,
    log_prior: np.ndarray,
    diverging: np.ndarray | None = None,
) -> ConvergenceStatistics | None:
    """R-hat and ESS of raw parameters and invariant quantities; ``None`` if too few draws.

    Parameters
    ----------
    hmm : HMM
        The model.
    draws : dict of numpy.ndarray
        All posterior draws ``(chain, draw, ...)``.
    log_likelihood, log_prior : numpy.ndarray
        ``(chain, draw)`` totals.
    diverging : numpy.ndarray, optional
        ``(chain, draw)`` divergence indicators.

    Returns
    -------
    ConvergenceStatistics or None
    """
    num_chains, num_draws = log_likelihood.shape[:2]
    if num_chains < MIN_CHAINS or num_draws < MIN_DRAWS:
        return None
    raw = diagnostics_table({name: draws[name] for name in hmm.param_names})
    quantities = invariant_quantities(hmm, draws, log_likelihood, log_prior)
    gaps = {name: chain_gap(name, values) for name, values in scalar_entries(quantities).items()}
    return ConvergenceStatistics(
        raw=raw,
        invariant=diagnostics_table(quantities),
        divergences=0 if diverging is None else int(np.asarray(diverging).sum()),
        transitions=int(num_chains * num_draws),
        num_chains=int(num_chains),
        gaps={name: gap for name, gap in gaps.items() if gap is not None},
    )
