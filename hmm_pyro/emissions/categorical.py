"""Categorical emissions: ``y_t | z_t = k ~ Categorical(B[k])`` over ``V`` symbols."""

from __future__ import annotations

from typing import Any

import pyro.distributions as dist
import torch
from pyro.ops.special import safe_log

from hmm_pyro import kernels
from hmm_pyro._random import draw_categorical
from hmm_pyro._validation import check_int
from hmm_pyro.data import Sequences
from hmm_pyro.emissions.base import Emission, Params
from hmm_pyro.kernels import categorical as categorical_kernel
from hmm_pyro.priors import Prior

__all__ = ["Categorical"]

_SIMPLEX_ATOL = 1e-6
_ONE_HOT_LIMIT = 2**24
"""Largest ``N * T * V`` for which the data are one-hot encoded (128 MiB in float64)."""


class Categorical(Emission):
    """Categorical emissions over symbols ``0 .. V-1``; parameter ``B`` of shape ``(K, V)``.

    Each row ``B[k]`` has the prior ``Dirichlet(prior.B[k])``.

    Parameters
    ----------
    num_symbols : int
        Number of symbols ``V >= 2``.

    Examples
    --------
    >>> Categorical(num_symbols=6).param_shapes(num_states=2)
    {'B': (2, 6)}
    """

    family = "categorical"
    param_names = ("B",)

    def __init__(self, num_symbols: int) -> None:
        self.num_symbols = check_int("num_symbols", num_symbols, minimum=2)

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
        """``{"family": "categorical", "num_symbols": V}``."""
        return {"family": self.family, "num_symbols": self.num_symbols}

    def validate_data(self, data: Sequences) -> None:
        """Require integer symbols in ``[0, V)``."""
        self._check_dim(data)
        values = self._observed_values(data)
        if values.numel() == 0:
            return
        if not torch.equal(values, values.round()):
            bad = values[values != values.round()][0].item()
            raise ValueError(f"data: expected integer symbols for {self!r}, got {bad}")
        low, high = int(values.min()), int(values.max())
        if low < 0 or high >= self.num_symbols:
            raise ValueError(
                f"data: expected symbols in [0, {self.num_symbols - 1}] for {self!r}, "
                f"got values in [{low}, {high}]"
            )

    def prior_distributions(
        self, prior: Prior, num_states: int, dtype: torch.dtype
    ) -> dict[str, dist.TorchDistribution]:
        """``B[k] ~ Dirichlet(prior.B[k])``, one event of shape ``(K, V)``."""
        concentration = prior.resolve_emission("B", num_states, self.num_symbols, dtype)
        return {"B": dist.Dirichlet(concentration).to_event(1)}

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
        self, log_pi: torch.Tensor, log_A: torch.Tensor, params: Params, data: Sequences
    ) -> torch.Tensor:
        """Log marginal likelihood of each sequence: ``(..., N)``.

        With unbatched CPU parameters the emission rows are looked up per symbol inside the
        numba forward-backward (:func:`hmm_pyro.kernels.categorical_log_likelihood`); no
        ``(N, T, K)`` table is built. Otherwise as :meth:`Emission.sequence_log_likelihood`.
        """
        log_b = self._log_b(params)
        if not categorical_kernel.shared_parameters(log_pi, log_A, log_b):
            return super().sequence_log_likelihood(log_pi, log_A, params, data)
        lanes = data.cached(("symbol_lanes", self.num_symbols), lambda: self._lanes(data))
        return kernels.categorical_log_likelihood(log_pi, log_A, log_b, lanes)

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
    def from_data(cls, data: Any) -> Categorical:
        """Categorical emissions over the symbols seen in ``data``: ``V`` = largest symbol + 1.

        Parameters
        ----------
        data : Sequences or array-like
            Integer symbols, one per step (missing values are skipped).

        Returns
        -------
        Categorical
            With ``num_symbols = max(largest observed symbol + 1, 2)`` (2 when nothing is
            observed). Whether every symbol is ``>= 0`` is checked when the model meets the
            data (:meth:`validate_data`).

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
        observed = data.values[data.observed]
        if not bool((observed == observed.round()).all()):
            raise ValueError("data: expected integer symbols for categorical emissions")
        if data.dim != 1:
            raise ValueError(
                f"data: expected one value per step for categorical emissions, got {data.dim}"
            )
        top = int(observed.max()) if observed.numel() else 1
        return cls(num_symbols=max(top + 1, 2))
