"""Unconstrained coordinates of the HMM parameters for NUTS and MAP, as one flat vector.

The coordinates are Pyro's (``biject_to`` of each prior's support), written out:

- simplex rows (``pi``, rows of ``A`` and ``B``): stick-breaking, ``z_k = sigmoid(x_k -
  log(K - 1 - k))`` for ``k < K - 1``, ``y_k = z_k prod_{j<k} (1 - z_j)``, with
  ``log|det J| = sum_{k<K-1} [log(1 - z_k) + log y_k]`` (additive log-ratio coordinates were
  tried: 2.5x more leapfrog steps per iteration on the reference workload, 29.6 against 11.7);
- positive parameters (``sigma``, ``rate``): ``log``, ``log|det J| = u`` for ``u = log x``;
- real parameters (``mu``): as they are;
- angles (``mu`` of von Mises emissions): as they are, the family's log density being periodic
  in them (dynamics on the line with a periodic potential are the dynamics on the circle);
  parameters are the coordinates wrapped to ``[-pi, pi)``, so that chains that drift to another
  multiple of ``2 pi`` report the same values;
- correlation matrices (``corr`` of multivariate normal emissions, ``(..., D, D)``): Pyro's
  ``biject_to(corr_matrix)``, ``D (D - 1) / 2`` coordinates each (``tanh`` of each, then
  stick-breaking rows of the Cholesky factor ``L``; the matrix is ``L L^T``).

Each emission family names the kind of each of its parameters
(:meth:`~hmm_pyro.emissions.Emission.potential_coordinates`); the flat vector holds ``pi``,
``A`` and the emission parameters in model order, each flattened row-major. The log density,
its Jacobian terms and gradient are computed by the numba potentials
(:mod:`hmm_pyro.kernels._numba.potentials`); this module maps between parameters and
coordinates and resolves the hyperparameters of the transition priors.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pyro.distributions import constraints
from torch.distributions import biject_to
from torch.distributions.transforms import StickBreakingTransform

from hmm_pyro._types import Params
from hmm_pyro.emissions.base import dirichlet_log_normalizer
from hmm_pyro.model import HMM

__all__ = ["KINDS", "Coordinates", "log_simplex"]

KINDS = ("simplex", "log", "real", "angle", "corr_matrix")
"""Coordinate kinds: stick-breaking rows of a simplex, the log of a positive value, as is, an
angle (as is, wrapped to ``[-pi, pi)`` as a parameter), and the unconstrained coordinates of
correlation matrices."""
_STICK = StickBreakingTransform()
_CORRELATION = biject_to(constraints.corr_matrix)


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
        Dirichlet concentrations of ``pi (K,)`` and ``A (K, K)``.
    constant : float
        Log normalising constant of the ``pi`` and ``A`` priors.
    """

    def __init__(self, hmm: HMM) -> None:
        self.hmm = hmm
        kinds = {"pi": "simplex", "A": "simplex", **hmm.emission.potential_coordinates()}
        shapes = hmm.param_shapes()
        self.layout: list[tuple[str, str, tuple[int, ...]]] = []
        for name in hmm.param_names:
            kind, shape = kinds[name], shapes[name]
            if kind not in KINDS:
                raise ValueError(
                    f"hmm: expected coordinate kinds in {KINDS} from {hmm.emission!r}, "
                    f"got {kind!r} for {name!r}"
                )
            if kind == "simplex":
                shape = (*shape[:-1], shape[-1] - 1)
            elif kind == "corr_matrix":
                shape = tuple(_CORRELATION.inverse_shape(shape))
            self.layout.append((name, kind, shape))
        self.size = sum(math.prod(shape) for _, _, shape in self.layout)
        num, prior = hmm.num_states, hmm.prior
        self.concentration = {
            "pi": prior.resolve_initial(num, hmm.dtype),
            "A": prior.resolve_transitions(num, hmm.dtype),
        }
        self.constant = sum(map(dirichlet_log_normalizer, self.concentration.values()))

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
            elif kind == "corr_matrix":
                coords[name] = _CORRELATION.inv(value)
            else:
                coords[name] = value
        return self.join(coords)

    def constrain(self, flat: torch.Tensor) -> Params:
        """Flat coordinates ``(..., P)`` to parameters."""
        params = {}
        for (name, kind, _), value in zip(self.layout, self.split(flat).values(), strict=True):
            if kind == "simplex":
                params[name] = log_simplex(value).exp()
            elif kind == "log":
                params[name] = value.exp()
            elif kind == "corr_matrix":
                params[name] = _CORRELATION(value)
            elif kind == "angle":
                params[name] = torch.remainder(value + math.pi, 2.0 * math.pi) - math.pi
            else:
                params[name] = value
        return params
