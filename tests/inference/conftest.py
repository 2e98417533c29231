"""Shared fixtures for the inference tests: the project's reference workload."""

import pytest
import torch

from hmm_pyro import HMM, Categorical, simulate
from hmm_pyro.simulate import REFERENCE_PARAMS


@pytest.fixture(scope="session")
def workload_hmm():
    """3 states, 5 symbols, flat Dirichlet priors."""
    return HMM(num_states=3, emission=Categorical(num_symbols=5))


@pytest.fixture(scope="session")
def true_params():
    return {name: value.clone() for name, value in REFERENCE_PARAMS.items()}


@pytest.fixture(scope="session")
def workload_data(workload_hmm, true_params):
    """20 sequences x 500 symbols from the reference HMM."""
    data, _ = simulate(workload_hmm, true_params, [500] * 20, seed=0)  # the demo data
    return data


@pytest.fixture(scope="session")
def small_data(workload_hmm, true_params):
    """Ragged, smaller data for fast runner tests."""
    data, _ = simulate(workload_hmm, true_params, [120, 80, 100], seed=7)
    return data


def _align_rows(truth: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """Permutation ``perm`` with ``estimate[perm]`` matched to ``truth`` (Hungarian, L1)."""
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(torch.cdist(truth, estimate, p=1).numpy())
    return torch.as_tensor(cols[rows.argsort()])


@pytest.fixture(scope="session")
def align_rows():
    """``align_rows(truth, estimate) -> perm`` such that ``estimate[perm]`` matches ``truth``."""
    return _align_rows
