"""The negative log joint density over unconstrained parameters, for NUTS.

Pyro's model-based potential re-traces the model at every gradient evaluation; this one maps
unconstrained tensors through the same bijections Pyro uses (``biject_to(support)``), adds
each prior's log density, the log-Jacobian and the forward-algorithm log likelihood. It is
tested equal to the potential that Pyro builds from :meth:`HMM.model`.
"""

from __future__ import annotations

import torch
from torch.distributions import biject_to
from torch.distributions.transforms import Transform

from hmm_pyro import kernels
from hmm_pyro.data import Sequences
from hmm_pyro.model import HMM

__all__ = ["Potential"]

Params = dict[str, torch.Tensor]


class Potential:
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
