"""Forward-filtering backward-sampling: exact posterior path frequencies, seeding, padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hmm_pyro import kernels
from tests.reference import brute_force

NUM_DRAWS = 20_000
# Each path frequency is a binomial proportion with standard error sqrt(p (1 - p) / n) <= 0.5 /
# sqrt(20000) = 0.0035, so 0.015 is more than 4.2 standard errors for every path (about 2e-5
# two-sided per path, < 1e-3 over the 8 + 4 paths by a union bound). The seed is fixed, so the
# test is deterministic.
FREQUENCY_TOL = 0.015


def _path_frequencies(paths: torch.Tensor, num_states: int) -> np.ndarray:
    codes = np.zeros(paths.shape[0], dtype=np.int64)
    for t in range(paths.shape[1]):
        codes = codes * num_states + paths[:, t].numpy()
    return np.bincount(codes, minlength=num_states ** paths.shape[1]) / paths.shape[0]


def test_empirical_path_frequencies_match_brute_force_posterior():
    log_pi = torch.log(torch.tensor([0.6, 0.4], dtype=torch.float64))
    log_A = torch.log(torch.tensor([[0.7, 0.3], [0.2, 0.8]], dtype=torch.float64))
    log_lik = torch.log(
        torch.tensor(
            [[[0.5, 0.2], [0.1, 0.6], [0.4, 0.3]], [[0.2, 0.7], [0.3, 0.3], [0.9, 0.9]]],
            dtype=torch.float64,
        )
    )
    lengths = torch.tensor([3, 2])
    generator = torch.Generator().manual_seed(7)
    paths = kernels.sample_paths(log_pi, log_A, log_lik, lengths, NUM_DRAWS, generator)
    assert paths.shape == (NUM_DRAWS, 2, 3) and paths.dtype == torch.int64
    for n, length in enumerate(lengths.tolist()):
        ref = brute_force(log_pi, log_A, log_lik[n, :length])
        # the test bites: drawing each step from its smoothed marginal independently (a wrong
        # sampler with the right marginals) would be off by more than 3 * FREQUENCY_TOL here
        if length == 3:
            steps = np.arange(length)
            independent = ref.gamma[steps, ref.paths].prod(-1)
            assert np.max(np.abs(independent - ref.posterior)) > 3 * FREQUENCY_TOL
        freq = _path_frequencies(paths[:, n, :length], 2)
        assert np.max(np.abs(freq - ref.posterior)) < FREQUENCY_TOL, (n, freq, ref.posterior)
        assert torch.all(paths[:, n, length:] == -1)


def test_same_generator_seed_gives_identical_draws(make_kernel_inputs):
    log_pi, log_A, log_lik = make_kernel_inputs(3, 10, (4,))
    lengths = torch.tensor([10, 3, 7, 1])

    def draw(seed):
        generator = torch.Generator().manual_seed(seed)
        return kernels.sample_paths(log_pi, log_A, log_lik, lengths, 50, generator)

    first, second, other = draw(11), draw(11), draw(12)
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


def test_padding_is_minus_one(make_kernel_inputs, generator):
    log_pi, log_A, log_lik = make_kernel_inputs(3, 6, (3,), (2, 1))
    lengths = torch.tensor([6, 1, 4])
    paths = kernels.sample_paths(log_pi, log_A, log_lik, lengths, 5, generator)
    assert paths.shape == (5, 2, 3, 6)
    valid = torch.arange(6) < lengths[:, None]
    assert torch.all(paths[..., ~valid] == -1)
    assert torch.all((paths[..., valid] >= 0) & (paths[..., valid] < 3))


def test_draws_have_positive_posterior_probability(generator):
    """Forbidden transitions and impossible emissions never appear in a drawn path."""
    A = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.3, 0.0, 0.7]], dtype=torch.float64)
    log_pi = torch.log(torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64))
    log_lik = torch.zeros(8, 3, dtype=torch.float64)
    log_lik[4, 1] = -float("inf")
    paths = kernels.sample_paths(log_pi, A.log(), log_lik, None, 2000, generator)
    assert torch.all(paths[:, 0] != 2)
    assert torch.all(paths[:, 4] != 1)
    steps = A[paths[:, :-1], paths[:, 1:]]
    assert torch.all(steps > 0)


def test_single_step_draws_follow_the_posterior_marginal():
    log_pi = torch.log(torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64))
    log_lik = torch.log(torch.tensor([[0.5, 0.1, 0.4]], dtype=torch.float64))
    log_A = torch.zeros(3, 3, dtype=torch.float64)
    generator = torch.Generator().manual_seed(3)
    paths = kernels.sample_paths(log_pi, log_A, log_lik, None, NUM_DRAWS, generator)
    posterior = np.array([0.1, 0.03, 0.2]) / 0.33
    freq = np.bincount(paths[:, 0].numpy(), minlength=3) / NUM_DRAWS
    assert np.max(np.abs(freq - posterior)) < FREQUENCY_TOL


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "3"])
def test_bad_num_samples_is_named(bad):
    zero = torch.zeros(2, dtype=torch.float64)
    with pytest.raises(ValueError, match="num_samples"):
        kernels.sample_paths(zero, zero.expand(2, 2), zero.expand(3, 2), num_samples=bad)
