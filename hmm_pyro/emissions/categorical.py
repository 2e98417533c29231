"""Categorical emissions: ``y_t | z_t = k ~ Categorical(B[k])`` over ``V`` symbols."""

from __future__ import annotations

from typing import Any

import pyro.distributions as dist
import torch
from pyro.ops.special import safe_log

from hmm_pyro._random import draw_categorical
from hmm_pyro._validation import check_int
from hmm_pyro.data import Sequences
from hmm_pyro.emissions.base import Emission, Params
from hmm_pyro.priors import Prior

__all__ = ["Categorical"]

_SIMPLEX_ATOL = 1e-6


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

    def _log_prob_elementwise(self, params: Params, values: torch.Tensor) -> torch.Tensor:
        log_b = safe_log(params["B"]).transpose(-1, -2)  # (..., V, K)
        symbols = values[..., 0].long()  # (N, T)
        return log_b[..., symbols, :].unsqueeze(-1)

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

    def _check_param_values(self, name: str, value: torch.Tensor) -> None:
        if (value < 0).any() or not torch.allclose(
            value.sum(-1), torch.ones((), dtype=value.dtype), atol=_SIMPLEX_ATOL
        ):
            raise ValueError(
                f"params[{name!r}]: expected rows on the probability simplex (non-negative, "
                f"summing to 1 within {_SIMPLEX_ATOL}), "
                f"got row sums {value.sum(-1).flatten()[:5].tolist()}"
            )
