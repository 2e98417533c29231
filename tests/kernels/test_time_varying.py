"""Kernels with one transition matrix per step (``time_varying=True``).

References: a brute-force sum over every state path (written here, independent of the package),
a hand-written Pyro model enumerated with ``pyro.markov`` and ``TraceEnum_ELBO``, finite
differences (``gradcheck``) and the homogeneous kernels (a constant ``log_A``).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import TraceEnum_ELBO
from pyro.ops.indexing import Vindex

from hmm_pyro import kernels
from hmm_pyro.kernels._numba import batch, varying

BACKENDS = ("torch", "numba")


def random_inputs(rng, num_sequences, num_steps, num_states):
    """Normalised ``log_pi (N, K)``, per-step ``log_A (N, T, K, K)`` and ``log_lik (N, T, K)``."""
    log_pi = np.log(rng.dirichlet(np.ones(num_states), num_sequences))
    log_A = np.log(rng.dirichlet(np.ones(num_states), (num_sequences, num_steps, num_states)))
    log_lik = rng.normal(-1.0, 1.5, size=(num_sequences, num_steps, num_states))
    return tuple(torch.as_tensor(x, dtype=torch.float64) for x in (log_pi, log_A, log_lik))


def spoil_unused(log_A, lengths):
    """Write NaN into the matrices the kernels must not read (last step of each sequence on)."""
    spoiled = log_A.clone()
    for n, length in enumerate(lengths.tolist()):
        spoiled[n, length - 1 :] = math.nan
    return spoiled


def enumerate_paths(log_pi, log_A, log_lik):
    """Every path of one sequence (``log_A (T, K, K)``, matrix ``t`` from step ``t`` to ``t+1``).

    Returns the log likelihood, gamma ``(T, K)``, summed transition counts ``(K, K)``, the
    per-step pair probabilities ``(T, K, K)`` and the best path with its score.
    """
    log_pi, log_A, log_lik = (np.asarray(x, dtype=np.float64) for x in (log_pi, log_A, log_lik))
    num_steps, num_states = log_lik.shape
    paths = np.array(list(itertools.product(range(num_states), repeat=num_steps)))
    scores = np.array(
        [
            log_pi[path[0]]
            + sum(log_lik[t, path[t]] for t in range(num_steps))
            + sum(log_A[t, path[t], path[t + 1]] for t in range(num_steps - 1))
            for path in paths
        ]
    )
    total = np.logaddexp.reduce(scores)
    weights = np.exp(scores - total)
    gamma = np.zeros((num_steps, num_states))
    pairs = np.zeros((num_steps, num_states, num_states))
    for path, weight in zip(paths, weights, strict=True):
        gamma[np.arange(num_steps), path] += weight
        for t in range(num_steps - 1):
            pairs[t, path[t], path[t + 1]] += weight
    best = int(np.argmax(scores))
    return total, gamma, pairs.sum(0), pairs, paths[best], scores[best]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("num_states", [1, 2, 3])
def test_matches_brute_force_over_paths(backend, num_states):
    rng = np.random.default_rng(10 + num_states)
    lengths = torch.tensor([6, 1, 3, 5])
    log_pi, log_A, log_lik = random_inputs(rng, 4, 6, num_states)
    spoiled = spoil_unused(log_A, lengths)
    fb = kernels.forward_backward(
        log_pi, spoiled, log_lik, lengths, backend=backend, time_varying=True
    )
    value = kernels.log_likelihood(
        log_pi, spoiled, log_lik, lengths, backend=backend, time_varying=True
    )
    paths, scores = kernels.viterbi(log_pi, spoiled, log_lik, lengths, time_varying=True)
    for n, length in enumerate(lengths.tolist()):
        total, gamma, pairs, _, best, score = enumerate_paths(
            log_pi[n], log_A[n, :length], log_lik[n, :length]
        )
        assert abs(value[n].item() - total) < 1e-9
        assert abs(fb.log_likelihood[n].item() - total) < 1e-9
        np.testing.assert_allclose(fb.gamma[n, :length].numpy(), gamma, rtol=0, atol=1e-10)
        assert not fb.gamma[n, length:].any()
        np.testing.assert_allclose(fb.transitions[n].numpy(), pairs, rtol=0, atol=1e-10)
        assert paths[n, :length].tolist() == best.tolist()
        assert (paths[n, length:] == kernels.PAD_STATE).all()
        assert abs(scores[n].item() - score) < 1e-9


def enumerated_pyro_model(log_pi, log_A, log_lik):
    """The chain written as a Pyro model: ``z_t`` enumerated, the emissions as factors."""
    num_sequences, num_steps, _ = log_lik.shape
    rows = torch.arange(num_sequences)
    with pyro.plate("sequences", num_sequences, dim=-1):
        state = None
        for t in pyro.markov(range(num_steps)):
            if state is None:
                probs = log_pi.exp()
            else:
                probs = Vindex(log_A.exp())[rows, t - 1, state]
            state = pyro.sample(f"z_{t}", dist.Categorical(probs), infer={"enumerate": "parallel"})
            pyro.factor(f"y_{t}", Vindex(log_lik)[rows, t, state])


def test_matches_an_enumerated_pyro_model():
    rng = np.random.default_rng(3)
    log_pi, log_A, log_lik = random_inputs(rng, 3, 6, 3)
    pyro.clear_param_store()
    elbo = TraceEnum_ELBO(max_plate_nesting=1)
    # no latent continuous sites: the loss is -log p(y), the discrete states summed out
    reference = -elbo.loss(lambda: enumerated_pyro_model(log_pi, log_A, log_lik), lambda: None)
    for backend in BACKENDS:
        value = kernels.log_likelihood(log_pi, log_A, log_lik, backend=backend, time_varying=True)
        assert abs(value.sum().item() - reference) < 1e-9, backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck(backend):
    rng = np.random.default_rng(4)
    log_pi, log_A, log_lik = random_inputs(rng, 2, 4, 3)
    lengths = torch.tensor([4, 2])
    inputs = tuple(x.clone().requires_grad_() for x in (log_pi, log_A, log_lik))

    def func(a, b, c):
        return kernels.log_likelihood(a, b, c, lengths, backend=backend, time_varying=True)

    assert torch.autograd.gradcheck(func, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)


def test_numba_gradient_of_log_A_is_the_per_step_pair_probabilities():
    rng = np.random.default_rng(5)
    log_pi, log_A, log_lik = random_inputs(rng, 2, 5, 2)
    log_A.requires_grad_()
    lengths = torch.tensor([5, 3])
    value = kernels.log_likelihood(log_pi, log_A, log_lik, lengths, time_varying=True)
    weights = torch.tensor([1.0, 2.5], dtype=torch.float64)
    (grad,) = torch.autograd.grad((value * weights).sum(), log_A)
    for n, length in enumerate(lengths.tolist()):
        *_, per_step, _, _ = enumerate_paths(
            log_pi[n], log_A[n, :length].detach(), log_lik[n, :length]
        )
        expected = np.zeros((5, 2, 2))
        expected[: length - 1] = per_step[: length - 1] * weights[n].item()
        np.testing.assert_allclose(grad[n].numpy(), expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_constant_log_A_gives_the_homogeneous_kernel(backend):
    rng = np.random.default_rng(6)
    log_pi, log_A, log_lik = random_inputs(rng, 5, 9, 3)
    lengths = torch.tensor([9, 1, 4, 9, 7])
    matrix = log_A[:, 0].clone().requires_grad_()
    steps = matrix[:, None].expand(5, 9, 3, 3)
    homogeneous = kernels.log_likelihood(log_pi, matrix, log_lik, lengths, backend=backend)
    varying_value = kernels.log_likelihood(
        log_pi, steps, log_lik, lengths, backend=backend, time_varying=True
    )
    if backend == "numba":  # the same arithmetic in the same order
        assert torch.equal(varying_value, homogeneous)
    torch.testing.assert_close(varying_value, homogeneous, rtol=0, atol=1e-12)
    (grad_h,) = torch.autograd.grad(homogeneous.sum(), matrix)
    (grad_v,) = torch.autograd.grad(varying_value.sum(), matrix)  # summed over the steps
    torch.testing.assert_close(grad_v, grad_h, rtol=0, atol=1e-12)
    fb_h = kernels.forward_backward(log_pi, matrix.detach(), log_lik, lengths, backend=backend)
    fb_v = kernels.forward_backward(
        log_pi, steps.detach(), log_lik, lengths, backend=backend, time_varying=True
    )
    for a, b in zip(fb_v, fb_h, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_blocks_of_lanes_and_threads_give_the_single_pass_results(monkeypatch):
    rng = np.random.default_rng(7)
    log_pi, log_A, log_lik = random_inputs(rng, 10, 8, 3)
    lengths = torch.tensor([8, 1, 2, 8, 5, 3, 8, 7, 6, 4])
    reference = kernels.forward_backward(
        log_pi, log_A, log_lik, lengths, backend="torch", time_varying=True
    )
    monkeypatch.setattr(varying, "BLOCK_BYTES", 1)
    monkeypatch.setattr(varying, "MIN_BLOCK_LANES", 3)  # blocks of 3, 3, 2 and 2 lanes
    blocked = kernels.forward_backward(log_pi, log_A, log_lik, lengths, time_varying=True)
    monkeypatch.setattr(batch, "PARALLEL_MIN_WORK", 1)
    monkeypatch.setattr(batch.numba, "get_num_threads", lambda: 2)
    threaded = kernels.forward_backward(log_pi, log_A, log_lik, lengths, time_varying=True)
    value = kernels.log_likelihood(log_pi, log_A, log_lik, lengths, time_varying=True)
    for a, b, c in zip(blocked, threaded, reference, strict=True):
        torch.testing.assert_close(a, c, rtol=0, atol=1e-12)
        torch.testing.assert_close(b, c, rtol=0, atol=1e-12)
    torch.testing.assert_close(value, reference.log_likelihood, rtol=0, atol=1e-12)


def test_broadcast_draws_and_a_sequence_of_zero_likelihood():
    rng = np.random.default_rng(8)
    log_pi, log_A, log_lik = random_inputs(rng, 3, 5, 2)
    draws = torch.stack([log_A, log_A.flip(-1)])  # (2 draws, N, T, K, K)
    log_lik[1, 2] = -math.inf  # sequence 1 cannot emit step 2
    value = kernels.log_likelihood(log_pi, draws, log_lik, time_varying=True)
    reference = kernels.log_likelihood(log_pi, draws, log_lik, backend="torch", time_varying=True)
    assert value.shape == (2, 3)
    assert (value[:, 1] == -math.inf).all()
    torch.testing.assert_close(value, reference, rtol=0, atol=1e-12)
    fb = kernels.forward_backward(log_pi, draws, log_lik, time_varying=True)
    assert not fb.gamma[:, 1].any() and not fb.transitions[:, 1].any()


def test_sample_paths_follow_forced_transitions():
    """Matrices that force state (t mod 2) at step t: every drawn path is that path."""
    num_steps, lengths = 5, torch.tensor([5, 3])
    log_pi = torch.log(torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64))
    target = torch.arange(1, num_steps + 1) % 2  # state of step t + 1
    log_A = torch.full((2, num_steps, 2, 2), -math.inf, dtype=torch.float64)
    log_A[:, torch.arange(num_steps), :, target] = 0.0
    log_lik = torch.zeros(2, num_steps, 2, dtype=torch.float64)
    paths = kernels.sample_paths(log_pi, log_A, log_lik, lengths, num_samples=4, time_varying=True)
    assert paths[:, 0].tolist() == [[0, 1, 0, 1, 0]] * 4
    assert paths[:, 1].tolist() == [[0, 1, 0, -1, -1]] * 4


def test_bad_shapes_and_flags_are_refused():
    rng = np.random.default_rng(9)
    log_pi, log_A, log_lik = random_inputs(rng, 2, 4, 3)
    with pytest.raises(ValueError, match=r"^log_A: expected last three dimensions \(T, K, K\)"):
        kernels.log_likelihood(log_pi, log_A[:, :3], log_lik, time_varying=True)
    with pytest.raises(ValueError, match=r"^log_A: expected at least 3 dimensions"):
        kernels.log_likelihood(log_pi, log_A[0, 0], log_lik, time_varying=True)
    with pytest.raises(TypeError, match=r"^time_varying: expected True or False"):
        kernels.forward_backward(log_pi, log_A, log_lik, time_varying="yes")
