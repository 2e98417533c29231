"""Fixtures for the degeneracy diagnostics: thread settings and the project workload."""

from __future__ import annotations

from collections.abc import Iterator

import matplotlib
import pytest

from hmm_pyro import HMM, Categorical, simulate
from hmm_pyro._parallel import torch_threads
from tests.diagnostics.helpers import TRUTH, tensors

matplotlib.use("Agg")


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """One intra-op thread: small HMM tensors are slower with two threads on a shared box."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def workload_hmm() -> HMM:
    return HMM(3, Categorical(5))


@pytest.fixture(scope="session")
def workload_data(workload_hmm):
    """The project workload: 20 sequences x 500 steps."""
    data, _ = simulate(workload_hmm, tensors(TRUTH), [500] * 20, seed=0)
    return data


@pytest.fixture(scope="session")
def small_data(workload_hmm):
    """5 sequences x 200 steps of the workload model (fast forward-backward)."""
    data, _ = simulate(workload_hmm, tensors(TRUTH), [200] * 5, seed=1)
    return data
