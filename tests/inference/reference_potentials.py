"""Reference potentials for the tests: the NUTS potential built two other ways.

- :class:`DistributionPotential`: Pyro's bijections (``biject_to`` of each prior's support),
  each prior's ``log_prob`` from ``torch.distributions`` and the log-Jacobian of the transform,
  the likelihood by the forward algorithm on the ``(N, T, K)`` table;
- :class:`ClosedFormPotential`: the same coordinates with the prior density and log-Jacobian
  written in closed form, the likelihood from :meth:`Emission.sequence_log_likelihood`:

  - simplex rows (``pi``, rows of ``A`` and ``B``): stick-breaking, ``z_k = sigmoid(x_k -
    log(K - k))``, ``y_k = z_k prod_{j<k} (1 - z_j)``; ``log|det J| = sum_{k<K} [log(1 - z_k) +
    log y_k]`` and a ``Dirichlet(alpha)`` prior adds ``sum_k (alpha_k - 1) log y_k + const``;
  - ``mu``: identity, Normal prior;
  - ``sigma = exp(u)`` with ``sigma**2 ~ InverseGamma(a, b)``: ``-2 a u - b exp(-2 u) + const``;
  - ``rate = exp(u)`` with ``rate ~ Gamma(a, b)``: ``a u - b exp(u) + const``.

Both are tested equal to the potential Pyro builds from :meth:`HMM.model`
(``test_reference_potentials.py``); the package's :class:`~hmm_pyro.inference.potential.Potential`
is tested equal to :class:`ClosedFormPotential`, value and gradient.
"""

import math

import torch
import torch.nn.functional as F
from torch.distributions import biject_to
from torch.distributions.transforms import StickBreakingTransform, Transform

from hmm_pyro import kernels
from hmm_pyro.data import Sequences
from hmm_pyro.model import HMM

Params = dict[str, torch.Tensor]
_SIMPLEX = ("pi", "A", "B")
_HALF_LOG_TWO_PI = 0.5 * math.log(2 * math.pi)
_STICK = StickBreakingTransform()


class DistributionPotential:
    """Callable ``U(z) = -log p(y, T(z)) - log|det J_T(z)|`` with a call counter.

    Parameters
    ----------
    hmm : HMM
        The model.
    data : Sequences
        The observations (validated for the model).
    """

    def __init__(self, hmm: HMM, data: Sequences) -> None:
        self.hmm = hmm
        self.data = hmm.prepare_data(data)
        self.priors = hmm.prior_distributions()
        self.transforms: dict[str, Transform] = {
            name: biject_to(prior.support) for name, prior in self.priors.items()
        }
        self.num_evaluations = 0

    def constrain(self, unconstrained: Params) -> Params:
        """Map unconstrained values to parameters."""
        return {name: self.transforms[name](value) for name, value in unconstrained.items()}

    def unconstrain(self, params: Params) -> Params:
        """Map parameters to unconstrained values."""
        return {
            name: self.transforms[name].inv(torch.as_tensor(params[name], dtype=self.hmm.dtype))
            for name in self.transforms
        }

    def log_joint(self, unconstrained: Params) -> torch.Tensor:
        """``log p(y, T(z)) + log|det J_T(z)|`` (batched over leading dimensions of ``z``)."""
        total = 0.0
        params = {}
        for name, transform in self.transforms.items():
            value = unconstrained[name]
            param = transform(value)
            params[name] = param
            jacobian = transform.log_abs_det_jacobian(value, param)
            event_dims = len(self.priors[name].event_shape) - transform.codomain.event_dim
            if event_dims > 0:
                jacobian = jacobian.sum(tuple(range(-event_dims, 0)))
            total = total + self.priors[name].log_prob(param) + jacobian
        log_lik = kernels.log_likelihood(*self.hmm.kernel_inputs(params, self.data))
        return total + log_lik.sum(-1)

    def __call__(self, unconstrained: Params) -> torch.Tensor:
        """Potential energy ``-log_joint(z)``; counts evaluations."""
        self.num_evaluations += 1
        return -self.log_joint(unconstrained)


class ClosedFormPotential:
    """``U(z) = -log p(y, T(z)) - log|det J_T(z)|`` over stick-breaking / log coordinates.

    Parameters
    ----------
    hmm : HMM
        The model.
    data : Sequences
        The observations.
    """

    def __init__(self, hmm: HMM, data: Sequences) -> None:
        self.hmm = hmm
        self.data = hmm.prepare_data(data)
        num, dtype, prior = hmm.num_states, hmm.dtype, hmm.prior
        emission = hmm.emission
        self.concentration = {"pi": prior.resolve_initial(num, dtype)}
        self.concentration["A"] = prior.resolve_transitions(num, dtype)
        if "B" in emission.param_names:
            self.concentration["B"] = prior.resolve_emission("B", num, emission.num_symbols, dtype)
        self.constant = sum(
            float(torch.lgamma(alpha.sum(-1)).sum() - torch.lgamma(alpha).sum())
            for alpha in self.concentration.values()
        )
        shape = emission.param_shapes(num)
        squeeze = len(next(iter(shape.values()))) == 1

        def hyper(name: str) -> torch.Tensor:
            value = prior.resolve_emission(name, num, emission.dim, dtype)
            return value[:, 0] if squeeze else value

        self.hyper: dict[str, torch.Tensor] = {}
        if "mu" in emission.param_names:
            self.hyper = {
                "mu_loc": hyper("mu_loc"),
                "mu_scale": hyper("mu_scale"),
                "a": hyper("variance_shape"),
                "b": hyper("variance_scale"),
            }
            scale, a, b = self.hyper["mu_scale"], self.hyper["a"], self.hyper["b"]
            self.constant += float(
                -(torch.log(scale) + _HALF_LOG_TWO_PI).sum()
                + (a * torch.log(b) - torch.lgamma(a) + math.log(2.0)).sum()
            )
        elif "rate" in emission.param_names:
            self.hyper = {"a": hyper("rate_shape"), "b": hyper("rate_rate")}
            a, b = self.hyper["a"], self.hyper["b"]
            self.constant += float((a * torch.log(b) - torch.lgamma(a)).sum())
        self.num_evaluations = 0

    # ------------------------------------------------------------------ coordinates
    def unconstrain(self, params: Params) -> Params:
        """Parameters to coordinates: inverse stick-breaking, logs of positive values."""
        params = self.hmm.validate_params(params)
        coords = {}
        for name, value in params.items():
            if name in _SIMPLEX:
                coords[name] = _STICK.inv(value)
            elif name in ("sigma", "rate"):
                coords[name] = torch.log(value)
            else:
                coords[name] = value.clone()
        return coords

    def _log_simplex(self, coords: Params) -> tuple[Params, torch.Tensor]:
        """Log simplex rows and the summed stick-breaking log-Jacobian."""
        logs, log_det = {}, torch.zeros((), dtype=self.hmm.dtype)
        for name in _SIMPLEX:
            if name not in coords:
                continue
            x = coords[name]
            width = x.shape[-1]
            offset = torch.arange(width, 0, -1, dtype=x.dtype, device=x.device).log()
            shifted = x - offset
            log_z = F.logsigmoid(shifted)
            log_rest = F.logsigmoid(-shifted)  # log(1 - z)
            before = F.pad(log_rest.cumsum(-1), (1, 0))  # sum_{j<k} log(1 - z_j), k = 0..K-1
            log_y = F.pad(log_z, (0, 1)) + before
            logs[name] = log_y
            log_det = log_det + (log_rest + log_y[..., :-1]).sum()
        return logs, log_det

    def constrain(self, coords: Params) -> Params:
        """Coordinates to parameters."""
        params = {name: value.exp() for name, value in self._log_simplex(coords)[0].items()}
        for name, value in coords.items():
            if name in ("sigma", "rate"):
                params[name] = value.exp()
            elif name not in params:
                params[name] = value
        return params

    # ------------------------------------------------------------------ densities
    def log_joint(self, coords: Params, jacobian: bool = True) -> torch.Tensor:
        """``log p(y, T(z))`` plus (by default) ``log|det J_T(z)|``.

        With ``jacobian=False`` this is the MAP objective in the constrained space (the
        ``AutoDelta`` objective), evaluated at ``T(z)``.
        """
        logs, log_det = self._log_simplex(coords)
        total = torch.zeros((), dtype=self.hmm.dtype) + self.constant
        if jacobian:
            total = total + log_det
        params = {}
        for name, log_value in logs.items():
            total = total + ((self.concentration[name] - 1.0) * log_value).sum()
            params[name] = log_value.exp()
        if "mu" in coords:
            mu, log_sigma = coords["mu"], coords["sigma"]
            z = (mu - self.hyper["mu_loc"]) / self.hyper["mu_scale"]
            a, b = self.hyper["a"], self.hyper["b"]
            total = total - 0.5 * (z * z).sum()
            # log p_sigma(s) = log IG(s^2) + log 2s; with s = exp(u): -(2a + 1) u - b exp(-2u),
            # and the log-Jacobian of s = exp(u) adds u.
            shift = 2 * a if jacobian else 2 * a + 1
            total = total + (-shift * log_sigma - b * torch.exp(-2 * log_sigma)).sum()
            params["mu"], params["sigma"] = mu, log_sigma.exp()
        elif "rate" in coords:
            log_rate = coords["rate"]
            rate = log_rate.exp()
            a, b = self.hyper["a"], self.hyper["b"]
            weight = a if jacobian else a - 1.0
            total = total + (weight * log_rate - b * rate).sum()
            params["rate"] = rate
        log_lik = self.hmm.emission.sequence_log_likelihood(
            logs["pi"], logs["A"], params, self.data
        )
        return total + log_lik.sum(-1)

    def __call__(self, coords: Params) -> torch.Tensor:
        """Potential energy ``-log_joint(z)``; counts evaluations."""
        self.num_evaluations += 1
        return -self.log_joint(coords)
