"""Poisson count emissions (univariate and independent channels)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

import hmm_pyro as hp
from hmm_pyro.emissions import from_config

NUM_DRAWS = 200_000


def _params(rng, dim, batch=()):
    shape = (*batch, 3) if dim is None else (*batch, 3, dim)
    return {"rate": torch.as_tensor(rng.uniform(0.2, 12.0, size=shape))}


def _data(dim):
    if dim is None:
        return hp.Sequences([[0, 4, np.nan, 17], [2, 1]])
    return hp.Sequences(
        [
            np.array([[0, 3], [np.nan, 5], [np.nan, np.nan], [9, 0]]),
            np.array([[1, 1], [2, np.nan]]),
        ],
        dim=2,
    )


def _scipy_table(rate: np.ndarray, data: hp.Sequences) -> np.ndarray:
    values = data.values.numpy()
    rate = rate.reshape(rate.shape[0], -1)
    num, steps, dim = values.shape
    table = np.zeros((num, steps, rate.shape[0]))
    for n in range(num):
        for t in range(steps):
            for k in range(rate.shape[0]):
                for d in range(dim):
                    if not np.isnan(values[n, t, d]):
                        table[n, t, k] += stats.poisson.logpmf(values[n, t, d], rate[k, d])
    return table


@pytest.mark.parametrize("dim", [None, 2])
def test_log_likelihood_table_matches_scipy(rng, dim):
    emission = hp.Poisson(dim=dim)
    params = _params(rng, dim)
    data = _data(dim)
    table = emission.log_likelihood_table(params, data)
    assert table.shape == (2, 4, 3)
    expected = _scipy_table(params["rate"].numpy(), data)
    np.testing.assert_allclose(table.numpy(), expected, rtol=0, atol=1e-12)
    assert torch.all(table[1, 2:] == 0)


@pytest.mark.parametrize("dim", [None, 2])
def test_log_factorials_cached_on_the_data_give_the_same_table(rng, dim):
    """The table with ``log y!`` cached on the data equals, bit for bit, the uncached one."""
    emission = hp.Poisson(dim=dim)
    params = _params(rng, dim)
    data = _data(dim)
    uncached = hp.Emission.log_likelihood_table(emission, params, data)
    for dtype in (torch.float64, torch.float32, torch.float64):  # each dtype cached once
        typed = {"rate": params["rate"].to(dtype)}
        expected = hp.Emission.log_likelihood_table(emission, typed, data)
        assert torch.equal(emission.log_likelihood_table(typed, data), expected)
    assert torch.equal(emission.log_likelihood_table(params, data), uncached)


@pytest.mark.parametrize("dim", [None, 2])
def test_log_likelihood_table_with_draw_dimensions(rng, dim):
    emission = hp.Poisson(dim=dim)
    params = _params(rng, dim, batch=(3,))
    data = _data(dim)
    table = emission.log_likelihood_table(params, data)
    assert table.shape == (3, 2, 4, 3)
    for s in range(3):
        expected = _scipy_table(params["rate"][s].numpy(), data)
        np.testing.assert_allclose(table[s].numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dim", [None, 2])
def test_conditional_scores_like_the_table(rng, dim):
    emission = hp.Poisson(dim=dim)
    params = _params(rng, dim)
    width = emission.dim
    states = torch.arange(3)[:, None]
    values = torch.tensor([[4.0] * width, [0.0] * width], dtype=torch.float64)
    observed = torch.ones(2, width, dtype=torch.bool)
    observed[0, -1] = False
    scored = emission.conditional(params, states, observed).log_prob(emission.observation(values))
    rate = params["rate"].reshape(3, width).numpy()
    expected = np.zeros((3, 2))
    for k in range(3):
        for n in range(2):
            for d in range(width):
                if observed[n, d]:
                    expected[k, n] += stats.poisson.logpmf(values[n, d].item(), rate[k, d])
    np.testing.assert_allclose(scored.numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dim", [None, 2])
def test_sample_moments(rng, dim):
    emission = hp.Poisson(dim=dim)
    params = _params(rng, dim)
    state = 2
    draws = emission.sample(
        params, torch.full((NUM_DRAWS,), state), torch.Generator().manual_seed(8)
    )
    assert draws.shape == (NUM_DRAWS, emission.dim)
    assert torch.equal(draws, draws.round()) and draws.min() >= 0
    rate = params["rate"][state].reshape(-1).numpy()
    mean, var = draws.mean(0).numpy(), draws.var(0).numpy()
    # SE of the mean sqrt(rate / n); of the variance sqrt((rate + 2 rate**2) / n) (4th cumulant)
    assert np.all(np.abs(mean - rate) < 5 * np.sqrt(rate / NUM_DRAWS)), (mean, rate)
    assert np.all(np.abs(var - rate) < 5 * np.sqrt((rate + 2 * rate**2) / NUM_DRAWS)), (var, rate)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ([[0, 2, -1]], r"data: expected non-negative counts"),
        ([[0, 2.5]], r"data: expected integer counts"),
        ([[0, -0.5]], r"data: expected integer counts"),
    ],
)
def test_validate_data_rejects(data, match):
    with pytest.raises(ValueError, match=match):
        hp.Poisson().validate_data(hp.Sequences(data))


def test_validate_data_dimension():
    with pytest.raises(ValueError, match="data: expected observations of dimension 1"):
        hp.Poisson().validate_data(hp.Sequences(np.zeros((4, 2)), dim=2))
    hp.Poisson(dim=2).validate_data(hp.Sequences(np.zeros((4, 2)), dim=2))
    hp.Poisson().validate_data(hp.Sequences([[0, 1000, np.nan]]))


@pytest.mark.parametrize("dim", [None, 2])
def test_config_round_trip(dim):
    emission = hp.Poisson(dim=dim)
    assert emission.to_config() == {"family": "poisson", "dim": dim}
    rebuilt = from_config(emission.to_config())
    assert isinstance(rebuilt, hp.Poisson) and rebuilt == emission
    assert rebuilt != hp.Gaussian(dim=dim)


def test_from_config_unknown_family():
    with pytest.raises(ValueError, match="config"):
        from_config({"family": "binomial"})
    with pytest.raises(ValueError, match="config"):
        from_config({"dim": 2})


def test_description():
    assert hp.Poisson().param_shapes(2) == {"rate": (2,)}
    assert hp.Poisson(dim=3).param_shapes(2) == {"rate": (2, 3)}
    assert hp.Poisson(dim=3).param_dims() == {"rate": ("state", "dim")}


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        ([1.0, 0.0, 2.0], ValueError, r"params\['rate'\].*> 0"),
        ([1.0, -3.0, 2.0], ValueError, r"params\['rate'\].*> 0"),
        ([1.0, float("inf"), 2.0], ValueError, r"params\['rate'\].*finite"),
        ([[1.0, 2.0, 3.0]], ValueError, None),
    ],
)
def test_validate_params(value, error, match):
    params = {"rate": torch.tensor(value, dtype=torch.float64)}
    if match is None:  # (1, 3) has trailing shape (3,): a batch of one draw, accepted
        hp.Poisson().validate_params(params, 3)
        return
    with pytest.raises(error, match=match):
        hp.Poisson().validate_params(params, 3)


def test_bhattacharyya_matches_sum_over_counts(rng):
    params = _params(rng, None)
    bc = hp.Poisson().bhattacharyya(params).numpy()
    rate = params["rate"].numpy()
    counts = np.arange(200)
    for i in range(3):
        for j in range(3):
            pmf = stats.poisson.pmf(counts, rate[i]) * stats.poisson.pmf(counts, rate[j])
            assert abs(bc[i, j] - np.sqrt(pmf).sum()) < 1e-10


def test_weighted_statistics_are_uncentred_moments_by_hand():
    data = hp.Sequences([[0, 4, np.nan, 2], [3]])
    weights = torch.tensor(
        [[1.0, 0.0], [0.5, 0.5], [0.2, 0.8], [0.0, 1.0], [0.4, 0.6], [0, 0], [0, 0], [0, 0]],
        dtype=torch.float64,
    )
    stats = hp.Poisson().weighted_statistics(data, weights)
    n = torch.tensor([[1.0 + 0.5 + 0.4], [0.5 + 1.0 + 0.6]], dtype=torch.float64)
    s1 = torch.tensor([[2.0 + 1.2], [2.0 + 2.0 + 1.8]], dtype=torch.float64)
    s2 = torch.tensor([[8.0 + 3.6], [8.0 + 4.0 + 5.4]], dtype=torch.float64)
    torch.testing.assert_close(stats["n"], n)
    torch.testing.assert_close(stats["s1"], s1)
    torch.testing.assert_close(stats["s2"], s2)
    torch.testing.assert_close(stats["shift"], torch.zeros(1, dtype=torch.float64))


def test_maximize_is_the_gamma_poisson_mode():
    from hmm_pyro.emissions.poisson import MIN_RATE

    emission = hp.Poisson(dim=2)
    stats = {
        "n": torch.tensor([[4.0, 2.0], [3.0, 0.0]], dtype=torch.float64),
        "s1": torch.tensor([[10.0, 0.0], [6.0, 0.0]], dtype=torch.float64),
    }
    hyper = {
        "rate_shape": torch.tensor([[2.5, 0.5], [1.0, 3.0]], dtype=torch.float64),
        "rate_rate": torch.full((2, 2), 0.5, dtype=torch.float64),
    }
    new = emission.maximize(stats, hyper, None, use_prior=True)["rate"]
    expected = torch.tensor(
        [[11.5 / 4.5, MIN_RATE], [6.0 / 3.5, 2.0 / 0.5]], dtype=torch.float64
    )  # (s1 + a - 1) / (n + b), at least MIN_RATE
    torch.testing.assert_close(new, expected)
    previous = {"rate": torch.tensor([[1.0, 2.0], [3.0, 4.0]])}
    ml = emission.maximize(stats, hyper, previous, use_prior=False)["rate"]
    torch.testing.assert_close(
        ml, torch.tensor([[2.5, MIN_RATE], [2.0, 4.0]], dtype=torch.float64)
    )  # s1 / n; no weight: previous value
    univariate = hp.Poisson().maximize(
        {"n": stats["n"][:, 1:], "s1": stats["s1"][:, 1:]}, {}, None, use_prior=False
    )["rate"]
    assert univariate.shape == (2,)
    assert float(univariate[0]) == MIN_RATE and bool(univariate[1].isnan())


def test_pooled_params_are_the_mean_counts():
    pooled = hp.Poisson(dim=2).pooled_params(_data(2))
    # coordinate 0: 0, 9, 1, 2; coordinate 1: 3, 5, 0, 1
    torch.testing.assert_close(pooled["rate"], torch.tensor([[3.0, 2.25]], dtype=torch.float64))
    zeros = hp.Poisson().pooled_params(hp.Sequences([[0, 0]]))
    torch.testing.assert_close(zeros["rate"], torch.tensor([1e-12], dtype=torch.float64))


def test_start_from_data_puts_rates_above_quantiles():
    data = hp.Sequences([[0, 1, 2, 3, 4, 5, 6, 7, 8, np.nan]])
    start = hp.Poisson().start_from_data(data, 3, torch.Generator().manual_seed(2), torch.float64)
    rate = start["rate"]
    assert rate.shape == (3,)
    assert bool(((rate >= 0.5) & (rate <= 8.0 + 1.5)).all())


def test_location_is_the_first_rate():
    rate = torch.tensor([[1.0, 9.0], [0.5, 8.0]])
    torch.testing.assert_close(hp.Poisson(dim=2).location({"rate": rate}), rate[:, 0])
    torch.testing.assert_close(hp.Poisson().location({"rate": rate[:, 1]}), rate[:, 1])
