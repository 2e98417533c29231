"""The NumPy NUTS sampler: target moments, an exact HMM posterior, adaptation, divergences,
reproducibility.

Statistical tests pool several chains of different seeds and compare with Monte Carlo
standard errors from the chains' own effective sample sizes (|z| < 4 for every compared
quantity: a correct sampler fails one of the about 50 comparisons of this file with
probability about 0.3%); each docstring says which effect the bounds can detect.
"""

import math

import arviz as az
import numpy as np
import pytest
import torch

from hmm_pyro import HMM, Categorical, Sequences
from hmm_pyro.inference.potential import SITE, Potential
from hmm_pyro.inference.sampler import NUTS, _no_u_turn

SEEDS = (11, 12, 13, 14)


def _gaussian(covariance):
    precision = np.linalg.inv(covariance)

    def log_density(x):
        gradient = -precision @ x
        return 0.5 * float(x @ gradient), gradient

    return log_density


def _run(log_density, start, seed, warmup, draws, **options):
    sampler = NUTS(log_density, np.asarray(start, dtype=float), seed, warmup=warmup, **options)
    transitions = [sampler.step() for _ in range(warmup + draws)]
    return sampler, transitions


def _chains(log_density, start, warmup, draws, **options):
    """Draws ``(chains, draws, dim)`` and the kept transitions of each chain."""
    kept = []
    for seed in SEEDS:
        kept.append(_run(log_density, start, seed, warmup, draws, **options)[1][warmup:])
    return np.array([[t.position for t in chain] for chain in kept]), kept


def _z(chains, values, expected):
    """``(mean - expected) / MCSE`` of ``values`` ``(chains, draws)`` (bulk ESS)."""
    ess = float(az.ess(values))
    return (values.mean() - expected) / (values.std() / math.sqrt(ess))


CORRELATED = np.array([[1.0, 0.9 * 2.0], [0.9 * 2.0, 4.0]])
ILL_SCALED = np.diag([0.1, 0.5, 3.0, 10.0]) ** 2


@pytest.mark.parametrize("dense_mass", [False, True])
@pytest.mark.parametrize("covariance", [CORRELATED, ILL_SCALED], ids=["correlated", "ill-scaled"])
def test_gaussian_moments(covariance, dense_mass):
    """Means, variances and (correlated target) the correlation of 4 chains x (300 + 600) draws
    of a 2-D Gaussian with correlation 0.9 and a diagonal one with scales 0.1 to 10, each
    within 4 MCSE of the truth. The pooled bulk ESS is 1000-3000, so the bounds detect a mean
    off by about 0.15 sd, a variance off by about 20% and a correlation off by about 0.02: what
    a wrong leapfrog, metric or multinomial weighting (e.g. uniform over the trajectory
    without the energy weights) produces."""
    sd = np.sqrt(np.diag(covariance))
    draws, _ = _chains(_gaussian(covariance), sd, 300, 600, dense_mass=dense_mass)
    for i in range(len(covariance)):
        x = draws[..., i] / sd[i]
        assert abs(_z(draws, x, 0.0)) < 4, ("mean", i)
        assert abs(_z(draws, x**2, 1.0)) < 4, ("variance", i)
    if covariance is CORRELATED:
        product = draws[..., 0] / sd[0] * draws[..., 1] / sd[1]
        assert abs(_z(draws, product, 0.9)) < 4


@pytest.fixture(scope="module")
def tiny_hmm():
    """K=2, 2 symbols, flat priors, one sequence of 8 observations: model, data, potential."""
    hmm = HMM(2, Categorical(2))
    data = Sequences([np.array([0, 0, 1, 0, 0, 0, 1, 1], dtype=float)])
    return hmm, data, Potential(hmm, data)


def _invariants(params):
    """Label-invariant functionals of ``(pi, A, B)`` (leading draw dimensions)."""
    A, B, pi = params["A"], params["B"], params["pi"]
    return {
        "stay": A[..., 0, 0] + A[..., 1, 1],
        "max_b": np.maximum(B[..., 0, 1], B[..., 1, 1]),
        "min_b": np.minimum(B[..., 0, 1], B[..., 1, 1]),
        "first": (pi * B[..., :, 1]).sum(-1),
        "gap": np.abs(B[..., 0, 1] - B[..., 1, 1]),
    }


def test_tiny_hmm_posterior_against_importance_sampling(tiny_hmm):
    """Posterior means of five label-invariant functionals (sum of the stay probabilities,
    largest and smallest emission probability of symbol 1, probability of symbol 1 first, the
    gap between the states' emission probabilities) from 4 chains x (300 + 500) draws against
    the exact posterior by importance sampling from the prior (100 000 draws, weights the
    forward-algorithm likelihood), within 4 combined MCSE. The posterior sds are 0.1-0.3 and
    combined MCSE about 0.03-0.05 of them, so the bounds detect a bias of about 0.2 posterior
    sd: e.g. a missing log-Jacobian term or a sampler that ignores the likelihood."""
    hmm, data, potential = tiny_hmm
    prior = hmm.sample_prior(100_000, seed=5)
    log_w = hmm.log_likelihood(prior, data).sum(-1).numpy()
    weights = np.exp(log_w - log_w.max())
    weights /= weights.sum()
    reference = _invariants({k: v.numpy() for k, v in prior.items()})
    start = potential.unconstrain(hmm.sample_prior(seed=1))[SITE].numpy()
    draws, _ = _chains(potential.numpy_value_and_gradient, start, 300, 500)
    params = potential.constrain({SITE: torch.from_numpy(draws)})
    ours = _invariants({k: v.numpy() for k, v in params.items()})
    for name, values in ours.items():
        exact = float(weights @ reference[name])
        is_var = float(weights**2 @ (reference[name] - exact) ** 2)
        ess = float(az.ess(values))
        mcse = math.sqrt(values.var() / ess + is_var)
        assert abs(values.mean() - exact) < 4 * mcse, name


@pytest.mark.parametrize("target", [0.6, 0.95])
def test_step_size_adaptation_reaches_the_target(target):
    """On a 50-D Gaussian (scales 0.5-2), 4 chains x (300 + 300): the mean acceptance
    statistic of the terminal warm-up buffer (iterations 250-299, dual averaging with the final
    metric) is within 0.05 of the target, and that of the draws (the averaged step size, which
    is smaller: above the target, as in Stan) within [target - 0.03, target + 0.15]. A
    reversed dual-averaging update or an acceptance statistic of the wrong states misses by
    far more; measured: 0.57-0.59 / 0.69-0.76 for 0.6 and 0.92 / 0.94-0.97 for 0.95."""
    scales = np.geomspace(0.5, 2.0, 50)
    _, kept = _chains(
        _gaussian(np.diag(scales**2)), np.full(50, 0.5), 300, 300, target_accept=target
    )
    after = np.mean([t.accept_stat for chain in kept for t in chain])
    assert target - 0.03 < after < target + 0.15
    for seed in SEEDS[:2]:
        _, transitions = _run(
            _gaussian(np.diag(scales**2)), np.full(50, 0.5), seed, 300, 0, target_accept=target
        )
        buffer = np.mean([t.accept_stat for t in transitions[250:300]])
        assert abs(buffer - target) < 0.05


def test_divergences_at_a_hard_wall():
    """A half-normal (log density ``-inf`` below 0) started at 1: steps that cross the wall
    have infinite energy and are flagged as divergences (in 4 x 200 draws, measured about
    half of the iterations: a trajectory ends at the wall), no draw is below the wall, and the
    draws' mean is within 4 MCSE of ``sqrt(2/pi)`` (detects a bias of about 0.1 sd); a
    standard normal in the same runs has no divergence."""

    def wall(x):
        if x[0] < 0:
            return -math.inf, np.zeros(1)
        return -0.5 * float(x[0] ** 2), -x

    draws, kept = _chains(wall, [1.0], 200, 200)
    diverging = np.array([[t.diverging for t in chain] for chain in kept])
    assert 0.1 < diverging.mean() < 0.9
    assert (draws > 0).all()
    assert abs(_z(draws, draws[..., 0], math.sqrt(2 / math.pi))) < 4
    _, kept = _chains(_gaussian(np.eye(1)), [1.0], 200, 200)
    assert not any(t.diverging for chain in kept for t in chain)


def test_statistics_and_tree_depth_cap():
    """Per iteration: ``n_steps < 2**tree_depth <= 2 * n_steps`` (doublings started), the
    depth capped by ``max_tree_depth``, the step size fixed after warm-up and the log density
    that of the position."""
    log_density = _gaussian(np.diag([1.0, 100.0]))
    sampler, transitions = _run(log_density, [1.0, 1.0], 3, 50, 100, max_tree_depth=3)
    for t in transitions:
        assert t.n_steps < 2**t.tree_depth <= 2 * t.n_steps
        assert 1 <= t.tree_depth <= 3
        assert t.log_density == log_density(t.position)[0]
    assert {t.step_size for t in transitions[50:]} == {sampler.step_size}


def test_same_seed_same_bits_other_seed_other_draws(tiny_hmm):
    """Two chains with one seed in one process are equal bit for bit (positions and every
    statistic), and the potential returns the same bits at the same point; another seed gives
    other draws."""
    hmm, _, potential = tiny_hmm
    start = potential.unconstrain(hmm.sample_prior(seed=2))[SITE].numpy()
    first = _run(potential.numpy_value_and_gradient, start, 7, 30, 20)[1]
    second = _run(potential.numpy_value_and_gradient, start, 7, 30, 20)[1]
    other = _run(potential.numpy_value_and_gradient, start, 8, 30, 20)[1]
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a.position, b.position)
        assert a[1:] == b[1:]
    assert not np.array_equal(first[-1].position, other[-1].position)
    value, gradient = potential.numpy_value_and_gradient(start)
    again = potential.numpy_value_and_gradient(start)
    assert value == again[0] and np.array_equal(gradient, again[1])


def test_extra_u_turn_checks():
    """Stan's checks across merged subtrees: two halves whose ends and sums pass the plain
    criterion, but whose left half extended by the right half's first state turns back, make
    a U-turn; without that state they do not."""

    def leaf(p):
        p = np.asarray(p, dtype=float)
        return (p, p, p, p, 0.0)

    def tree(first, last, rho):
        return (leaf(first), leaf(last), np.asarray(rho, dtype=float), 0.0, leaf(last))

    left = tree([1.0, 0.0], [1.0, 0.0], [2.0, 0.0])
    plain = tree([0.0, 1.0], [1.0, 1.0], [1.0, 2.0])
    assert _no_u_turn(left, plain, left[2] + plain[2])
    rho = np.array([1.0, 1.1])
    turning = tree([-3.0, 0.1], [1.0, 1.0], rho - left[2])
    assert float(left[0][2] @ rho) > 0 and float(turning[1][2] @ rho) > 0
    assert float(left[0][2] @ (left[2] + turning[0][1])) < 0
    assert not _no_u_turn(left, turning, rho)


def test_bad_start_is_a_clear_error():
    """A start with a non-finite log density, or a target outside (0, 1), is refused."""
    with pytest.raises(ValueError, match="start"):
        NUTS(lambda x: (-math.inf, np.zeros(1)), np.zeros(1), 0, warmup=10)
    with pytest.raises(ValueError, match="target_accept"):
        NUTS(_gaussian(np.eye(1)), np.zeros(1), 0, warmup=10, target_accept=1.0)
