"""Helpers shared by the tests: emission set-ups and random valid parameters."""

from __future__ import annotations

import numpy as np
import torch

import hmm_pyro as hp

FAMILIES = ("categorical", "gaussian", "gaussian2", "poisson", "poisson2")
"""Emission set-ups covered by family-parametrised tests (``2`` = two-dimensional)."""

NUM_SYMBOLS = 3


def make_emission(family: str) -> hp.Emission:
    """Return the emission object of one of :data:`FAMILIES`."""
    if family == "categorical":
        return hp.Categorical(num_symbols=NUM_SYMBOLS)
    if family == "gaussian":
        return hp.Gaussian()
    if family == "gaussian2":
        return hp.Gaussian(dim=2)
    if family == "poisson":
        return hp.Poisson()
    if family == "poisson2":
        return hp.Poisson(dim=2)
    raise AssertionError(f"unknown family {family!r}")


def random_simplex(rng: np.random.Generator, shape: tuple[int, ...], floor: float = 0.05):
    """Rows drawn from Dirichlet(1) and kept away from zero (no near-ties in tiny cases)."""
    rows = rng.dirichlet(np.ones(shape[-1]), size=shape[:-1]) + floor
    return rows / rows.sum(-1, keepdims=True)


def random_params(
    hmm: hp.HMM, rng: np.random.Generator, batch: tuple[int, ...] = ()
) -> dict[str, torch.Tensor]:
    """Random valid float64 parameters of ``hmm`` with leading ``batch`` dimensions."""
    num = hmm.num_states
    params = {
        "pi": random_simplex(rng, (*batch, num)),
        "A": random_simplex(rng, (*batch, num, num)),
    }
    emission = hmm.emission
    shapes = emission.param_shapes(num)
    if isinstance(emission, hp.Categorical):
        params["B"] = random_simplex(rng, (*batch, *shapes["B"]))
    elif isinstance(emission, hp.Gaussian):
        params["mu"] = rng.normal(0.0, 2.0, size=(*batch, *shapes["mu"]))
        params["sigma"] = rng.uniform(0.5, 2.0, size=(*batch, *shapes["sigma"]))
    elif isinstance(emission, hp.Poisson):
        params["rate"] = rng.uniform(0.5, 6.0, size=(*batch, *shapes["rate"]))
    else:
        raise AssertionError(f"unknown emission {emission!r}")
    return {name: torch.as_tensor(value, dtype=torch.float64) for name, value in params.items()}


def placement_free(results: list[dict]) -> list[dict]:
    """Task results without what differs by where a task ran: its process id, and numba's
    threads (the available cores when the task runs here, one in a worker; the numba routes
    give the same bits either way)."""
    return [
        {k: v for k, v in result.items() if k not in ("pid", "numba_threads")} for result in results
    ]
