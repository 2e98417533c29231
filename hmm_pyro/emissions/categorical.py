"""Categorical emissions: ``y_t | z_t = k ~ Categorical(B[k])`` over ``V`` symbols.

Also home of :func:`dirichlet_map`, the MAP update of any probability rows under a Dirichlet
prior (``B`` here; ``pi`` and ``A`` in :mod:`hmm_pyro.learning.mstep`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyro.distributions as dist
import torch
from pyro.ops.special import safe_log

from hmm_pyro import kernels
from hmm_pyro._random import draw_categorical
from hmm_pyro._tables import check_symbols
from hmm_pyro._types import SequencesLike
from hmm_pyro._validation import check_int
from hmm_pyro.data import Sequences
from hmm_pyro.emissions._integers import check_symbols_in_range
from hmm_pyro.emissions.base import (
    STATISTICS_DTYPE,
    Emission,
    OptionError,
    Params,
    PotentialTerms,
    dirichlet_log_normalizer,
    transition_logs,
)
from hmm_pyro.emissions.categorical_regression import CategoricalRegression
from hmm_pyro.emissions.statistics import _STATISTICS_CACHE
from hmm_pyro.kernels import _numba
from hmm_pyro.kernels import categorical as categorical_kernel
from hmm_pyro.priors import Prior

__all__ = ["Categorical", "dirichlet_map"]

_SIMPLEX_ATOL = 1e-6
_ONE_HOT_LIMIT = 2**24
"""Largest ``N * T * V`` for which the data are one-hot encoded (128 MiB in float64)."""
_STATISTICS_ONE_HOT_LIMIT = 2**23
"""Largest ``N * T * V`` for which the symbols are cached as a dense indicator for the
sufficient statistics (64 MiB)."""


def dirichlet_map(
    counts: torch.Tensor, concentration: torch.Tensor, previous: torch.Tensor | None = None
) -> torch.Tensor:
    """Mode of ``Dirichlet(counts + concentration)`` per row, clamped at the boundary.

    ``p_i ∝ max(n_i + alpha_i - 1, 0)``. Concentration 1 gives the ML frequencies. A
    concentration below 1 can make ``n_i + alpha_i - 1`` negative: the density is then
    unbounded at ``p_i = 0`` and has no maximiser; the usual MAP-EM convention (hmmlearn's too)
    clamps at 0 and renormalises, which puts ``p_i`` exactly at zero, where it stays (its
    expected count is zero from then on).

    Parameters
    ----------
    counts : torch.Tensor
        ``(..., V)`` (expected) counts.
    concentration : torch.Tensor
        Prior concentration, broadcast to ``counts``.
    previous : torch.Tensor, optional
        Value kept for rows whose pseudo-counts are all zero (any value maximises them);
        uniform when omitted.

    Returns
    -------
    torch.Tensor
        Rows on the simplex.
    """
    pseudo = (counts + concentration - 1.0).clamp(min=0.0)
    total = pseudo.sum(-1, keepdim=True)
    empty = total <= 0
    probs = pseudo / torch.where(empty, 1.0, total)
    fallback = (
        torch.full_like(probs, 1.0 / probs.shape[-1])
        if previous is None
        else previous.to(STATISTICS_DTYPE)
    )
    return torch.where(empty, fallback, probs)


class Categorical(Emission):
    """Categorical emissions over symbols ``0 .. V-1``; parameter ``B`` of shape ``(K, V)``.

    Each row ``B[k]`` has the prior ``Dirichlet(prior.B[k])``.

    Parameters
    ----------
    num_symbols : int
        Number of symbols ``V >= 2``.
    symbols : sequence of str, optional
        Names of the symbols ``0 .. V-1`` (text data, :attr:`hmm_pyro.Sequences.symbols`):
        the ``symbol`` coordinate of the ArviZ output and the labels of summaries and plots.

    Examples
    --------
    >>> Categorical(num_symbols=6).param_shapes(num_states=2)
    {'B': (2, 6)}
    """

    family = "categorical"
    param_names = ("B",)
    simplex_params = ("B",)
    random_effect_params = (("B", "logit"),)
    integer_valued = True

    def __init__(self, num_symbols: int, symbols: Sequence[str] | None = None) -> None:
        self.num_symbols = check_int("num_symbols", num_symbols, minimum=2)
        self.symbols = None if symbols is None else check_symbols("symbols", symbols)
        if self.symbols is not None and len(self.symbols) != self.num_symbols:
            raise ValueError(
                f"symbols: expected {self.num_symbols} names (num_symbols), got {len(self.symbols)}"
            )

    @property
    def dim(self) -> int:
        """Emission dimension: always 1."""
        return 1

    def param_shapes(self, num_states: int) -> dict[str, tuple[int, ...]]:
        """``{"B": (K, V)}``."""
        return {"B": (num_states, self.num_symbols)}

    def param_dims(self) -> dict[str, tuple[str, ...]]:
        """``{"B": ("state", "symbol")}``."""
        return {"B": ("state", "symbol")}

    def to_config(self) -> dict[str, Any]:
        """``{"family": "categorical", "num_symbols": V}`` (and ``"symbols"`` when named)."""
        config: dict[str, Any] = {"family": self.family, "num_symbols": self.num_symbols}
        if self.symbols is not None:
            config["symbols"] = list(self.symbols)
        return config

    def __hash__(self) -> int:
        return hash((self.family, self.num_symbols, self.symbols))

    def __repr__(self) -> str:
        if self.symbols is None:
            return f"Categorical(num_symbols={self.num_symbols})"
        names = ", ".join(repr(name) for name in self.symbols[:5])
        more = ", ..." if self.num_symbols > 5 else ""
        return f"Categorical(num_symbols={self.num_symbols}, symbols=[{names}{more}])"

    @property
    def symbol_names(self) -> tuple[str, ...] | None:
        """The names of the symbols, or ``None``."""
        return self.symbols

    def param_coords(self) -> dict[str, list[Any]]:
        """``{"symbol": names}`` when the symbols are named."""
        return {} if self.symbols is None else {"symbol": list(self.symbols)}

    def entry_label(self, name: str, state: int, index: int) -> str:
        """``"state:symbol"`` (the symbol's name when named)."""
        return f"{state}:{index if self.symbols is None else self.symbols[index]}"

    def entry_axis_label(self) -> str | None:
        """``"state:symbol"``."""
        return "state:symbol"

    def with_covariates(self, names: tuple[str, ...]) -> CategoricalRegression:
        """The multinomial-logit regression on ``names`` (the GLM-HMM), same symbols."""
        return CategoricalRegression(self.num_symbols, names, symbols=self.symbols)

    def validate_data(self, data: Sequences) -> None:
        """Require integer symbols in ``[0, V)``."""
        self._check_dim(data)
        check_symbols_in_range(data, self.num_symbols, repr(self))

    def prior_distributions(
        self, prior: Prior, num_states: int, dtype: torch.dtype
    ) -> dict[str, dist.TorchDistribution]:
        """``B[k] ~ Dirichlet(prior.B[k])``, one event of shape ``(K, V)``."""
        concentration = self.prior_hyperparameters(prior, num_states, dtype)["B"]
        return {"B": dist.Dirichlet(concentration).to_event(1)}

    def prior_hyperparameters(
        self, prior: Prior, num_states: int, dtype: torch.dtype
    ) -> dict[str, torch.Tensor]:
        """``{"B": (K, V)}`` Dirichlet concentrations."""
        return {"B": prior.resolve_emission("B", num_states, self.num_symbols, dtype)}

    # ------------------------------------------------------------------ point estimation
    def weighted_statistics(self, data: Sequences, weights: torch.Tensor) -> Params:
        """``{"counts": (K, V)}``: ``counts[k, v] = sum_t w[t, k] [y_t = v]`` (observed steps).

        A dense product with a cached indicator when ``N T V`` is small, else an index-add.
        """
        if weights.shape[0] * self.num_symbols <= _STATISTICS_ONE_HOT_LIMIT:
            counts = self._flat_one_hot(data) @ weights
        else:
            index, symbols = self._flat_symbols(data)
            counts = torch.zeros(self.num_symbols, weights.shape[1], dtype=STATISTICS_DTYPE)
            counts.index_add_(0, symbols, weights[index])
        return {"counts": counts.T.contiguous()}

    @staticmethod
    def _flat_symbols(data: Sequences) -> tuple[torch.Tensor, torch.Tensor]:
        """Observed step indices into the flattened ``(N*T)`` axis, and their symbols."""

        def build() -> tuple[torch.Tensor, torch.Tensor]:
            observed = data.observed[..., 0].reshape(-1)
            index = torch.nonzero(observed).squeeze(-1)
            symbols = data.values[..., 0].reshape(-1)[index].long()
            return index, symbols

        return data.cached((_STATISTICS_CACHE, "symbols"), build)

    def _flat_one_hot(self, data: Sequences) -> torch.Tensor:
        """``(V, N*T)`` float64 indicator of each observed symbol (zero columns where missing)."""

        def build() -> torch.Tensor:
            index, symbols = self._flat_symbols(data)
            size = data.num_sequences * data.max_length
            encoded = torch.zeros(self.num_symbols, size, dtype=STATISTICS_DTYPE)
            encoded[symbols, index] = 1.0
            return encoded

        return data.cached((_STATISTICS_CACHE, "one_hot", self.num_symbols), build)

    def maximize(
        self,
        statistics: Params,
        hyperparameters: Params,
        previous: Params | None,
        use_prior: bool,
    ) -> Params:
        """``B[k] ∝ max(counts[k] + alpha_k - 1, 0)`` (:func:`dirichlet_map`; ML: alpha = 1).

        Rows without pseudo-counts keep ``previous`` (uniform when it is ``None``).
        """
        if use_prior:
            concentration = hyperparameters["B"]
        else:
            concentration = torch.ones((), dtype=STATISTICS_DTYPE)
        old = None if previous is None else previous["B"]
        return {"B": dirichlet_map(statistics["counts"], concentration, old)}

    def pooled_params(self, data: Sequences) -> Params:
        """``B (1, V)``: overall frequencies of the observed symbols (zeros if none)."""
        symbols = self._observed_values(data).long()
        counts = torch.bincount(symbols, minlength=self.num_symbols).to(STATISTICS_DTYPE)
        return {"B": (counts / counts.sum().clamp(min=1.0)).reshape(1, self.num_symbols)}

    def location(self, params: Params) -> torch.Tensor:
        """Expected symbol index of each state: ``sum_v v B[k, v]``, ``(..., K)``."""
        probs = params["B"]
        symbols = torch.arange(self.num_symbols, dtype=probs.dtype)
        return (probs * symbols).sum(-1)

    def fill_value(self) -> float:
        """Symbol 0."""
        return 0.0

    def _log_b(self, params: Params) -> torch.Tensor:
        """``log B`` with exact zeros mapped to the most negative float (not ``-inf``)."""
        log_b = safe_log(params["B"])
        return log_b.clamp(min=torch.finfo(log_b.dtype).min)

    def _log_prob_elementwise(self, params: Params, values: torch.Tensor) -> torch.Tensor:
        log_b = self._log_b(params).transpose(-1, -2)  # (..., V, K)
        symbols = values[..., 0].long()  # (N, T)
        return log_b[..., symbols, :].unsqueeze(-1)

    def log_likelihood_table(self, params: Params, data: Sequences) -> torch.Tensor:
        """``(..., N, T, K)`` table as ``one_hot(y) @ log(B).T`` (zero rows where missing).

        The matrix product has a cheap dense backward pass; for very large ``N T V`` it falls
        back to indexing.
        """
        if data.num_sequences * data.max_length * self.num_symbols > _ONE_HOT_LIMIT:
            return super().log_likelihood_table(params, data)
        log_b = self._log_b(params)
        one_hot = data.cached(
            ("one_hot", self.num_symbols, log_b.dtype), lambda: self._one_hot(data, log_b.dtype)
        )
        return one_hot @ log_b.transpose(-1, -2).unsqueeze(-3)

    def sequence_log_likelihood(
        self,
        log_pi: torch.Tensor | None,
        log_A: torch.Tensor | None,
        params: Params,
        data: Sequences,
    ) -> torch.Tensor:
        """Log marginal likelihood of each sequence: ``(..., N)``.

        With unbatched CPU parameters the emission rows are looked up per symbol inside the
        numba forward-backward (:func:`hmm_pyro.kernels.categorical_log_likelihood`); no
        ``(N, T, K)`` table is built. With ``log_pi`` and ``log_A`` both ``None`` the
        logarithms of ``pi``, ``A`` and ``B`` are taken inside that kernel's autograd node
        (:func:`~hmm_pyro.kernels.categorical.categorical_probability_log_likelihood`, equal
        bit for bit). Otherwise as :meth:`Emission.sequence_log_likelihood`.
        """
        B = params["B"]
        if log_pi is None and log_A is None:
            pi, A = params["pi"], params["A"]
            if categorical_kernel.shared_parameters(pi, A, B):
                lanes = data.cached(("symbol_lanes", self.num_symbols), lambda: self._lanes(data))
                return categorical_kernel.categorical_probability_log_likelihood(pi, A, B, lanes)
        log_pi, log_A = transition_logs(log_pi, log_A, params)
        log_b = self._log_b(params)
        if not categorical_kernel.shared_parameters(log_pi, log_A, log_b):
            return super().sequence_log_likelihood(log_pi, log_A, params, data)
        lanes = data.cached(("symbol_lanes", self.num_symbols), lambda: self._lanes(data))
        return kernels.categorical_log_likelihood(log_pi, log_A, log_b, lanes)

    def expected_statistics(
        self, log_pi: torch.Tensor, log_A: torch.Tensor, params: Params, data: Sequences
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Params]:
        """EM's E-step on the symbol route: the gradient of the log likelihood.

        With ``log pi``, ``log A`` and ``log B`` as free inputs, ``d log p(y) / d log A[i, j]``
        is the expected number of ``i -> j`` transitions, ``d / d log pi[k]`` the first-step
        weight of ``k`` and ``d / d log B[k, v]`` the expected emissions of ``v`` by ``k``: the
        statistics of :meth:`Emission.expected_statistics`, from the fused numba
        forward-backward of :func:`hmm_pyro.kernels.categorical.categorical_expected_counts`
        (no ``(N, T, K)`` table, no autograd graph). Off that route (batched or non-CPU
        parameters), as the base class.
        """
        log_b = self._log_b(params)
        if not categorical_kernel.shared_parameters(log_pi, log_A, log_b):
            return super().expected_statistics(log_pi, log_A, params, data)
        lanes = data.cached(("symbol_lanes", self.num_symbols), lambda: self._lanes(data))
        total, start, transitions, counts = categorical_kernel.categorical_expected_counts(
            log_pi.detach(), log_A.detach(), log_b.detach(), lanes
        )
        dtype = STATISTICS_DTYPE
        return total, start.to(dtype), transitions.to(dtype), {"counts": counts.to(dtype)}

    def _lanes(self, data: Sequences) -> categorical_kernel.SymbolLanes:
        symbols = data.filled(0.0, torch.float64)[..., 0].long()
        symbols = torch.where(data.observed[..., 0], symbols, kernels.MISSING_SYMBOL)
        return categorical_kernel.SymbolLanes(symbols, self.num_symbols, data.lengths)

    def _one_hot(self, data: Sequences, dtype: torch.dtype) -> torch.Tensor:
        symbols = data.filled(0.0, torch.float64)[..., 0].long()
        encoded = torch.nn.functional.one_hot(symbols, self.num_symbols).to(dtype)
        return encoded * data.observed[..., :1].to(dtype)

    def conditional(
        self, params: Params, states: torch.Tensor, observed: torch.Tensor
    ) -> dist.TorchDistribution:
        """``Categorical(B[states])`` masked by ``observed[..., 0]``."""
        return dist.Categorical(probs=params["B"][states]).mask(observed[..., 0])

    def sample(
        self, params: Params, states: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Draw symbols by inverse-CDF sampling: ``(*states.shape, 1)`` float."""
        probs = params["B"][states]
        return draw_categorical(probs, generator).unsqueeze(-1).to(probs.dtype)

    def observation(self, values: torch.Tensor) -> torch.Tensor:
        """Symbols of one step as int64 ``(N,)`` (the enumerated model's ``obs``)."""
        return values[..., 0].long()

    def bhattacharyya(self, params: Params) -> torch.Tensor:
        """``BC[i, j] = sum_v sqrt(B[i, v] B[j, v])``."""
        root = params["B"].clamp(min=0).sqrt()
        return root @ root.transpose(-1, -2)

    def _values_pass(self, name: str, value: torch.Tensor) -> bool:
        """Finite, non-negative rows summing to 1 within the tolerance (one numba pass)."""
        return _numba.probability_rows(value, _SIMPLEX_ATOL)

    def _check_param_values(self, name: str, value: torch.Tensor) -> None:
        if (value < 0).any() or not torch.allclose(
            value.sum(-1), torch.ones((), dtype=value.dtype), atol=_SIMPLEX_ATOL
        ):
            raise ValueError(
                f"params[{name!r}]: expected rows on the probability simplex (non-negative, "
                f"summing to 1 within {_SIMPLEX_ATOL}), "
                f"got row sums {value.sum(-1).flatten()[:5].tolist()}"
            )

    @classmethod
    def from_options(
        cls, data: Sequences | None = None, num_symbols: int | None = None, dim: int | None = None
    ) -> Categorical:
        """``Categorical(num_symbols)``, or :meth:`from_data` when ``num_symbols`` is ``None``.

        Parameters
        ----------
        data : Sequences, optional
            The observations (one value per step).
        num_symbols : int, optional
            Number of symbols ``V``.
        dim : int, optional
            Must be ``None`` or 1: categorical observations have one value per step.

        Returns
        -------
        Categorical
        """
        if dim is not None and dim != 1:
            raise OptionError("dim", f"categorical emissions have one value per step, got {dim}")
        if num_symbols is None:
            if data is None:
                raise OptionError("num_symbols", "expected the number of symbols V")
            return cls.from_data(data)
        if data is not None and data.dim != 1:
            raise ValueError(
                f"data: expected one value per step for categorical emissions, got {data.dim}"
            )
        names = None if data is None else data.symbols
        if names is not None and num_symbols != len(names):
            raise ValueError(f"num_symbols: the data name {len(names)} symbols, got {num_symbols}")
        return cls(num_symbols=num_symbols, symbols=names)

    @classmethod
    def from_data(cls, data: SequencesLike) -> Categorical:
        """Categorical emissions over the symbols seen in ``data``: ``V`` = largest symbol + 1.

        Parameters
        ----------
        data : Sequences or array-like
            Integer symbols, one per step (missing values are skipped).

        Returns
        -------
        Categorical
            With ``num_symbols = max(largest observed symbol + 1, 2)`` (2 when nothing is
            observed), or the data's named symbols (:attr:`hmm_pyro.Sequences.symbols`).
            Whether every symbol is ``>= 0`` is checked when the model meets the data
            (:meth:`validate_data`).

        Raises
        ------
        ValueError
            If an observed value is not a whole number, or a step holds more than one value.

        Examples
        --------
        >>> Categorical.from_data([[0, 3, 1], [2]]).num_symbols
        4
        """
        data = Sequences(data)
        if data.symbols is not None:
            return cls(num_symbols=len(data.symbols), symbols=data.symbols)
        observed = data.values[data.observed]
        if not bool((observed == observed.round()).all()):
            raise ValueError("data: expected integer symbols for categorical emissions")
        if data.dim != 1:
            raise ValueError(
                f"data: expected one value per step for categorical emissions, got {data.dim}"
            )
        top = int(observed.max()) if observed.numel() else 1
        return cls(num_symbols=max(top + 1, 2))

    # ---- potential (NUTS/MAP)
    def potential_coordinates(self) -> dict[str, str]:
        """``{"B": "simplex"}``: each row of ``B`` by stick-breaking."""
        return {"B": "simplex"}

    def potential_terms(
        self, prior: Prior, num_states: int, dtype: torch.dtype, data: Sequences
    ) -> PotentialTerms:
        """Dirichlet rows of ``B``; the sequences as time-major symbols (:class:`SymbolLanes`).

        The numba log joint looks the emission rows up per symbol
        (:func:`~hmm_pyro.kernels._numba.potentials.categorical_potential`).
        """
        concentration = prior.resolve_emission("B", num_states, self.num_symbols, dtype)
        lanes = data.cached(("symbol_lanes", self.num_symbols), lambda: self._lanes(data))
        return PotentialTerms(
            _numba.categorical_potential,
            (concentration.numpy(), lanes.lanes, lanes.lane_lengths),
            dirichlet_log_normalizer(concentration),
        )
