"""One long sequence on two threads: equal to the sequential lane sweeps, and really taken."""

import math

import numpy as np
import pytest
import torch

from hmm_pyro import HMM, Categorical, Gaussian, Prior, kernels, simulate
from hmm_pyro.inference.potential import Potential
from hmm_pyro.kernels._numba import lanes, split, symbol_sweeps, symbols
from tests.kernels._numba.per_sequence_reference import random_inputs

pytestmark = pytest.mark.xdist_group("split")  # one worker compiles the passes

RTOL = 1e-10  # the two routes differ in the order of their round-off only
SUBNORMAL = 1e-300  # below the normal numbers (2.2e-308) digits are lost: absolute there


def _assert_equal(got, expected):
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=SUBNORMAL)


def _one(rng, steps, states, scale=1.0):
    log_pi, log_A, log_lik, lengths = random_inputs(rng, 1, steps, states, scale)
    return log_pi, log_A, log_lik, lengths


@pytest.fixture
def forced(monkeypatch):
    """Every batch of one takes the split path on two threads; records each paired pass."""
    monkeypatch.setattr(split, "SPLIT_MIN_WORK", 1)
    monkeypatch.setattr(split, "SYMBOL_SPLIT_MIN_WORK", 1)
    monkeypatch.setattr(split, "THREADS_MIN_WORK", 1)
    monkeypatch.setattr(split.numba, "get_num_threads", lambda: 2)
    runs = []
    original = split._pair

    def spy(pool, here, there):
        runs.append(pool is not None)
        return original(pool, here, there)

    monkeypatch.setattr(split, "_pair", spy)
    return runs


@pytest.mark.parametrize("states", [1, 3, 7])  # compiled per K up to 6, general above
@pytest.mark.parametrize("steps", [1, 2, 3, 1500])
@pytest.mark.parametrize("threads", [True, False])
def test_table_route_equals_the_lane_sweeps(states, steps, threads):
    rng = np.random.default_rng(10 * states + steps)
    log_pi, log_A, log_lik, _ = _one(rng, steps, states)
    for length in {steps, max(1, steps - 5)}:  # and padded steps at the end
        lengths = np.array([length])
        expected = lanes.lane_sweeps(log_pi, log_A, log_lik, lengths)
        got = split.split_sweeps(log_pi, log_A, log_lik, lengths, threads=threads)
        other = split.split_sweeps(log_pi, log_A, log_lik, lengths, threads=not threads)
        for a, b in zip(got, other, strict=True):  # the same passes on one thread or two
            np.testing.assert_array_equal(a, b)
        assert not expected[3][0] and not got[3][0]
        gamma = expected[1].copy()
        gamma[length:] = 0.0
        _assert_equal(got[:3], (expected[0], gamma, expected[2]))
        value = split.split_log_likelihood(log_pi, log_A, log_lik, lengths, threads=threads)
        np.testing.assert_allclose(value, expected[0], rtol=1e-12)


def test_scale_factors_far_below_the_flush_level():
    """Emission logs of size 400 make scale factors below 1e-150: the log folding."""
    rng = np.random.default_rng(7)
    args = _one(rng, 900, 3, scale=400.0)
    _assert_equal(split.split_sweeps(*args)[:3], lanes.lane_sweeps(*args)[:3])


def test_zero_probability_transitions_and_emissions():
    """A left-to-right chain with forbidden emissions: exact zeros, equal elsewhere."""
    rng = np.random.default_rng(8)
    log_pi, _, log_lik, lengths = _one(rng, 1200, 3)
    lengths[0] = 1200
    log_pi[0] = [0.0, -math.inf, -math.inf]
    upper = np.triu(rng.uniform(0.01, 0.05, size=(3, 3)), 1) + np.eye(3)
    with np.errstate(divide="ignore"):
        log_A = np.log(upper / upper.sum(-1, keepdims=True))[None]
    log_lik[0, :300, 2] = -math.inf  # state 2 cannot emit the first 300 steps
    log_lik[0, 900:, 0] = -math.inf  # nor state 0 the last 300
    expected = lanes.lane_sweeps(log_pi, log_A, log_lik, lengths)
    got = split.split_sweeps(log_pi, log_A, log_lik, lengths)
    _assert_equal(got[:3], expected[:3])
    assert not got[3][0] and (got[1][:300, 2] == 0.0).all() and got[2][1, 0, 0] == 0.0


@pytest.mark.parametrize("where", ["emission", "transition", "last step", "first step"])
def test_sequence_of_zero_likelihood_is_dead_and_cleared(where):
    rng = np.random.default_rng(9)
    log_pi, log_A, log_lik, lengths = _one(rng, 600, 3)
    lengths[0] = 600
    if where == "emission":
        log_lik[0, 250] = -math.inf  # no state can emit step 250
    elif where == "transition":
        log_pi[0] = [0.0, -math.inf, -math.inf]  # starts in state 0, cannot leave it,
        log_A[0] = np.where(np.eye(3) > 0, 0.0, -math.inf)
        log_lik[0, 400, 0] = -math.inf  # which cannot emit step 400
    else:
        log_lik[0, -1 if where == "last step" else 0] = -math.inf
    got = lanes.lane_results(*split.split_sweeps(log_pi, log_A, log_lik, lengths))
    expected = lanes.forward_backward_lanes(log_pi, log_A, log_lik, lengths)
    assert split.split_log_likelihood(log_pi, log_A, log_lik, lengths)[0] == -math.inf
    assert got[0][0] == -math.inf
    assert not got[1].any() and not got[2].any()
    _assert_equal(got, expected)


def _symbol_inputs(rng, steps, states, num_symbols=4, length=None):
    log_pi = np.log(rng.dirichlet(np.ones(states)))
    log_A = np.log(rng.dirichlet(np.ones(states), size=states))
    log_B = np.log(rng.dirichlet(np.ones(num_symbols), size=states))
    values = rng.integers(-1, num_symbols, size=(1, steps))  # -1: missing
    lengths = np.array([steps if length is None else length])
    lane, bad = symbols.time_major_symbols(values, lengths, num_symbols)
    assert not bad
    return log_pi, log_A, log_B, lane, lengths


@pytest.mark.parametrize("states", [1, 3, 7])
@pytest.mark.parametrize(("steps", "length"), [(1, 1), (2, 2), (1400, 1400), (1400, 1391)])
def test_categorical_route_equals_the_symbol_lanes(states, steps, length):
    rng = np.random.default_rng(states * 1000 + length)
    args = _symbol_inputs(rng, steps, states, length=length)
    expected = symbols.categorical_lanes(*args, True)
    weights = np.array([0.7])
    statistics = symbols.weighted_statistics(*expected[1:], args[3], weights, 4)
    results = []
    for threads in (True, False):
        got = split.split_categorical(*args, threads=threads)
        _assert_equal(got[:3], expected)
        sweeps = symbol_sweeps.categorical_sweeps(*args, True, threads=threads)
        _assert_equal(sweeps.statistics(weights, 4), statistics)  # split where it applies
        results.append(got)
    for two, one in zip(*results, strict=True):  # the same passes: the same bits
        np.testing.assert_array_equal(two, one)


@pytest.mark.parametrize("where", ["symbol", "transition"])
def test_categorical_sequence_of_zero_likelihood(where):
    rng = np.random.default_rng(11)
    log_pi, log_A, log_B, lane, lengths = _symbol_inputs(rng, 500, 3)
    if where == "symbol":
        log_B[:, 2] = -math.inf  # no state emits symbol 2
        lane[100, 0] = 2
    else:
        log_pi[:] = [0.0, -math.inf, -math.inf]
        log_A[:] = np.where(np.eye(3) > 0, 0.0, -math.inf)
        log_B[0, 1] = -math.inf  # the only reachable state cannot emit symbol 1
        lane[300, 0] = 1
    got = split.split_categorical(log_pi, log_A, log_B, lane, lengths)
    expected = symbols.categorical_lanes(log_pi, log_A, log_B, lane, lengths, True)
    assert got[0][0] == -math.inf and not any(array.any() for array in got[1:])
    _assert_equal(got[:3], expected)


def test_takes_split_only_for_one_long_sequence():
    steps = split.SPLIT_MIN_WORK // 4
    assert split.takes_split(1, steps, 2)
    assert not split.takes_split(1, steps - 1, 2)  # too little work
    assert not split.takes_split(2, steps, 2)  # a batch: threads across sequences instead
    assert not split.takes_split(1, steps, 2, symbols=True)  # the unrolled symbol lanes
    assert split.takes_split(1, split.SYMBOL_SPLIT_MIN_WORK // 4, 2, symbols=True)
    assert split.takes_split(1, steps, 7, symbols=True)  # the general symbol lanes


@pytest.mark.parametrize("reason", ["one numba thread", "little work"])
def test_passes_one_after_the_other(reason, forced, monkeypatch):
    """One numba thread (as in the task runners) or too little work: no second thread."""
    if reason == "one numba thread":
        monkeypatch.setattr(split.numba, "get_num_threads", lambda: 1)
    else:
        monkeypatch.setattr(split, "THREADS_MIN_WORK", 300 * 2**2 + 1)
    rng = np.random.default_rng(14)
    log_pi, log_A, log_lik, lengths = (torch.from_numpy(a) for a in _one(rng, 300, 2))
    got = kernels.forward_backward(log_pi, log_A, log_lik, lengths, backend="numba")
    value = kernels.log_likelihood(log_pi, log_A, log_lik, lengths, backend="numba")
    assert forced and not any(forced)
    monkeypatch.setattr(split, "SPLIT_MIN_WORK", 10**12)
    expected = kernels.forward_backward(log_pi, log_A, log_lik, lengths, backend="numba")
    _assert_equal(got, expected)
    _assert_equal(value, expected.log_likelihood)


def test_table_route_dispatch_value_and_gradient(forced):
    """``kernels.log_likelihood`` on one sequence: the split path, the gradient equal."""
    rng = np.random.default_rng(12)
    arrays = [torch.from_numpy(a) for a in _one(rng, 2000, 3)]
    arrays[3][0] = 1990

    def value_and_grad():
        inputs = [a.clone().requires_grad_(a.is_floating_point()) for a in arrays]
        value = kernels.log_likelihood(*inputs, backend="numba")
        value.sum().backward()
        return [value.detach()] + [a.grad for a in inputs[:3]]

    got = value_and_grad()
    assert forced and all(forced)  # the prepared table, the sweeps, the combination
    forced.clear()
    split.SPLIT_MIN_WORK = 10**12  # restored by monkeypatch
    expected = value_and_grad()
    assert not forced
    _assert_equal(got, expected)


def test_categorical_likelihood_and_potentials_take_the_split_path(forced):
    """User-level value and gradient (categorical) and the NUTS potentials of two families."""
    results = {}
    for route in ("split", "lanes"):
        if route == "lanes":
            split.SPLIT_MIN_WORK = split.SYMBOL_SPLIT_MIN_WORK = 10**12  # restored by monkeypatch
        for emission in (Categorical(num_symbols=3), Gaussian()):
            hmm = HMM(3, emission, Prior(B=0.8))
            data, _ = simulate(hmm, hmm.sample_prior(seed=1), [1500], seed=2)
            params = {k: v.requires_grad_() for k, v in hmm.sample_prior(seed=3).items()}
            forced.clear()
            value = hmm.log_likelihood(params, data).sum()
            value.backward()
            assert (route == "split") == bool(forced) and all(forced)
            potential = Potential(hmm, data)
            flat = np.random.default_rng(4).normal(size=potential.size)
            forced.clear()
            point = potential.value_and_gradient(torch.from_numpy(flat), True)
            assert (route == "split") == bool(forced) and all(forced)
            results[route, repr(emission)] = [value.detach(), *point] + [
                params[k].grad for k in sorted(params)
            ]
    for emission in (Categorical(num_symbols=3), Gaussian()):
        _assert_equal(results["split", repr(emission)], results["lanes", repr(emission)])
