"""Priors of the regression coefficients, as Pyro distributions with their own supports.

- :class:`OffDiagonalNormal`: transition coefficients ``beta_A (K, K, 1 + P)`` whose diagonal
  ``beta_A[i, i, :]`` is zero (staying is each row's reference category); independent Normals
  on the off-diagonal entries.
- :class:`SumToZeroNormal`: initial-distribution coefficients ``beta_pi (K, 1 + Q)`` whose
  columns sum to zero over the states; ``beta_pi = H u`` with ``H`` an orthonormal basis of
  the vectors that sum to zero (Helmert contrasts) and ``u ~ Normal(0, scale)``: the prior is
  the same for every labelling of the states.

Both supports are registered with ``torch.distributions.biject_to`` (the transforms
:class:`OffDiagonalTransform` and :class:`SumToZeroTransform`, of log-Jacobian zero), so Pyro's
autoguides and the NUTS/MAP coordinates of :mod:`hmm_pyro.inference.coordinates` reach every
value of them from unconstrained coordinates.
"""

from __future__ import annotations

import math

import torch
from pyro.distributions import TorchDistribution, constraints
from torch.distributions import biject_to, transform_to
from torch.distributions.transforms import Transform

__all__ = [
    "OffDiagonalNormal",
    "OffDiagonalTransform",
    "SumToZeroNormal",
    "SumToZeroTransform",
    "helmert_basis",
    "off_diagonal",
    "sum_to_zero",
]

_SUM_ATOL = 1e-8
"""Tolerance of a zero column sum, relative to the column's largest magnitude (at least 1)."""


def helmert_basis(num_states: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``(K, K - 1)`` orthonormal columns, each summing to zero (Helmert contrasts)."""
    basis = torch.zeros(num_states, max(num_states - 1, 0), dtype=dtype)
    for m in range(num_states - 1):
        basis[: m + 1, m] = 1.0
        basis[m + 1, m] = -(m + 1.0)
        basis[:, m] /= math.sqrt((m + 1.0) * (m + 2.0))
    return basis


class _OffDiagonal(constraints.Constraint):
    """Real ``(..., K, K, P)`` arrays with ``value[..., i, i, :] == 0``."""

    event_dim = 3

    def __init__(self, num_states: int) -> None:
        self.num_states = num_states
        super().__init__()

    def check(self, value: torch.Tensor) -> torch.Tensor:
        diagonal = value.diagonal(dim1=-3, dim2=-2)  # (..., P, K)
        finite = torch.isfinite(value).flatten(-3).all(-1)
        return finite & (diagonal == 0).flatten(-2).all(-1)


class _SumToZero(constraints.Constraint):
    """Real ``(..., K, Q)`` arrays whose columns sum to zero over the states."""

    event_dim = 2

    def __init__(self, num_states: int) -> None:
        self.num_states = num_states
        super().__init__()

    def check(self, value: torch.Tensor) -> torch.Tensor:
        finite = torch.isfinite(value).flatten(-2).all(-1)
        size = value.detach().abs().amax(-2).clamp(min=1.0)
        return finite & (value.sum(-2).abs() <= _SUM_ATOL * size).all(-1)


def off_diagonal(num_states: int) -> constraints.Constraint:
    """The support of :class:`OffDiagonalNormal` for ``K`` states."""
    return _OffDiagonal(num_states)


def sum_to_zero(num_states: int) -> constraints.Constraint:
    """The support of :class:`SumToZeroNormal` for ``K`` states."""
    return _SumToZero(num_states)


class OffDiagonalTransform(Transform):
    """``(..., K, K - 1, P)`` reals to ``(..., K, K, P)`` with a zero diagonal (and back).

    Row ``i`` of the input holds the entries ``j != i`` in order.
    """

    domain = constraints.independent(constraints.real, 3)
    bijective = True

    def __init__(self, num_states: int, cache_size: int = 0) -> None:
        super().__init__(cache_size=cache_size)
        self.num_states = num_states
        columns = torch.arange(num_states)
        # column j of row i comes from input column j - (j > i); the diagonal from a zero column
        source = columns - (columns[None, :] > columns[:, None]).long()
        self._source = torch.where(columns[None, :] == columns[:, None], num_states - 1, source)
        rows, cols = torch.nonzero(~torch.eye(num_states, dtype=torch.bool), as_tuple=True)
        self._rows, self._cols = rows, cols

    @property
    def codomain(self) -> constraints.Constraint:  # type: ignore[override]
        """Arrays with a zero diagonal."""
        return off_diagonal(self.num_states)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OffDiagonalTransform) and other.num_states == self.num_states

    def __hash__(self) -> int:
        return hash((type(self), self.num_states))

    def with_cache(self, cache_size: int = 1) -> OffDiagonalTransform:
        """The same transform with another cache size."""
        return (
            self
            if self._cache_size == cache_size
            else OffDiagonalTransform(self.num_states, cache_size)
        )

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        padded = torch.cat([x, torch.zeros_like(x[..., :1, :])], dim=-2)  # (..., K, K, P)
        rows = torch.arange(self.num_states)[:, None]
        return padded[..., rows, self._source, :]

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        picked = y[..., self._rows, self._cols, :]  # (..., K (K - 1), P)
        return picked.reshape(*y.shape[:-3], self.num_states, self.num_states - 1, y.shape[-1])

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Zero: the map copies numbers."""
        return torch.zeros(x.shape[:-3], dtype=x.dtype, device=x.device)

    def forward_shape(self, shape: torch.Size) -> torch.Size:
        """``(..., K, K - 1, P)`` to ``(..., K, K, P)``."""
        return torch.Size((*shape[:-3], self.num_states, self.num_states, shape[-1]))

    def inverse_shape(self, shape: torch.Size) -> torch.Size:
        """``(..., K, K, P)`` to ``(..., K, K - 1, P)``."""
        return torch.Size((*shape[:-3], self.num_states, self.num_states - 1, shape[-1]))


class SumToZeroTransform(Transform):
    """``(..., K - 1, Q)`` reals ``u`` to ``H u`` ``(..., K, Q)``, columns summing to zero.

    ``H`` is :func:`helmert_basis`: orthonormal, so the inverse is ``H^T y`` and the map
    preserves lengths (log-Jacobian zero with respect to the measure of the subspace).
    """

    domain = constraints.independent(constraints.real, 2)
    bijective = True

    def __init__(self, num_states: int, cache_size: int = 0) -> None:
        super().__init__(cache_size=cache_size)
        self.num_states = num_states
        self._basis = helmert_basis(num_states)

    @property
    def codomain(self) -> constraints.Constraint:  # type: ignore[override]
        """Arrays whose columns sum to zero."""
        return sum_to_zero(self.num_states)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SumToZeroTransform) and other.num_states == self.num_states

    def __hash__(self) -> int:
        return hash((type(self), self.num_states))

    def with_cache(self, cache_size: int = 1) -> SumToZeroTransform:
        """The same transform with another cache size."""
        return (
            self
            if self._cache_size == cache_size
            else SumToZeroTransform(self.num_states, cache_size)
        )

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        return self._basis.to(x.dtype) @ x

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        return self._basis.to(y.dtype).T @ y

    def log_abs_det_jacobian(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Zero: an isometry onto the vectors that sum to zero."""
        return torch.zeros(x.shape[:-2], dtype=x.dtype, device=x.device)

    def forward_shape(self, shape: torch.Size) -> torch.Size:
        """``(..., K - 1, Q)`` to ``(..., K, Q)``."""
        return torch.Size((*shape[:-2], self.num_states, shape[-1]))

    def inverse_shape(self, shape: torch.Size) -> torch.Size:
        """``(..., K, Q)`` to ``(..., K - 1, Q)``."""
        return torch.Size((*shape[:-2], self.num_states - 1, shape[-1]))


@biject_to.register(_OffDiagonal)
@transform_to.register(_OffDiagonal)
def _off_diagonal_transform(constraint: _OffDiagonal) -> Transform:
    return OffDiagonalTransform(constraint.num_states)


@biject_to.register(_SumToZero)
@transform_to.register(_SumToZero)
def _sum_to_zero_transform(constraint: _SumToZero) -> Transform:
    return SumToZeroTransform(constraint.num_states)


class OffDiagonalNormal(TorchDistribution):
    """Independent ``Normal(loc, scale)`` entries off the diagonal, zeros on it.

    Parameters
    ----------
    loc, scale : torch.Tensor
        ``(K, K, P)``; the diagonal entries are not used.
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}  # noqa: RUF012
    has_rsample = True

    def __init__(
        self, loc: torch.Tensor, scale: torch.Tensor, validate_args: bool | None = None
    ) -> None:
        self.loc, self.scale = torch.broadcast_tensors(loc, scale)
        num_states = self.loc.shape[-2]
        self._mask = (~torch.eye(num_states, dtype=torch.bool))[..., None]
        super().__init__(torch.Size(), self.loc.shape[-3:], validate_args=validate_args)

    @property
    def support(self) -> constraints.Constraint:  # type: ignore[override]
        """Arrays with a zero diagonal."""
        return off_diagonal(self.loc.shape[-2])

    @property
    def mean(self) -> torch.Tensor:
        """``loc`` off the diagonal, zero on it."""
        return torch.where(self._mask, self.loc, 0.0)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:  # noqa: B008
        """Draws with a zero diagonal."""
        shape = self._extended_shape(sample_shape)
        noise = torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return torch.where(self._mask, self.loc + self.scale * noise, 0.0)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Sum of the off-diagonal Normal log densities (the diagonal must be zero)."""
        if self._validate_args:
            self._validate_sample(value)
        terms = torch.distributions.Normal(self.loc, self.scale).log_prob(value)
        return torch.where(self._mask, terms, 0.0).flatten(-3).sum(-1)

    def expand(self, batch_shape: torch.Size, _instance: object = None) -> OffDiagonalNormal:
        """Only the empty batch shape (the coefficients are never inside a plate)."""
        if tuple(batch_shape) != ():
            raise ValueError("batch_shape: OffDiagonalNormal has no batch dimensions")
        return self


class SumToZeroNormal(TorchDistribution):
    """``H u`` with ``u ~ Normal(0, scale)`` in each of ``K - 1`` rows: columns sum to zero.

    Parameters
    ----------
    scale : torch.Tensor
        ``(Q,)`` per-column scale.
    num_states : int
        ``K``.
    """

    arg_constraints = {"scale": constraints.positive}  # noqa: RUF012
    has_rsample = True

    def __init__(
        self, scale: torch.Tensor, num_states: int, validate_args: bool | None = None
    ) -> None:
        self.scale = scale
        self.num_states = num_states
        self._transform = SumToZeroTransform(num_states)
        event = torch.Size((num_states, scale.shape[-1]))
        super().__init__(torch.Size(), event, validate_args=validate_args)

    @property
    def support(self) -> constraints.Constraint:  # type: ignore[override]
        """Arrays whose columns sum to zero."""
        return sum_to_zero(self.num_states)

    @property
    def mean(self) -> torch.Tensor:
        """Zero."""
        return torch.zeros(self.event_shape, dtype=self.scale.dtype)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:  # noqa: B008
        """Draws ``H u``."""
        shape = (*sample_shape, self.num_states - 1, self.scale.shape[-1])
        noise = torch.randn(shape, dtype=self.scale.dtype, device=self.scale.device)
        return self._transform(noise * self.scale)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Normal log density of the coordinates ``u = H^T value``."""
        if self._validate_args:
            self._validate_sample(value)
        coordinates = self._transform.inv(value)
        terms = torch.distributions.Normal(0.0, self.scale).log_prob(coordinates)
        return terms.flatten(-2).sum(-1)

    def expand(self, batch_shape: torch.Size, _instance: object = None) -> SumToZeroNormal:
        """Only the empty batch shape (the coefficients are never inside a plate)."""
        if tuple(batch_shape) != ():
            raise ValueError("batch_shape: SumToZeroNormal has no batch dimensions")
        return self
