"""``Prior``: hyperparameters of every prior in the model, validated and resolved to tensors.

- ``pi ~ Dirichlet(pi)``
- ``A[k] ~ Dirichlet(A[k] + stickiness[k] * e_k)`` (sticky transitions, Fox et al. 2011)
- categorical emissions: ``B[k] ~ Dirichlet(B[k])``
- Gaussian emissions: ``mu[k] ~ Normal(mu_loc, mu_scale)``,
  ``sigma[k]**2 ~ InverseGamma(variance_shape, variance_scale)`` (semi-conjugate)
- Poisson emissions: ``rate[k] ~ Gamma(rate_shape, rate_rate)``
- gamma emissions: ``concentration[k] ~ Gamma(concentration_shape, concentration_rate)``,
  ``rate[k] ~ Gamma(rate_shape, rate_rate)``
- von Mises emissions: ``mu[k] ~ VonMises(angle_loc, angle_concentration)`` (uniform on the
  circle at concentration 0), ``kappa[k] ~ Gamma(kappa_shape, kappa_rate)``
- multivariate normal emissions: ``mu`` and ``sigma`` as the Gaussian's (per coordinate),
  ``corr[k] ~ LKJ(D, lkj_concentration)``
- negative binomial emissions: the Poisson prior on the mean ``rate``, and
  ``dispersion[k] ~ Gamma(dispersion_shape, dispersion_rate)``
- Student-t emissions: the Gaussian priors on ``mu`` and ``sigma``, and
  ``df[k] ~ Gamma(df_shape, df_rate)``

:func:`describe_prior` gives the short text that labels a prior in tables.

Layer rule: ``priors`` imports ``data``, ``kernels`` and the private utilities at most;
``emissions`` and everything above import it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hmm_pyro._validation import describe

__all__ = ["MAX_MAGNITUDE", "Prior", "describe_prior"]

ArrayLike = Any

MAX_MAGNITUDE = 1e100
"""Largest absolute value of a hyperparameter. Beyond it the prior densities overflow (a
Dirichlet concentration of 1e308 gives a NaN log density); such a prior is a point mass in
all but name."""


def _as_array(name: str, value: ArrayLike) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, (bool, np.bool_, str, bytes)) or value is None:
        raise TypeError(f"{name}: expected a number or array of numbers, got {describe(value)}")
    try:
        kind = np.asarray(value).dtype.kind
    except (TypeError, ValueError):
        kind = "O"  # ragged: the float conversion below reports it
    if kind not in "iuf" and kind != "O":  # bool, complex, strings, dates
        raise TypeError(f"{name}: expected numeric values (real numbers), got {describe(value)}")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{name}: expected a number or array of numbers, got {describe(value)}"
        ) from error
    items = np.asarray(value, dtype=object).flat if kind == "O" else ()
    if any(isinstance(item, (bool, np.bool_, str, bytes)) for item in items):
        raise TypeError(f"{name}: expected a number or array of numbers, got {describe(value)}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: expected finite values, got {describe(array.tolist())}")
    if array.size and np.abs(array).max() > MAX_MAGNITUDE:
        raise ValueError(
            f"{name}: expected values of magnitude at most {MAX_MAGNITUDE:g}, "
            f"got {np.abs(array).max():g}"
        )
    return array


def _check_sign(name: str, array: np.ndarray, sign: str) -> None:
    if sign == "positive" and not (array > 0).all():
        raise ValueError(f"{name}: expected values > 0, got {array.tolist()}")
    if sign == "nonnegative" and not (array >= 0).all():
        raise ValueError(f"{name}: expected values >= 0, got {array.tolist()}")


def _broadcast(name: str, array: np.ndarray, shape: tuple[int, ...], allowed: str) -> np.ndarray:
    """Broadcast ``array`` to ``shape``; ``allowed`` names the shapes for the error message.

    A 1-D ``(shape[0],)`` array for a 2-D ``shape`` gives one value per row (checked first: for a
    square ``shape`` it would otherwise broadcast as one value per column).
    """
    if array.ndim == 1 and len(shape) == 2 and array.shape == (shape[0],):
        return np.broadcast_to(array[:, None], shape).copy()
    if array.ndim > len(shape) or array.shape != shape[len(shape) - array.ndim :]:
        raise ValueError(f"{name}: expected {allowed}, got shape {array.shape}")
    return np.broadcast_to(array, shape).copy()


@dataclass(frozen=True)
class Prior:
    """Prior hyperparameters of an HMM.

    Parameters
    ----------
    pi : float or array_like
        Dirichlet concentration of the initial distribution: scalar or ``(K,)``.
    A : float or array_like
        Dirichlet concentration of each transition row: scalar, ``(K,)`` (one value per row) or
        ``(K, K)`` (row ``k`` is the concentration of ``A[k]``).
    B : float or array_like
        Dirichlet concentration of each emission row (categorical emissions): scalar, ``(V,)``
        (shared by all states) or ``(K, V)``.
    stickiness : float or array_like
        ``kappa >= 0`` added to the diagonal of the transition concentration: scalar or ``(K,)``.
    mu_loc, mu_scale : float or array_like
        Normal prior of Gaussian means: scalar, ``(K,)`` or ``(K, D)`` (per state and dimension).
        Different per-state locations break the label symmetry of the prior.
    variance_shape, variance_scale : float or array_like
        Inverse-gamma prior of Gaussian variances ``sigma**2``: scalar, ``(K,)`` or ``(K, D)``.
    rate_shape, rate_rate : float or array_like
        Gamma(shape, rate) prior of Poisson rates, negative binomial means and the rates
        (inverse scales) of gamma emissions: scalar, ``(K,)`` or ``(K, D)``.
    concentration_shape, concentration_rate : float or array_like
        Gamma(shape, rate) prior of the concentration (shape) of gamma emissions: scalar,
        ``(K,)`` or ``(K, D)``.
    angle_loc : float or array_like
        Mean direction (radians) of the von Mises prior of von Mises mean directions ``mu``:
        scalar, ``(K,)`` or ``(K, D)``.
    angle_concentration : float or array_like
        Concentration of that prior, ``>= 0`` (0: uniform on the circle): scalar, ``(K,)`` or
        ``(K, D)``.
    kappa_shape, kappa_rate : float or array_like
        Gamma(shape, rate) prior of von Mises concentrations ``kappa``: scalar, ``(K,)`` or
        ``(K, D)``.
    lkj_concentration : float or array_like
        LKJ concentration ``eta`` of the correlation matrices of multivariate normal emissions
        (1: uniform over correlation matrices; above 1 favours weak correlations): scalar or
        ``(K,)``.
    dispersion_shape, dispersion_rate : float or array_like
        Gamma(shape, rate) prior of the negative binomial dispersion ``r`` (variance
        ``rate + rate**2 / r``): scalar, ``(K,)`` or ``(K, D)``.
    df_shape, df_rate : float or array_like
        Gamma(shape, rate) prior of the Student-t degrees of freedom: scalar, ``(K,)`` or
        ``(K, D)``.

    Raises
    ------
    TypeError
        For a value that is not a real number or array of real numbers (``None``, booleans,
        strings, complex numbers, ragged lists).
    ValueError
        For NaN or infinite values, values of magnitude above :data:`MAX_MAGNITUDE`, and
        non-positive values (negative for ``stickiness`` and ``angle_concentration``; ``mu_loc``
        and ``angle_loc`` may be any real numbers).
        Shapes are checked against the model when an ``HMM`` is built.

    Notes
    -----
    The Gaussian defaults (``mu ~ N(0, 10)``, ``sigma**2 ~ InvGamma(2, 1)``, prior mean
    variance 1) suit data on a unit-to-tens scale; rescale the data or set them otherwise.
    The Poisson default ``Gamma(1, 0.1)`` has mean 10 and standard deviation 10; the gamma
    emissions' concentration and rate and the von Mises ``kappa`` have the same default prior
    (an exponential with mean 10: weak on a unit-to-tens scale). The von Mises mean directions
    are uniform on the circle by default, the correlation matrices uniform (LKJ 1). The
    dispersion default ``Gamma(2, 0.1)`` (mean 20, mode 10) keeps ``r`` off 0, where the law
    degenerates, and lets the data pull it up towards the Poisson limit; the degrees-of-freedom
    default ``Gamma(2, 0.1)`` is weakly informative (docs/emissions.md#student-t).

    Examples
    --------
    >>> sticky = Prior(A=1.0, stickiness=10.0)
    >>> sticky.resolve_transitions(2)
    tensor([[11.,  1.],
            [ 1., 11.]], dtype=torch.float64)
    """

    pi: ArrayLike = 1.0
    A: ArrayLike = 1.0
    B: ArrayLike = 1.0
    stickiness: ArrayLike = 0.0
    mu_loc: ArrayLike = 0.0
    mu_scale: ArrayLike = 10.0
    variance_shape: ArrayLike = 2.0
    variance_scale: ArrayLike = 1.0
    rate_shape: ArrayLike = 1.0
    rate_rate: ArrayLike = 0.1
    concentration_shape: ArrayLike = 1.0
    concentration_rate: ArrayLike = 0.1
    angle_loc: ArrayLike = 0.0
    angle_concentration: ArrayLike = 0.0
    kappa_shape: ArrayLike = 1.0
    kappa_rate: ArrayLike = 0.1
    lkj_concentration: ArrayLike = 1.0
    dispersion_shape: ArrayLike = 2.0
    dispersion_rate: ArrayLike = 0.1
    df_shape: ArrayLike = 2.0
    df_rate: ArrayLike = 0.1

    def __post_init__(self) -> None:
        nonnegative = ("stickiness", "angle_concentration")
        real = ("mu_loc", "angle_loc")
        for field in dataclasses.fields(self):
            array = _as_array(field.name, getattr(self, field.name))
            if field.name in nonnegative:
                _check_sign(field.name, array, "nonnegative")
            elif field.name not in real:
                _check_sign(field.name, array, "positive")

    # ----------------------------------------------------------------- resolution to tensors
    @staticmethod
    def _tensor(array: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
        return torch.as_tensor(array, dtype=dtype)

    def resolve_initial(self, num_states: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Return the ``(K,)`` Dirichlet concentration of ``pi``."""
        array = _broadcast(
            "pi", _as_array("pi", self.pi), (num_states,), f"a scalar or ({num_states},)"
        )
        return self._tensor(array, dtype)

    def resolve_transitions(
        self, num_states: int, dtype: torch.dtype = torch.float64
    ) -> torch.Tensor:
        """Return the ``(K, K)`` Dirichlet concentrations of the rows of ``A``, stickiness added."""
        shape = (num_states, num_states)
        allowed = f"a scalar, ({num_states},) or {shape}"
        base = _broadcast("A", _as_array("A", self.A), shape, allowed)
        kappa = _broadcast(
            "stickiness",
            _as_array("stickiness", self.stickiness),
            (num_states,),
            f"a scalar or ({num_states},)",
        )
        return self._tensor(base + np.diag(kappa), dtype)

    def resolve_emission(
        self, name: str, num_states: int, width: int, dtype: torch.dtype = torch.float64
    ) -> torch.Tensor:
        """Return emission hyperparameter ``name`` broadcast to ``(K, width)``.

        ``width`` is ``V`` for ``B``, ``D`` for per-coordinate hyperparameters and 1 for
        per-state ones (``lkj_concentration``).
        """
        field_names = {field.name for field in dataclasses.fields(self)}
        if name not in field_names - {"pi", "A", "stickiness"}:
            raise ValueError(f"name: expected an emission hyperparameter, got {name!r}")
        shape = (num_states, width)
        what = "V" if name == "B" else "D"
        allowed = (
            f"a scalar, ({width},) [{what}], ({num_states},) [K], ({num_states}, 1) or {shape}"
        )
        array = _as_array(name, getattr(self, name))
        if array.ndim == 1 and width == num_states and width > 1:
            raise ValueError(
                f"{name}: a 1-D value of length {width} is ambiguous when K = {what} = {width}; "
                f"pass a scalar or a {shape} array"
            )
        if array.ndim == 1 and array.shape == (width,):
            result = np.broadcast_to(array, shape).copy()
        elif array.ndim == 1 and array.shape == (num_states,):
            result = np.broadcast_to(array[:, None], shape).copy()
        elif array.shape == (num_states, 1):  # one value per state, unambiguous for any width
            result = np.broadcast_to(array, shape).copy()
        else:
            result = _broadcast(name, array, shape, allowed)
        return self._tensor(result, dtype)

    def replace(self, **changes: ArrayLike) -> Prior:
        """Return a copy with some hyperparameters changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Return the hyperparameters as plain Python values (lists for arrays)."""
        return {
            field.name: _as_array(field.name, getattr(self, field.name)).tolist()
            for field in dataclasses.fields(self)
        }


def describe_prior(prior: Prior) -> str:
    """Compact text of the hyperparameters that differ from ``Prior()``.

    Used to label priors in the tables of :func:`hmm_pyro.compare_priors` and
    :func:`hmm_pyro.sweep`.

    Parameters
    ----------
    prior : Prior
        Compared field by field with ``Prior()``; arrays are shown as JSON lists.

    Returns
    -------
    str
        For example ``"B=100, stickiness=5"``, or ``"defaults"``.

    Examples
    --------
    >>> describe_prior(Prior(B=100.0, stickiness=5.0))
    'B=100, stickiness=5'
    """
    default = Prior().to_dict()
    parts = []
    for key, value in prior.to_dict().items():
        if value != default[key]:
            text = json.dumps(value) if isinstance(value, list) else f"{value:g}"
            parts.append(f"{key}={text}")
    return ", ".join(parts) if parts else "defaults"
