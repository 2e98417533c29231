"""Shared fixtures: seeded random sources and factories of small random HMMs.

Nothing here catches exceptions or relaxes warnings: a failure inside a fixture fails the test.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import distributed
import numpy as np
import pytest
import torch

import hmm_pyro as hp
from tests.helpers import make_emission, random_params, random_simplex


@pytest.fixture
def rng() -> np.random.Generator:
    """A freshly seeded numpy generator (same stream in every test)."""
    return np.random.default_rng(20240601)


@pytest.fixture
def generator() -> torch.Generator:
    """A freshly seeded torch CPU generator."""
    return torch.Generator().manual_seed(1234)


@pytest.fixture
def make_hmm(
    rng: np.random.Generator,
) -> Callable[..., tuple[hp.HMM, dict[str, torch.Tensor]]]:
    """Factory ``make_hmm(family, num_states=2, batch=(), prior=None) -> (hmm, params)``."""

    def factory(
        family: str,
        num_states: int = 2,
        batch: tuple[int, ...] = (),
        prior: hp.Prior | None = None,
    ) -> tuple[hp.HMM, dict[str, torch.Tensor]]:
        hmm = hp.HMM(num_states, make_emission(family), prior=prior)
        return hmm, random_params(hmm, rng, batch)

    return factory


@pytest.fixture
def make_kernel_inputs(
    rng: np.random.Generator,
) -> Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Factory of random normalised ``(log_pi, log_A, log_lik)`` float64 kernel inputs.

    ``make_kernel_inputs(num_states, num_steps, batch=(), param_batch=())``: ``log_lik`` has
    shape ``(*batch, T, K)``; ``log_pi``/``log_A`` have leading ``param_batch`` dimensions.
    """

    def factory(
        num_states: int,
        num_steps: int,
        batch: tuple[int, ...] = (),
        param_batch: tuple[int, ...] = (),
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        log_pi = np.log(random_simplex(rng, (*param_batch, num_states)))
        log_A = np.log(random_simplex(rng, (*param_batch, num_states, num_states)))
        log_lik = rng.normal(-1.0, 1.5, size=(*batch, num_steps, num_states))
        return tuple(torch.as_tensor(x, dtype=torch.float64) for x in (log_pi, log_A, log_lik))

    return factory


@pytest.fixture(scope="module")
def client():
    """A Dask client on a 2-worker LocalCluster (single-threaded workers), one per module."""
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as connected,
    ):
        yield connected
