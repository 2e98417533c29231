"""Warm-up adaptation: Stan's windows, dual averaging, the metric and its estimate."""

import math

import numpy as np
import pytest

from hmm_pyro.inference.adaptation import DualAveraging, Metric, metric_windows


@pytest.mark.parametrize(
    ("warmup", "expected"),
    [
        (1000, [(75, 100), (100, 150), (150, 250), (250, 450), (450, 950)]),
        (500, [(75, 100), (100, 150), (150, 250), (250, 450)]),
        (150, [(75, 100)]),
        (149, [(22, 135)]),  # 15% / 75% / 10%
        (100, [(15, 90)]),
        (20, [(3, 18)]),
        (19, []),
    ],
)
def test_metric_windows_are_stans(warmup, expected):
    """Stan's schedule: 75-iteration buffer, windows 25, 50, 100, ..., the last stretched to
    the 50-iteration terminal buffer; 15% / 75% / 10% below 150 iterations; none below 20."""
    assert metric_windows(warmup) == expected


def test_dual_averaging_finds_the_step_size_of_the_target():
    """Fed the acceptance ``exp(-eps)`` of its own step sizes, the averaged step size converges
    to ``-log(target)`` (within 2% after 2000 updates); the first update from a full acceptance
    grows the step size above ``10 * eps0 = mu`` as Stan's formula gives."""
    adapt = DualAveraging(0.8)
    adapt.restart(1.0)
    first = adapt.update(1.0)
    eta = 1.0 / 11.0
    assert first == pytest.approx(math.exp(math.log(10.0) + eta * 0.2 / 0.05), rel=1e-12)
    step = first
    for _ in range(2000):
        step = adapt.update(math.exp(-step))
    assert adapt.final() == pytest.approx(-math.log(0.8), rel=0.02)


@pytest.mark.parametrize("dense", [False, True])
def test_metric_estimate_is_stans_regularised_covariance(dense):
    """``n / (n + 5) * S + 1e-3 * 5 / (n + 5) * I`` with the sample (co)variance ``S``."""
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(40, 3)) @ np.array([[1.0, 0.5, 0], [0, 2.0, 0.3], [0, 0, 0.2]])
    metric = Metric(3, dense=dense)
    covariance = np.cov(draws, rowvar=False)
    expected = 40 / 45 * covariance + 1e-3 * 5 / 45 * np.eye(3)
    got = metric.estimate(draws)
    np.testing.assert_allclose(got, expected if dense else np.diag(expected), rtol=1e-12)


@pytest.mark.parametrize("dense", [False, True])
def test_momentum_has_the_mass_matrix_as_covariance(dense):
    """Momenta drawn for an inverse mass matrix ``S`` have covariance ``S^-1`` (20 000 draws:
    each entry within 4 standard errors, i.e. about 3% of the scale), and the velocity is
    ``S p``."""
    inverse_mass = np.array([[2.0, 0.6], [0.6, 0.5]])
    metric = Metric(2, dense=dense)
    metric.set(inverse_mass if dense else np.diag(inverse_mass))
    rng = np.random.default_rng(1)
    momenta = np.array([metric.momentum(rng) for _ in range(20_000)])
    target = np.linalg.inv(inverse_mass if dense else np.diag(np.diag(inverse_mass)))
    error = np.cov(momenta, rowvar=False) - target
    scale = np.sqrt((np.outer(np.diag(target), np.diag(target)) + target**2) / 20_000)
    assert (np.abs(error) < 4 * scale).all()
    p = momenta[0]
    expected = inverse_mass @ p if dense else np.diag(inverse_mass) * p
    np.testing.assert_allclose(metric.velocity(p), expected, rtol=1e-12)
