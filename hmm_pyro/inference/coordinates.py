"""Unconstrained coordinates of the HMM parameters for NUTS and MAP, as one flat vector.

The coordinates are Pyro's (``biject_to`` of each prior's support), written out:

- simplex rows (``pi``, rows of ``A`` and ``B``): stick-breaking, ``z_k = sigmoid(x_k -
  log(K - 1 - k))`` for ``k < K - 1``, ``y_k = z_k prod_{j<k} (1 - z_j)``, with
  ``log|det J| = sum_{k<K-1} [log(1 - z_k) + log y_k]`` (additive log-ratio coordinates were
  tried: 2.5x more leapfrog steps per iteration on the reference workload, 29.6 against 11.7;
  isometric log-ratio coordinates, :meth:`Coordinates.stick_from_isometric`, measured in
  ``benchmarks/results/ess_per_gradient.md``: 0.65-1.05x the ESS per gradient with the
  diagonal mass matrix; a Dirichlet posterior is a product of independent Betas in
  stick-breaking coordinates, which a diagonal mass matrix fits);
- positive parameters (``sigma``, ``rate``): ``log``, ``log|det J| = u`` for ``u = log x``;
- real parameters (``mu``): as they are;
- angles (``mu`` of von Mises emissions): as they are, the family's log density being periodic
  in them (dynamics on the line with a periodic potential are the dynamics on the circle);
  parameters are the coordinates wrapped to ``[-pi, pi)``, so that chains that drift to another
  multiple of ``2 pi`` report the same values;
- any other constraint (kind ``"bijection"``): the family's transform
  (:meth:`~hmm_pyro.emissions.Emission.bijection`, e.g. Pyro's ``biject_to`` of the
  constraint: for the correlation matrices of multivariate normal emissions ``D (D - 1) / 2``
  coordinates each), with its own ``log_abs_det_jacobian``; also the regression coefficients
  of a :class:`~hmm_pyro.CovariateHMM` (:meth:`hmm_pyro.HMM.bijection`).

Each emission family names the kind of each of its parameters
(:meth:`~hmm_pyro.emissions.Emission.potential_coordinates`, gathered with the transition
parameters' by :meth:`hmm_pyro.HMM.potential_coordinates`); the flat vector holds ``pi``,
``A`` (or the coefficients) and the emission parameters in model order, each flattened
row-major. The log density, its Jacobian terms and gradient are computed by the numba potentials
(:mod:`hmm_pyro.kernels._numba.potentials`), or for families without one in torch from
:meth:`Coordinates.constrain_with_log_det`; this module maps between parameters and
coordinates and resolves the hyperparameters of the transition priors.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.distributions.transforms import StickBreakingTransform, Transform

from hmm_pyro._types import Params
from hmm_pyro.emissions.base import dirichlet_log_normalizer
from hmm_pyro.emissions.potential_terms import coordinate_shape
from hmm_pyro.model import HMM

__all__ = [
    "KINDS",
    "SIMPLEX_COORDINATES",
    "Coordinates",
    "isometric_basis",
    "log_simplex",
]

KINDS = ("simplex", "log", "real", "angle", "bijection")
"""Coordinate kinds: stick-breaking rows of a simplex, the log of a positive value, as is, an
angle (as is, wrapped to ``[-pi, pi)`` as a parameter), and the family's own transform."""
SIMPLEX_COORDINATES = ("stick-breaking", "isometric log-ratio")
"""Coordinates of the simplex rows seen by NUTS: stick-breaking (the default, the one the
numba potentials decode) or isometric log-ratio (:meth:`Coordinates.stick_from_isometric`, mapped
to stick-breaking in torch before each evaluation)."""
_STICK = StickBreakingTransform()


def isometric_basis(width: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Helmert basis ``V (width, width - 1)``: orthonormal columns, each summing to zero.

    Column ``j`` is ``(1, ..., 1, -(j + 1), 0, ..., 0) / sqrt((j + 1)(j + 2))`` with ``j + 1``
    ones. The isometric log-ratio coordinates of a simplex row ``y`` are ``u = V^T log y``,
    and ``y = softmax(V u)``.
    """
    basis = torch.zeros(width, width - 1, dtype=dtype)
    for j in range(width - 1):
        basis[: j + 1, j] = 1.0
        basis[j + 1, j] = -(j + 1.0)
        basis[:, j] /= math.sqrt((j + 1.0) * (j + 2.0))
    return basis


def log_simplex(x: torch.Tensor) -> torch.Tensor:
    """Log simplex rows ``(..., W + 1)`` from stick-breaking coordinates ``x (..., W)``.

    Parameters
    ----------
    x : torch.Tensor
        Stick-breaking coordinates, one fewer than the row has entries.

    Returns
    -------
    torch.Tensor
        ``log y`` with ``y`` the simplex rows (``StickBreakingTransform``, in log space).
    """
    width = x.shape[-1]
    offset = torch.arange(width, 0, -1, dtype=x.dtype, device=x.device).log()
    shifted = x - offset
    log_z = F.logsigmoid(shifted)
    before = F.pad(F.logsigmoid(-shifted).cumsum(-1), (1, 0))  # sum_{j<k} log(1 - z_j)
    return F.pad(log_z, (0, 1)) + before


def _sum_last(value: torch.Tensor, count: int) -> torch.Tensor:
    """Sum over the last ``count`` dimensions (none when ``count`` is 0)."""
    return value.sum(tuple(range(-count, 0))) if count > 0 else value


def _stick_log_det(x: torch.Tensor, log_y: torch.Tensor) -> torch.Tensor:
    """``sum_k [log(1 - z_k) + log y_k]`` of each row (the stick-breaking log-Jacobian)."""
    width = x.shape[-1]
    offset = torch.arange(width, 0, -1, dtype=x.dtype, device=x.device).log()
    return (F.logsigmoid(-(x - offset)) + log_y[..., :-1]).sum(-1)


class Coordinates:
    """The map between an HMM's parameters and one flat vector of unconstrained coordinates.

    Parameters
    ----------
    hmm : HMM
        The model: its parameter shapes, emission family and prior.

    Attributes
    ----------
    layout : list of (str, str, tuple of int)
        Name, kind (one of :data:`KINDS`) and coordinate shape of each parameter, in order.
    size : int
        Length ``P`` of the flat vector.
    concentration : dict of torch.Tensor
        Dirichlet concentrations of ``pi (K,)`` and ``A (K, K)``
        (:meth:`hmm_pyro.HMM.dirichlet_concentrations`: only ``pi``, or none, for a
        :class:`~hmm_pyro.CovariateHMM`).
    constant : float
        Log normalising constant of those Dirichlet priors.
    """

    def __init__(self, hmm: HMM) -> None:
        self.hmm = hmm
        kinds = hmm.potential_coordinates()
        shapes = hmm.param_shapes()
        self.layout: list[tuple[str, str, tuple[int, ...]]] = []
        self.bijections: dict[str, Transform] = {}
        for name in hmm.param_names:
            kind, shape = kinds[name], shapes[name]
            if kind not in KINDS:
                raise ValueError(
                    f"hmm: expected coordinate kinds in {KINDS} from {hmm!r}, "
                    f"got {kind!r} for {name!r}"
                )
            if kind == "bijection":
                self.bijections[name] = hmm.bijection(name)
            shape = coordinate_shape(kind, shape, self.bijections.get(name))
            self.layout.append((name, kind, shape))
        self.size = sum(math.prod(shape) for _, _, shape in self.layout)
        self.concentration = hmm.dirichlet_concentrations()
        self.constant = sum(map(dirichlet_log_normalizer, self.concentration.values()), 0.0)

    def isometric_from_stick(self, flat: torch.Tensor) -> torch.Tensor:
        """Flat coordinates with the simplex rows in isometric log-ratio instead of stick-breaking.

        The inverse of :meth:`stick_from_isometric`; other parameters are left as they are.
        """
        coords = self.split(flat)
        for name, kind, shape in self.layout:
            if kind == "simplex":
                basis = isometric_basis(shape[-1] + 1, flat.dtype)
                coords[name] = log_simplex(coords[name]) @ basis
        return self.join(coords)

    def stick_from_isometric(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stick-breaking coordinates from isometric log-ratio ones, and ``log|det|`` of the map.

        Each simplex row ``y = softmax(V u)`` (:func:`isometric_basis`) has
        ``log|det dy/du| = sum_k log y_k + log(W) / 2`` for ``W`` entries (over the first
        ``W - 1`` entries of ``y``), so the map ``u -> x`` to the stick-breaking coordinates
        ``x`` has that minus the stick-breaking log-Jacobian. Differentiable in torch.

        Parameters
        ----------
        flat : torch.Tensor
            ``(..., P)`` coordinates, simplex rows in isometric log-ratio coordinates.

        Returns
        -------
        stick : torch.Tensor
            ``(..., P)`` the same point in stick-breaking coordinates (other parameters as
            they are).
        log_det : torch.Tensor
            ``(...)`` ``log|det d stick / d flat|``.
        """
        coords = self.split(flat)
        log_det = torch.zeros(flat.shape[:-1], dtype=flat.dtype, device=flat.device)
        for name, kind, shape in self.layout:
            if kind != "simplex":
                continue
            width = shape[-1] + 1
            log_y = torch.log_softmax(coords[name] @ isometric_basis(width, flat.dtype).T, -1)
            # log of the stick left before entry k: logsumexp of log y over entries k.., k < W - 1
            left = torch.logcumsumexp(log_y.flip(-1), -1).flip(-1)
            offset = torch.arange(width - 1, 0, -1, dtype=flat.dtype, device=flat.device).log()
            stick = log_y[..., :-1] - left[..., 1:] + offset
            coords[name] = stick
            row_log_det = log_y.sum(-1) + 0.5 * math.log(width) - _stick_log_det(stick, log_y)
            log_det = log_det + _sum_last(row_log_det, len(shape) - 1)
        return self.join(coords), log_det

    def split(self, flat: torch.Tensor) -> Params:
        """Flat coordinates ``(..., P)`` to per-parameter coordinates."""
        coords, start = {}, 0
        for name, _, shape in self.layout:
            size = math.prod(shape)
            coords[name] = flat[..., start : start + size].reshape(*flat.shape[:-1], *shape)
            start += size
        return coords

    def join(self, coords: Params) -> torch.Tensor:
        """Per-parameter coordinates to one flat vector ``(..., P)``."""
        pieces = []
        for name, _, shape in self.layout:
            value = coords[name]
            pieces.append(value.reshape(*value.shape[: value.dim() - len(shape)], -1))
        return torch.cat(pieces, dim=-1)

    def unconstrain(self, params: Params) -> torch.Tensor:
        """Parameters (validated; leading draw dimensions allowed) to flat coordinates."""
        params = self.hmm.validate_params(params)
        coords = {}
        for name, kind, _ in self.layout:
            value = params[name]
            if kind == "simplex":
                coords[name] = _STICK.inv(value)
            elif kind == "log":
                coords[name] = torch.log(value)
            elif kind == "bijection":
                coords[name] = self.bijections[name].inv(value)
            else:
                coords[name] = value
        return self.join(coords)

    def constrain(self, flat: torch.Tensor) -> Params:
        """Flat coordinates ``(..., P)`` to parameters."""
        return self.constrain_with_log_det(flat)[0]

    def constrain_with_log_det(self, flat: torch.Tensor) -> tuple[Params, Params, torch.Tensor]:
        """Parameters, the logs of the simplex parameters, and ``log|det J|`` of the map.

        Parameters
        ----------
        flat : torch.Tensor
            ``(..., P)`` coordinates.

        Returns
        -------
        params : dict of torch.Tensor
        log_simplex : dict of torch.Tensor
            ``log`` of each ``"simplex"`` parameter, computed in log space.
        log_det : torch.Tensor
            ``(...)`` log-Jacobian of the whole map, summed over the parameters.
        """
        params, logs = {}, {}
        log_det = torch.zeros(flat.shape[:-1], dtype=flat.dtype, device=flat.device)
        for (name, kind, shape), value in zip(self.layout, self.split(flat).values(), strict=True):
            if kind == "simplex":
                logs[name] = log_simplex(value)
                params[name] = logs[name].exp()
                log_det = log_det + _sum_last(_stick_log_det(value, logs[name]), len(shape) - 1)
            elif kind == "log":
                params[name] = value.exp()
                log_det = log_det + _sum_last(value, len(shape))
            elif kind == "angle":  # identity on the line, wrapped: no Jacobian
                params[name] = torch.remainder(value + math.pi, 2.0 * math.pi) - math.pi
            elif kind == "bijection":
                transform = self.bijections[name]
                params[name] = transform(value)
                jacobian = transform.log_abs_det_jacobian(value, params[name])
                log_det = log_det + _sum_last(jacobian, len(shape) - transform.domain.event_dim)
            else:
                params[name] = value
        return params, logs, log_det
