"""Categorical emissions: likelihood table, sampling, validation, configuration."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

import hmm_pyro as hp
from hmm_pyro.emissions import categorical as categorical_module
from hmm_pyro.emissions import from_config

NUM_DRAWS = 200_000


@pytest.fixture
def emission():
    return hp.Categorical(num_symbols=4)


@pytest.fixture
def params(rng):
    return {"B": torch.as_tensor(rng.dirichlet(np.ones(4), size=3))}


def _data():
    return hp.Sequences([[0, 3, np.nan, 1, 2], [2, 2], [np.nan, 0, 3]])


def _scipy_table(B: np.ndarray, data: hp.Sequences) -> np.ndarray:
    values = data.values[..., 0].numpy()
    num, steps = values.shape
    table = np.zeros((num, steps, B.shape[0]))
    for n in range(num):
        for t in range(steps):
            if np.isnan(values[n, t]):
                continue  # missing or padding: no emission term
            for k in range(B.shape[0]):
                onehot = np.eye(B.shape[1])[int(values[n, t])]
                table[n, t, k] = stats.multinomial.logpmf(onehot, 1, B[k])
    return table


@pytest.mark.parametrize("one_hot", [True, False], ids=["one_hot", "indexing"])
def test_log_likelihood_table_matches_scipy(emission, params, monkeypatch, one_hot):
    if not one_hot:
        monkeypatch.setattr(categorical_module, "_ONE_HOT_LIMIT", 0)
    data = _data()
    table = emission.log_likelihood_table(params, data)
    assert table.shape == (3, 5, 3) and table.dtype == torch.float64
    expected = _scipy_table(params["B"].numpy(), data)
    np.testing.assert_allclose(table.numpy(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("one_hot", [True, False], ids=["one_hot", "indexing"])
def test_log_likelihood_table_with_draw_dimensions(emission, rng, monkeypatch, one_hot):
    if not one_hot:
        monkeypatch.setattr(categorical_module, "_ONE_HOT_LIMIT", 0)
    B = torch.as_tensor(rng.dirichlet(np.ones(4), size=(2, 3, 3)))
    data = _data()
    table = emission.log_likelihood_table({"B": B}, data)
    assert table.shape == (2, 3, 3, 5, 3)
    for i in range(2):
        for j in range(3):
            expected = _scipy_table(B[i, j].numpy(), data)
            np.testing.assert_allclose(table[i, j].numpy(), expected, rtol=0, atol=1e-12)


def test_zero_probability_symbol_gives_a_finite_floor_not_nan(emission):
    """``log 0`` is mapped to the most negative float: no NaN from ``0 * -inf`` in the one-hot
    product, and the state is effectively impossible at that step."""
    B = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]], dtype=torch.float64)
    data = hp.Sequences([[0, 2, 1]])
    table = emission.log_likelihood_table({"B": B}, data)
    assert not torch.isnan(table).any()
    assert table[0, 1, 0].item() == torch.finfo(torch.float64).min
    assert table[0, 0, 0].item() == np.log(0.5)
    hmm = hp.HMM(2, emission)
    pi = torch.tensor([0.5, 0.5], dtype=torch.float64)
    A = torch.tensor([[0.9, 0.1], [0.1, 0.9]], dtype=torch.float64)
    loglik = hmm.log_likelihood({"pi": pi, "A": A, "B": B}, data).item()
    # only paths through state 1 at step 1 count
    paths = [(a, 1, c) for a in range(2) for c in range(2)]
    total = sum(pi[a] * B[a, 0] * A[a, 1] * B[1, 2] * A[1, c] * B[c, 1] for a, _, c in paths).item()
    assert abs(loglik - np.log(total)) < 1e-12


def test_conditional_scores_like_the_table(emission, params):
    states = torch.arange(3)[:, None]  # (K, 1): as enumerated by Pyro
    values = torch.tensor([[3.0], [0.0]], dtype=torch.float64)
    observed = torch.tensor([[True], [False]])
    scored = emission.conditional(params, states, observed).log_prob(emission.observation(values))
    expected = torch.stack([params["B"][:, 3].log(), torch.zeros(3, dtype=torch.float64)], -1)
    torch.testing.assert_close(scored, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("state", [0, 2])
def test_sample_frequencies(emission, params, state):
    generator = torch.Generator().manual_seed(5)
    states = torch.full((NUM_DRAWS,), state)
    draws = emission.sample(params, states, generator)
    assert draws.shape == (NUM_DRAWS, 1) and draws.dtype == torch.float64
    assert torch.equal(draws, draws.round()) and draws.min() >= 0 and draws.max() <= 3
    freq = np.bincount(draws[:, 0].long().numpy(), minlength=4) / NUM_DRAWS
    probs = params["B"][state].numpy()
    standard_error = np.sqrt(probs * (1 - probs) / NUM_DRAWS)
    assert np.all(np.abs(freq - probs) < 5 * standard_error), (freq, probs)


def test_sample_is_reproducible(emission, params):
    states = torch.tensor([[0, 1, 2, 1]])
    first = emission.sample(params, states, torch.Generator().manual_seed(9))
    second = emission.sample(params, states, torch.Generator().manual_seed(9))
    assert torch.equal(first, second)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ([[0, 4]], r"data: expected symbols in \[0, 3\]"),
        ([[0, -1]], r"data: expected symbols in \[0, 3\]"),
        ([[0, 1.5]], r"data: expected integer symbols"),
        ([[0.0, 0.999]], r"data: expected integer symbols"),
    ],
)
def test_validate_data_rejects(emission, data, match):
    with pytest.raises(ValueError, match=match):
        emission.validate_data(hp.Sequences(data))


def test_validate_data_rejects_multivariate_data(emission):
    with pytest.raises(ValueError, match="data: expected observations of dimension 1"):
        emission.validate_data(hp.Sequences(np.zeros((1, 4, 2))))


def test_validate_data_accepts_valid_and_all_missing(emission):
    emission.validate_data(hp.Sequences([[0, 3, np.nan], [1]]))
    emission.validate_data(hp.Sequences([[np.nan, np.nan]]))


def test_config_round_trip_and_equality(emission):
    config = emission.to_config()
    assert config == {"family": "categorical", "num_symbols": 4}
    rebuilt = from_config(config)
    assert isinstance(rebuilt, hp.Categorical) and rebuilt.num_symbols == 4
    assert rebuilt == emission and hash(rebuilt) == hash(emission)
    assert rebuilt != hp.Categorical(num_symbols=5)
    assert repr(emission) == "Categorical(num_symbols=4)"


def test_description(emission):
    assert emission.dim == 1
    assert emission.param_shapes(3) == {"B": (3, 4)}
    assert emission.param_dims() == {"B": ("state", "symbol")}


@pytest.mark.parametrize(
    ("value", "error"), [(1, ValueError), (0, ValueError), (2.0, TypeError), ("3", TypeError)]
)
def test_bad_num_symbols(value, error):
    with pytest.raises(error, match="num_symbols"):
        hp.Categorical(num_symbols=value)


@pytest.mark.parametrize(
    ("B", "error", "match"),
    [
        (torch.full((3, 4), 0.25, dtype=torch.float64)[:, :3], ValueError, r"params\['B'\]"),
        (torch.full((3, 4), 0.3, dtype=torch.float64), ValueError, r"params\['B'\].*simplex"),
        (
            torch.tensor([[1.2, -0.2, 0, 0]] * 3, dtype=torch.float64),
            ValueError,
            r"params\['B'\].*simplex",
        ),
        (torch.full((3, 4), 1, dtype=torch.long), TypeError, r"params\['B'\]"),
        (torch.full((3, 4), float("nan"), dtype=torch.float64), ValueError, r"params\['B'\]"),
    ],
)
def test_validate_params(emission, B, error, match):
    with pytest.raises(error, match=match):
        emission.validate_params({"B": B}, 3)


def test_validate_params_missing_key(emission):
    with pytest.raises(ValueError, match="params: expected key 'B'"):
        emission.validate_params({"b": torch.full((3, 4), 0.25)}, 3)


def test_bhattacharyya(emission, params):
    bc = emission.bhattacharyya(params)
    B = params["B"].numpy()
    expected = np.array([[np.sum(np.sqrt(B[i] * B[j])) for j in range(3)] for i in range(3)])
    np.testing.assert_allclose(bc.numpy(), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.diag(bc.numpy()), 1.0, rtol=0, atol=1e-12)
    h2 = emission.hellinger(params)
    np.testing.assert_allclose(h2.numpy(), 1 - expected, rtol=0, atol=1e-12)
    disjoint = torch.tensor([[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]], dtype=torch.float64)
    assert emission.hellinger({"B": disjoint})[0, 1].item() == 1.0


def test_sequence_log_likelihood_without_a_table_equals_the_table_route(emission, params, rng):
    """The per-symbol lookup route (unbatched parameters) against the generic forward
    algorithm on the table, with missing values, ragged lengths and a zero-probability
    symbol; gradients in log pi, log A and B agree to 1e-9."""
    data = _data()
    B = params["B"].clone()
    B[0, 2] = 0.0
    B = B / B.sum(-1, keepdim=True)
    log_pi = torch.log(torch.as_tensor(rng.dirichlet(np.ones(3))))
    log_A = torch.log(torch.as_tensor(rng.dirichlet(np.ones(3), size=3)))
    results = []
    for route in ("symbols", "table"):
        inputs = [t.clone().requires_grad_() for t in (log_pi, log_A, B)]
        call = (
            emission.sequence_log_likelihood
            if route == "symbols"
            else super(hp.Categorical, emission).sequence_log_likelihood
        )
        value = call(inputs[0], inputs[1], {"B": inputs[2]}, data)
        weights = torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64)
        results.append((value.detach(), torch.autograd.grad((value * weights).sum(), inputs)))
    (fast, fast_grads), (slow, slow_grads) = results
    assert fast.shape == (3,) and (fast - slow).abs().max() < 1e-9
    for a, b in zip(fast_grads, slow_grads, strict=True):
        assert (a - b).abs().max() < 1e-9


def test_sequence_log_likelihood_with_draw_dimensions(emission, params, rng):
    """Batched parameters take the table route and match the unbatched route draw by draw."""
    data = _data()
    B = torch.as_tensor(rng.dirichlet(np.ones(4), size=(2, 3)))
    log_pi = torch.log(torch.as_tensor(rng.dirichlet(np.ones(3), size=2)))
    log_A = torch.log(torch.as_tensor(rng.dirichlet(np.ones(3), size=(2, 3))))
    batched = emission.sequence_log_likelihood(log_pi, log_A, {"B": B}, data)
    assert batched.shape == (2, 3)
    for d in range(2):
        single = emission.sequence_log_likelihood(log_pi[d], log_A[d], {"B": B[d]}, data)
        assert (batched[d] - single).abs().max() < 1e-10


def test_weighted_statistics_count_symbols_by_hand(emission, monkeypatch):
    data = _data()  # symbols [0, 3, -, 1, 2], [2, 2], [-, 0, 3]; N = 3, T = 5
    weights = torch.zeros(3, 5, 2, dtype=torch.float64)
    weights[0, :5] = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.3, 0.7], [0.0, 1.0], [1.0, 0.0]])
    weights[1, :2] = torch.tensor([[0.25, 0.75], [1.0, 0.0]])
    weights[2, :3] = torch.tensor([[0.9, 0.1], [0.0, 1.0], [0.6, 0.4]])
    expected = torch.tensor(
        [[1.0 + 0.0, 0.0, 1.0 + 0.25 + 1.0, 0.5 + 0.6], [0.0 + 1.0, 1.0, 0.0 + 0.75, 0.5 + 0.4]],
        dtype=torch.float64,
    )
    dense = emission.weighted_statistics(data, weights.reshape(-1, 2))
    assert list(dense) == ["counts"]
    torch.testing.assert_close(dense["counts"], expected)
    monkeypatch.setattr(categorical_module, "_STATISTICS_ONE_HOT_LIMIT", 0)
    sparse = emission.weighted_statistics(data, weights.reshape(-1, 2))
    torch.testing.assert_close(sparse["counts"], expected)


def test_maximize_is_the_dirichlet_mode(emission):
    counts = torch.tensor(
        [[3.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]], dtype=torch.float64
    )
    stats = {"counts": counts}
    two = {"B": torch.full((3, 4), 2.0, dtype=torch.float64)}
    previous = {"B": torch.tensor([[0.1, 0.2, 0.3, 0.4]] * 3, dtype=torch.float64)}
    mode = emission.maximize(stats, two, previous, use_prior=True)["B"]
    expected = torch.tensor(
        [[4 / 8, 2 / 8, 1 / 8, 1 / 8], [0.25] * 4, [0.25] * 4], dtype=torch.float64
    )
    torch.testing.assert_close(mode, expected)
    # Maximum likelihood: frequencies; a row without counts keeps its value (uniform if none).
    ml = emission.maximize(stats, two, previous, use_prior=False)["B"]
    torch.testing.assert_close(ml[0], torch.tensor([0.75, 0.25, 0.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(ml[1], previous["B"][1])
    assert torch.equal(emission.maximize(stats, two, None, use_prior=False)["B"][1], expected[1])
    # Concentration below 1: pseudo-counts clamped at zero, rows renormalised.
    half = {"B": torch.full((3, 4), 0.5, dtype=torch.float64)}
    sparse = emission.maximize(stats, half, previous, use_prior=True)["B"]
    torch.testing.assert_close(sparse[0], torch.tensor([2.5, 0.5, 0, 0], dtype=torch.float64) / 3)
    torch.testing.assert_close(sparse[1], previous["B"][1])


def test_pooled_params_are_the_overall_symbol_frequencies(emission):
    pooled = emission.pooled_params(_data())  # symbols 0, 3, 1, 2, 2, 2, 0, 3
    expected = torch.tensor([[2.0, 1.0, 3.0, 2.0]], dtype=torch.float64) / 8
    torch.testing.assert_close(pooled["B"], expected)
    empty = emission.pooled_params(hp.Sequences([[np.nan, np.nan]]))
    assert torch.equal(empty["B"], torch.zeros(1, 4, dtype=torch.float64))


def test_location_is_the_expected_symbol(emission):
    B = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], [0.25, 0.25, 0.25, 0.25]])
    torch.testing.assert_close(emission.location({"B": B}), torch.tensor([0.5, 3.0, 1.5]))
    batch = emission.location({"B": torch.stack([B, B.flip(0)])})
    torch.testing.assert_close(batch, torch.tensor([[0.5, 3.0, 1.5], [1.5, 3.0, 0.5]]))


def test_e_step_on_the_symbol_route_equals_forward_backward_on_the_table():
    """The gradient route (fused numba kernel) gives the table route's expected statistics.

    Ragged lengths and missing symbols included; agreement to 1e-10 (float64 round-off of
    sums over ~400 steps is ~1e-13), so a wrong count of one step (>= 1e-3 here) fails.
    """
    from pyro.ops.special import safe_log

    from hmm_pyro.emissions.base import Emission
    from hmm_pyro.simulate import REFERENCE_PARAMS

    hmm = hp.HMM(3, hp.Categorical(5))
    data, _ = hp.simulate(hmm, REFERENCE_PARAMS, [200, 150, 9], seed=3)
    values = data.values.clone()
    values[0, 5:40:3] = float("nan")
    data = hmm.prepare_data(hp.Sequences(values, lengths=data.lengths))
    log_pi, log_A = safe_log(REFERENCE_PARAMS["pi"]), safe_log(REFERENCE_PARAMS["A"])
    route = hmm.emission.expected_statistics(log_pi, log_A, REFERENCE_PARAMS, data)
    table = Emission.expected_statistics(hmm.emission, log_pi, log_A, REFERENCE_PARAMS, data)
    torch.testing.assert_close(route[0], table[0], rtol=0, atol=1e-10)
    for ours, reference in zip(route[1:3], table[1:3], strict=True):
        torch.testing.assert_close(ours, reference, rtol=0, atol=1e-10)
    torch.testing.assert_close(route[3]["counts"], table[3]["counts"], rtol=0, atol=1e-10)
    assert float(route[3]["counts"].sum()) == pytest.approx(float(data.observed.sum()))


def test_from_data_counts_the_symbols_seen():
    assert hp.Categorical.from_data([[0, 3, 1], [2]]).num_symbols == 4
    assert hp.Categorical.from_data(hp.Sequences([[0, np.nan, 5]])).num_symbols == 6
    assert hp.Categorical.from_data([[0, 0]]).num_symbols == 2  # at least two symbols
    assert hp.Categorical.from_data([[np.nan]]).num_symbols == 2  # nothing observed
    with pytest.raises(ValueError, match="data: expected integer symbols"):
        hp.Categorical.from_data([[0, 1.5]])
    with pytest.raises(ValueError, match=r"data: expected one value per step .* got 2"):
        hp.Categorical.from_data(np.zeros((1, 3, 2)))


def test_named_symbols_round_trip_and_label_the_entries():
    named = hp.Categorical(3, symbols=["a", "b", " "])
    assert named.symbol_names == ("a", "b", " ")
    assert named.to_config() == {
        "family": "categorical",
        "num_symbols": 3,
        "symbols": ["a", "b", " "],
    }
    rebuilt = from_config(named.to_config())
    assert rebuilt == named and hash(rebuilt) == hash(named)
    assert named != hp.Categorical(3) and hp.Categorical(3).symbol_names is None
    assert named.param_coords() == {"symbol": ["a", "b", " "]}
    assert hp.Categorical(3).param_coords() == {}
    assert (
        named.entry_label("B", 1, 2) == "1: " and hp.Categorical(3).entry_label("B", 1, 2) == "1:2"
    )
    assert repr(hp.Categorical(6, symbols=list("abcdef"))).endswith(
        "symbols=['a', 'b', 'c', 'd', 'e', ...])"
    )
    with pytest.raises(ValueError, match="symbols: expected 4 names"):
        hp.Categorical(4, symbols=["a", "b"])


def test_named_symbols_come_from_the_data():
    data = hp.Sequences([[0, 2, 1]], symbols=["x", "y", "z"])
    assert hp.Categorical.from_data(data) == hp.Categorical(3, symbols=["x", "y", "z"])
    assert hp.Categorical.from_options(data=data, num_symbols=3).symbol_names == ("x", "y", "z")
    with pytest.raises(ValueError, match="num_symbols: the data name 3 symbols, got 5"):
        hp.Categorical.from_options(data=data, num_symbols=5)
