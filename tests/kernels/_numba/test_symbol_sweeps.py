"""Symbol lanes in two halves on two threads: equal to all lanes at once, and really taken."""

import math

import numpy as np
import pytest
import torch

from hmm_pyro import HMM, Categorical, simulate
from hmm_pyro.kernels._numba import symbol_sweeps, symbols


def _batch(rng, batch, steps, states, num_symbols=5):
    log_pi = np.log(rng.dirichlet(np.ones(states)))
    log_A = np.log(rng.dirichlet(np.ones(states), size=states))
    log_B = np.log(rng.dirichlet(np.ones(num_symbols), size=states))
    values = rng.integers(-1, num_symbols, size=(batch, steps))  # -1: missing
    lengths = rng.integers(steps // 2, steps + 1, size=batch).astype(np.int64)
    lengths[0] = steps
    lanes = symbols.time_major_symbols(values, lengths, num_symbols)[0]
    return log_pi, log_A, log_B, lanes, lengths


@pytest.mark.parametrize("states", [3, 7])  # the unrolled and the general lane sweeps
@pytest.mark.parametrize("batch", [16, 37, 100])
def test_two_halves_equal_all_lanes_at_once(states, batch):
    """Log likelihoods to 1e-12 relative and every weighted count to 1e-12 of the largest
    (the halves only regroup independent sequences; weights differ per sequence, so a lane
    credited to the wrong half or weight would move a count by far more)."""
    rng = np.random.default_rng(batch + states)
    args = _batch(rng, batch, 60, states)
    weights = rng.uniform(0.5, 2.0, size=batch)
    whole = symbol_sweeps.categorical_sweeps(*args, True, threads=False)
    halves = symbol_sweeps.categorical_sweeps(*args, True, threads=True)
    assert len(whole.parts) == 1 and len(halves.parts) == 2
    cut = halves.parts[0][0].stop
    assert cut % symbol_sweeps.HALF_LANES == 0 and 0 < cut < batch
    np.testing.assert_allclose(halves.log_z, whole.log_z, rtol=1e-12)
    pairs = zip(halves.statistics(weights, 5), whole.statistics(weights, 5), strict=True)
    for got, expected in pairs:
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


def test_a_dead_sequence_in_either_half():
    rng = np.random.default_rng(4)
    log_pi, log_A, log_B, lanes, lengths = _batch(rng, 20, 40, 3)
    log_B[:, 4] = -math.inf  # no state emits symbol 4
    for lane in (2, 17):  # one in each half
        lanes[5, lane] = 4
    halves = symbol_sweeps.categorical_sweeps(log_pi, log_A, log_B, lanes, lengths, True, True)
    whole = symbol_sweeps.categorical_sweeps(log_pi, log_A, log_B, lanes, lengths, True, False)
    assert np.isneginf(halves.log_z[[2, 17]]).all()
    np.testing.assert_allclose(halves.log_z, whole.log_z, rtol=1e-12)
    weights = np.ones(20)
    pairs = zip(halves.statistics(weights, 5), whole.statistics(weights, 5), strict=True)
    for got, expected in pairs:
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


def test_the_default_cuts_by_work_and_uses_the_second_thread_only_with_threads(monkeypatch):
    rng = np.random.default_rng(5)
    args = _batch(rng, 40, 100, 10)  # T N K^2 = 400,000: below the threshold
    monkeypatch.setattr(symbol_sweeps.numba, "get_num_threads", lambda: 2)
    assert len(symbol_sweeps.categorical_sweeps(*args, True).parts) == 1
    monkeypatch.setattr(symbol_sweeps, "LANE_THREADS_MIN_WORK", 10**5)
    two = symbol_sweeps.categorical_sweeps(*args, True)
    assert len(two.parts) == 2 and two.side_by_side
    monkeypatch.setattr(symbol_sweeps.numba, "get_num_threads", lambda: 1)
    one = symbol_sweeps.categorical_sweeps(*args, True)
    assert len(one.parts) == 2 and not one.side_by_side


@pytest.mark.parametrize("states", [3, 10])
def test_one_thread_and_two_give_the_same_bits(monkeypatch, states):
    """The cut depends on the shape only: on one thread the halves run one after the other
    and every number equals the two-thread one exactly (a NUTS chain sampled here with two
    threads must equal the same chain in a single-threaded worker process)."""
    rng = np.random.default_rng(states)
    args = _batch(rng, 37, 80, states)
    weights = rng.uniform(0.5, 2.0, size=37)
    monkeypatch.setattr(symbol_sweeps, "LANE_THREADS_MIN_WORK", 1)
    results = {}
    for threads in (1, 2):
        monkeypatch.setattr(symbol_sweeps.numba, "get_num_threads", lambda threads=threads: threads)
        sweeps = symbol_sweeps.categorical_sweeps(*args, True)
        assert len(sweeps.parts) == 2 and sweeps.side_by_side == (threads == 2)
        results[threads] = (sweeps.log_z, *sweeps.statistics(weights, 5))
    for one, two in zip(results[1], results[2], strict=True):
        np.testing.assert_array_equal(one, two)


def test_the_public_likelihood_and_its_gradient_through_the_halves(monkeypatch):
    """``hmm.log_likelihood`` and autograd: the same with the halves forced as without."""
    hmm = HMM(4, Categorical(6))
    params = hmm.sample_prior(seed=0)
    data, _ = simulate(hmm, params, [50] * 24, seed=1)

    def value_and_grads():
        leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
        value = hmm.log_likelihood(leaves, data)
        (value * torch.linspace(0.5, 1.5, 24, dtype=value.dtype)).sum().backward()
        return value.detach(), [leaves[k].grad for k in ("pi", "A", "B")]

    monkeypatch.setattr(symbol_sweeps.numba, "get_num_threads", lambda: 1)
    value, grads = value_and_grads()
    monkeypatch.setattr(symbol_sweeps.numba, "get_num_threads", lambda: 2)
    monkeypatch.setattr(symbol_sweeps, "LANE_THREADS_MIN_WORK", 1)
    taken = []
    original = symbol_sweeps.categorical_lanes
    monkeypatch.setattr(
        symbol_sweeps, "categorical_lanes", lambda *a: taken.append(a[3].shape[1]) or original(*a)
    )
    halved, halved_grads = value_and_grads()
    assert sorted(taken) == [8, 16]  # 24 lanes cut at 16, a multiple of HALF_LANES
    torch.testing.assert_close(halved, value, rtol=1e-12, atol=0)
    for got, expected in zip(halved_grads, grads, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_a_forked_child_gets_its_own_second_thread():
    """A child forked after the thread started inherits the executor without its thread: it
    must not wait on it forever (the child runs the halves and exits within the timeout)."""
    import multiprocessing

    rng = np.random.default_rng(6)
    args = _batch(rng, 16, 30, 3)
    symbol_sweeps.categorical_sweeps(*args, True, threads=True)  # the parent's thread starts
    context = multiprocessing.get_context("fork")
    child = context.Process(target=symbol_sweeps.categorical_sweeps, args=(*args, True, True))
    child.start()
    child.join(60)
    alive = child.is_alive()
    if alive:
        child.kill()
    assert not alive and child.exitcode == 0
