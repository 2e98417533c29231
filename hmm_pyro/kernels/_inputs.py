"""Shape checks and broadcasting shared by every kernel.

Every kernel takes ``log_pi (..., K)``, ``log_A (..., K, K)``, ``log_lik (..., T, K)`` and an
optional ``lengths (...)``; the leading dimensions broadcast against each other (sequences,
posterior draws, ...). Steps ``t >= lengths`` are padding and are ignored. With
``time_varying=True``, ``log_A`` is ``(..., T, K, K)``: ``log_A[..., t, :, :]`` moves the chain
from step ``t`` to step ``t + 1`` (a non-homogeneous chain); the matrix of the last step of
each sequence, and of its padded steps, is not used. :func:`prepare_regression_inputs` checks the
inputs of :func:`~hmm_pyro.kernels.regression_log_likelihood` (covariates and coefficients in
place of ``log_A``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from hmm_pyro._validation import describe


class KernelInputs(NamedTuple):
    """Inputs broadcast to one batch shape, and their lengths (the step mask on request)."""

    log_pi: torch.Tensor
    log_A: torch.Tensor
    log_lik: torch.Tensor
    lengths: torch.Tensor
    time_varying: bool = False

    @property
    def valid(self) -> torch.Tensor:
        """The boolean mask of valid steps ``(..., T)``, built at each access.

        Only the torch routes use it: the numba route passes the lengths, and building the mask
        for one sequence of 10^6 steps took 25 ms (measured), half of its value and gradient.
        """
        steps = torch.arange(self.log_lik.shape[-2], device=self.log_lik.device)
        return steps < self.lengths.unsqueeze(-1)

    def into(self, t: int) -> torch.Tensor:
        """The log transition matrix ``(..., K, K)`` that moves the chain into step ``t >= 1``."""
        return self.log_A[..., t - 1, :, :] if self.time_varying else self.log_A

    def into_steps(self, start: int, stop: int) -> torch.Tensor:
        """The matrices into steps ``start .. stop - 1``: ``(..., stop - start, K, K)``."""
        if self.time_varying:
            return self.log_A[..., start - 1 : stop - 1, :, :]
        return self.log_A.unsqueeze(-3)


def _check_tensor(name: str, value: object, min_dim: int) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {describe(value)}")
    if value.dim() < min_dim:
        raise ValueError(f"{name}: expected at least {min_dim} dimensions, got {describe(value)}")
    if not value.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got {describe(value)}")
    return value


def broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """The broadcast of ``shapes`` (``torch.broadcast_shapes``' rule in plain Python).

    Called on every kernel call with a few short shapes, where torch's version (symbolic-shape
    guards for tracing) costs tens of microseconds. Raises ``RuntimeError`` as torch's does.
    """
    ndim = max((len(shape) for shape in shapes), default=0)
    result = [1] * ndim
    for shape in shapes:
        for index, size in enumerate(shape, start=ndim - len(shape)):
            if size == 1 or size == result[index]:
                continue
            if result[index] != 1:
                raise RuntimeError(f"shapes {[tuple(item) for item in shapes]} do not broadcast")
            result[index] = size
    return tuple(result)


def _check_states(log_pi: torch.Tensor, log_lik: torch.Tensor) -> tuple[int, int]:
    """``(T, K)`` of ``log_lik``, at least one each, with ``log_pi``'s last dimension ``K``."""
    num_steps, num_states = log_lik.shape[-2:]
    if num_steps < 1 or num_states < 1:
        raise ValueError(
            f"log_lik: expected T >= 1 steps and K >= 1 states, got {describe(log_lik)}"
        )
    if log_pi.shape[-1] != num_states:
        raise ValueError(
            f"log_pi: expected last dimension K={num_states} (from log_lik), got {describe(log_pi)}"
        )
    return num_steps, num_states


def _check_lengths(lengths: object, num_steps: int, device: torch.device) -> torch.Tensor:
    """``lengths`` as a long tensor of values in ``[1, T]`` (all ``T`` when ``None``)."""
    if lengths is None:
        return torch.full((), num_steps, dtype=torch.long, device=device)
    if not isinstance(lengths, torch.Tensor):
        try:
            lengths = torch.as_tensor(lengths)
        except (TypeError, ValueError, RuntimeError) as error:
            raise TypeError(
                f"lengths: expected an integer tensor, got {describe(lengths)}"
            ) from error
    if lengths.is_floating_point() or lengths.dtype == torch.bool:
        raise TypeError(f"lengths: expected an integer tensor, got {describe(lengths)}")
    if lengths.numel() and (int(lengths.min()) < 1 or int(lengths.max()) > num_steps):
        raise ValueError(
            f"lengths: expected values in [1, {num_steps}] (T from log_lik), "
            f"got min {int(lengths.min())} and max {int(lengths.max())}"
        )
    return lengths.to(device=device, dtype=torch.long)


def prepare_inputs(
    log_pi: torch.Tensor,
    log_A: torch.Tensor,
    log_lik: torch.Tensor,
    lengths: torch.Tensor | None = None,
    time_varying: bool = False,
) -> KernelInputs:
    """Check and broadcast kernel inputs.

    Parameters
    ----------
    log_pi : torch.Tensor
        ``(..., K)`` log initial distribution: the state that emits the first observation.
    log_A : torch.Tensor
        ``(..., K, K)`` log transition matrix, ``log_A[..., i, j] = log P(z_t = j | z_{t-1} = i)``;
        with ``time_varying``, ``(..., T, K, K)`` with
        ``log_A[..., t, i, j] = log P(z_{t+1} = j | z_t = i)``.
    log_lik : torch.Tensor
        ``(..., T, K)`` log emission likelihood of each step under each state.
    lengths : torch.Tensor, optional
        ``(...)`` integer number of valid steps per sequence, each in ``[1, T]``.
    time_varying : bool
        ``log_A`` holds one matrix per step.

    Returns
    -------
    KernelInputs
        Broadcast inputs and lengths (``valid``: the ``(..., T)`` mask of valid steps).
    """
    if not isinstance(time_varying, bool):
        raise TypeError(f"time_varying: expected True or False, got {describe(time_varying)}")
    log_pi = _check_tensor("log_pi", log_pi, 1)
    log_A = _check_tensor("log_A", log_A, 3 if time_varying else 2)
    log_lik = _check_tensor("log_lik", log_lik, 2)
    num_steps, num_states = _check_states(log_pi, log_lik)
    matrix = (num_steps, num_states, num_states) if time_varying else (num_states, num_states)
    if log_A.shape[-len(matrix) :] != matrix:
        what = "last three dimensions (T, K, K) = " if time_varying else "last two dimensions "
        raise ValueError(f"log_A: expected {what}{matrix}, got {describe(log_A)}")
    lengths = _check_lengths(lengths, num_steps, log_lik.device)
    try:
        batch = broadcast_shapes(
            log_pi.shape[:-1], log_A.shape[: -len(matrix)], log_lik.shape[:-2], lengths.shape
        )
    except RuntimeError as error:
        raise ValueError(
            "log_pi, log_A, log_lik, lengths: leading (batch) dimensions do not broadcast: "
            f"{tuple(log_pi.shape[:-1])}, {tuple(log_A.shape[: -len(matrix)])}, "
            f"{tuple(log_lik.shape[:-2])}, {tuple(lengths.shape)}"
        ) from error
    dtype = torch.promote_types(torch.promote_types(log_pi.dtype, log_A.dtype), log_lik.dtype)
    log_pi = log_pi.to(dtype).expand(*batch, num_states)
    log_A = log_A.to(dtype).expand(*batch, *matrix)
    log_lik = log_lik.to(dtype).expand(*batch, num_steps, num_states)
    lengths = lengths.expand(batch)
    return KernelInputs(log_pi, log_A, log_lik, lengths, time_varying)


class RegressionInputs(NamedTuple):
    """Inputs of :func:`~hmm_pyro.kernels.regression_log_likelihood`, broadcast.

    ``log_pi (..., N, K)``, ``coefficients (..., K, K, P)`` (the batch shape without its last,
    sequences, dimension), ``design (..., N, T, P)`` as given (its leading dimensions
    broadcast against the batch shape), ``log_lik (..., N, T, K)``, ``lengths (..., N)``.
    """

    log_pi: torch.Tensor
    coefficients: torch.Tensor
    design: torch.Tensor
    log_lik: torch.Tensor
    lengths: torch.Tensor


def prepare_regression_inputs(
    log_pi: torch.Tensor,
    coefficients: torch.Tensor,
    design: torch.Tensor,
    log_lik: torch.Tensor,
    lengths: torch.Tensor | None = None,
) -> RegressionInputs:
    """Check and broadcast the inputs of a chain whose transition rows are regressions.

    See :func:`~hmm_pyro.kernels.regression_log_likelihood` for the shapes: the coefficients'
    leading dimensions stand in front of the sequences' dimension.
    """
    log_pi = _check_tensor("log_pi", log_pi, 1)
    coefficients = _check_tensor("coefficients", coefficients, 3)
    design = _check_tensor("design", design, 2)
    log_lik = _check_tensor("log_lik", log_lik, 2)
    num_steps, num_states = _check_states(log_pi, log_lik)
    num_covariates = design.shape[-1]
    if design.shape[-2] != num_steps or num_covariates < 1:
        raise ValueError(
            f"design: expected last two dimensions (T={num_steps}, P >= 1) (T from log_lik), "
            f"got {describe(design)}"
        )
    if coefficients.shape[-3:] != (num_states, num_states, num_covariates):
        raise ValueError(
            "coefficients: expected last three dimensions (K, K, P) = "
            f"{(num_states, num_states, num_covariates)} (K from log_lik, P from design), "
            f"got {describe(coefficients)}"
        )
    lengths = _check_lengths(lengths, num_steps, log_lik.device)
    shapes = {
        "log_pi": log_pi.shape[:-1],
        "coefficients": (*coefficients.shape[:-3], 1),
        "design": design.shape[:-2],
        "log_lik": log_lik.shape[:-2],
        "lengths": lengths.shape,
    }
    try:
        batch = broadcast_shapes(*shapes.values())
    except RuntimeError as error:
        raise ValueError(
            "log_pi, coefficients, design, log_lik, lengths: leading (batch) dimensions do not "
            "broadcast (the coefficients' in front of the sequences' dimension): "
            + ", ".join(str(tuple(shape)) for shape in shapes.values())
        ) from error
    dtype = torch.promote_types(log_pi.dtype, log_lik.dtype)
    dtype = torch.promote_types(torch.promote_types(dtype, coefficients.dtype), design.dtype)
    return RegressionInputs(
        log_pi.to(dtype).expand(*batch, num_states),
        coefficients.to(dtype).expand(*batch[:-1], num_states, num_states, num_covariates),
        design.to(dtype),
        log_lik.to(dtype).expand(*batch, num_steps, num_states),
        lengths.expand(batch),
    )
