"""Symmetry-breaking starting points for NUTS chains and SVI, MAP and EM restarts.

Identical states get identical gradients (the log density is invariant under relabelling), so an
optimiser or EM started with all states equal never separates them. Pyro's ``AutoDelta``
default (``init_to_median``; ``init_to_feasible`` for Dirichlet rows) starts exactly there. Every
start drawn here is checked: the smallest squared Hellinger distance between two states'
emission laws must exceed :data:`MIN_START_SEPARATION`, else it is redrawn.

Layer rule: ``starts`` imports only ``model`` and the layers below it. The ``"em"`` start needs
the EM of :mod:`hmm_pyro.learning` (a layer above), which passes its own refinement in
(:func:`hmm_pyro.learning.initial_params`); runners call that function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from hmm_pyro._random import make_generator
from hmm_pyro._types import Params
from hmm_pyro._validation import check_choice, describe
from hmm_pyro.data import Sequences
from hmm_pyro.model import HMM

__all__ = [
    "INIT_METHODS",
    "MIN_START_SEPARATION",
    "initial_params",
    "min_separation",
]

INIT_METHODS = ("auto", "prior", "data", "em")
MIN_START_SEPARATION = 1e-3
"""Smallest acceptable squared Hellinger distance between two states at a start (about a 0.09
standard-deviation gap between unit Gaussians): below it the start is numerically symmetric."""
_MAX_TRIES = 20
EM_INIT_ITERATIONS = 30
"""EM updates of the ``"em"`` start (a short run from a ``"data"`` start, not a full fit)."""


def min_separation(hmm: HMM, params: Params) -> torch.Tensor:
    """Smallest pairwise squared Hellinger distance between states: shape = draws' batch shape.

    ``1.0`` when there is a single state (nothing can collapse).
    """
    distances = hmm.emission.hellinger(params)
    num = hmm.num_states
    if num == 1:
        return torch.ones(distances.shape[:-2], dtype=distances.dtype)
    upper = torch.triu_indices(num, num, offset=1)
    return distances[..., upper[0], upper[1]].amin(-1)


def _data_driven(hmm: HMM, data: Sequences, generator: torch.Generator) -> Params:
    """Prior draws; emission parameters from the data where the family knows how.

    See :meth:`hmm_pyro.emissions.Emission.start_from_data` (Gaussian means and Poisson rates
    at random quantiles of the data; categorical rows stay prior draws).
    """
    params = hmm.sample_prior(seed=int(torch.randint(2**31 - 1, (), generator=generator)))
    params.update(hmm.emission.start_from_data(data, hmm.num_states, generator, hmm.dtype))
    return params


def initial_params(
    hmm: HMM,
    data: Sequences,
    method: str | Mapping[str, Any] = "auto",
    seed: int | None = None,
    em_start: Callable[[HMM, Sequences, int, int], Params] | None = None,
) -> Params:
    """Return one symmetry-breaking starting point.

    Parameters
    ----------
    hmm : HMM
        The model.
    data : Sequences
        The data (used by ``"data"``).
    method : {"auto", "prior", "data", "em"} or dict
        ``"prior"``: a draw from the prior. ``"data"``: prior draws for ``pi`` and ``A``, and
        emission locations at random quantiles of the data (Gaussian means, Poisson rates;
        categorical rows fall back to prior draws). ``"em"``: a ``"data"`` start improved by
        :data:`EM_INIT_ITERATIONS` EM updates towards the MAP point (one EM run per call,
        probabilities kept off the boundary; see :func:`hmm_pyro.learning.em_start`; needs
        ``em_start``).
        ``"auto"``: ``"data"``. A dict of parameters is validated and returned as is.
    seed : int, optional
        Seed of the draw.
    em_start : callable, optional
        ``em_start(hmm, data, seed, iterations)``: the short EM run of the ``"em"`` start
        (:func:`hmm_pyro.learning.em_start`); required for ``method="em"``.

    Returns
    -------
    dict of torch.Tensor

    Raises
    ------
    ValueError
        If no start with distinct states was found, or a given dict has identical states.
    """
    if isinstance(method, Mapping):
        try:
            params = hmm.validate_params(dict(method))
        except (TypeError, ValueError) as error:
            # name the option the caller passed, not the internal argument
            raise type(error)(f"init: {error}") from error
        if hmm.num_states > 1 and bool((min_separation(hmm, params) <= 0).any()):
            raise ValueError(
                "init: the given starting parameters have two identical states; identical "
                "states receive identical gradients and never separate"
            )
        return params
    if not isinstance(method, str):
        raise TypeError(
            f"init: expected a method name or a dict of parameters, got {describe(method)}"
        )
    check_choice("init", method, INIT_METHODS)
    generator = make_generator(seed)
    for _ in range(_MAX_TRIES):
        if method == "prior":
            params = hmm.sample_prior(seed=int(torch.randint(2**31 - 1, (), generator=generator)))
        elif method == "em":
            if em_start is None:
                raise ValueError(
                    "init: the 'em' start needs EM; call hmm_pyro.learning.initial_params"
                )
            child = int(torch.randint(2**31 - 1, (), generator=generator))
            params = em_start(hmm, data, child, EM_INIT_ITERATIONS)
        else:
            params = _data_driven(hmm, data, generator)
        if hmm.num_states == 1 or float(min_separation(hmm, params)) > MIN_START_SEPARATION:
            return params
    raise ValueError(
        f"init: no start with distinct states in {_MAX_TRIES} draws with method {method!r}; "
        "the prior or the data may leave no room for distinct states (try fewer states)"
    )


def derive_seeds(seed: int, count: int) -> list[int]:
    """``count`` independent child seeds of ``seed`` (NumPy ``SeedSequence.spawn``)."""
    children = np.random.SeedSequence(seed).spawn(count)
    return [int(child.generate_state(1)[0] % (2**31 - 1)) for child in children]
