"""Forward-backward kernels against brute-force enumeration, autograd and Pyro's DiscreteHMM."""

from __future__ import annotations

import numpy as np
import pyro.distributions as dist
import pytest
import torch
from scipy.special import logsumexp

from hmm_pyro import kernels
from tests.reference import brute_force

BACKENDS = ("torch", "numba")
LENGTH_CASES = [(num_states, num_steps) for num_states in (1, 2, 3) for num_steps in range(1, 7)]


def ragged_lengths(num_steps: int) -> torch.Tensor:
    """Several sequences of different lengths, always including ``T`` and 1."""
    return torch.tensor(sorted({num_steps, 1, max(1, num_steps // 2), max(1, num_steps - 1)}))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("num_states", "num_steps"), LENGTH_CASES)
def test_log_likelihood_matches_brute_force(make_kernel_inputs, backend, num_states, num_steps):
    lengths = ragged_lengths(num_steps)
    num = len(lengths)
    # per-sequence initial and transition distributions, to exercise batch broadcasting too
    log_pi, log_A, log_lik = make_kernel_inputs(num_states, num_steps, (num,), (num,))
    actual = kernels.log_likelihood(log_pi, log_A, log_lik, lengths, backend=backend)
    assert actual.shape == (num,) and actual.dtype == torch.float64
    for n, length in enumerate(lengths.tolist()):
        ref = brute_force(log_pi[n], log_A[n], log_lik[n, :length])
        assert abs(actual[n].item() - ref.log_likelihood) < 1e-9, (n, length)


@pytest.mark.parametrize("backend", BACKENDS)
def test_padding_values_are_ignored(make_kernel_inputs, backend):
    log_pi, log_A, log_lik = make_kernel_inputs(3, 6, (2,))
    lengths = torch.tensor([6, 3])
    garbage = log_lik.clone()
    garbage[1, 3:] = torch.tensor([50.0, -1e300, -float("inf")])
    clean = kernels.forward_backward(log_pi, log_A, log_lik, lengths, backend=backend)
    dirty = kernels.forward_backward(log_pi, log_A, garbage, lengths, backend=backend)
    torch.testing.assert_close(dirty.log_likelihood, clean.log_likelihood, rtol=0, atol=1e-12)
    torch.testing.assert_close(dirty.gamma, clean.gamma, rtol=0, atol=1e-12)
    torch.testing.assert_close(dirty.transitions, clean.transitions, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("num_states", "num_steps"), LENGTH_CASES)
def test_forward_backward_identity(make_kernel_inputs, num_states, num_steps):
    lengths = ragged_lengths(num_steps)
    log_pi, log_A, log_lik = make_kernel_inputs(num_states, num_steps, (len(lengths),))
    log_alpha = kernels.forward(log_pi, log_A, log_lik, lengths)
    log_beta = kernels.backward(log_pi, log_A, log_lik, lengths)
    assert log_alpha.shape == log_beta.shape == log_lik.shape
    for n, length in enumerate(lengths.tolist()):
        ref = brute_force(log_pi, log_A, log_lik[n, :length]).log_likelihood
        for t in range(length):
            total = (log_alpha[n, t] + log_beta[n, t]).logsumexp(-1).item()
            assert abs(total - ref) < 1e-9, (n, t)
        # documented padding behaviour: alpha repeats the last valid row, beta is log 1
        for t in range(length, num_steps):
            assert torch.equal(log_alpha[n, t], log_alpha[n, length - 1])
            assert torch.equal(log_beta[n, t], torch.zeros(num_states, dtype=torch.float64))
        assert torch.equal(log_beta[n, length - 1], torch.zeros(num_states, dtype=torch.float64))
        assert abs(log_alpha[n, -1].logsumexp(-1).item() - ref) < 1e-9


def test_forward_first_row_and_recursion_by_hand(make_kernel_inputs):
    log_pi, log_A, log_lik = make_kernel_inputs(3, 4)
    log_alpha = kernels.forward(log_pi, log_A, log_lik).numpy()
    pi, A, lik = np.exp(log_pi.numpy()), np.exp(log_A.numpy()), np.exp(log_lik.numpy())
    alpha = pi * lik[0]
    np.testing.assert_allclose(np.exp(log_alpha[0]), alpha, rtol=1e-12, atol=0)
    for t in range(1, 4):
        alpha = (alpha @ A) * lik[t]
        np.testing.assert_allclose(np.exp(log_alpha[t]), alpha, rtol=1e-12, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("num_states", "num_steps"), LENGTH_CASES)
def test_gamma_and_transitions_match_brute_force(
    make_kernel_inputs, backend, num_states, num_steps
):
    lengths = ragged_lengths(num_steps)
    log_pi, log_A, log_lik = make_kernel_inputs(num_states, num_steps, (len(lengths),))
    result = kernels.forward_backward(log_pi, log_A, log_lik, lengths, backend=backend)
    assert result.gamma.shape == log_lik.shape
    assert result.transitions.shape == (len(lengths), num_states, num_states)
    for n, length in enumerate(lengths.tolist()):
        ref = brute_force(log_pi, log_A, log_lik[n, :length])
        assert abs(result.log_likelihood[n].item() - ref.log_likelihood) < 1e-9
        np.testing.assert_allclose(result.gamma[n, :length].numpy(), ref.gamma, rtol=0, atol=1e-9)
        assert torch.all(result.gamma[n, length:] == 0)
        np.testing.assert_allclose(
            result.transitions[n].numpy(), ref.transitions, rtol=0, atol=1e-9
        )
        assert abs(result.transitions[n].sum().item() - (length - 1)) < 1e-9


@pytest.mark.parametrize("backend", BACKENDS)
def test_wrappers_return_the_forward_backward_fields(make_kernel_inputs, backend):
    log_pi, log_A, log_lik = make_kernel_inputs(3, 5, (3,))
    lengths = torch.tensor([5, 2, 4])
    result = kernels.forward_backward(log_pi, log_A, log_lik, lengths, backend=backend)
    gamma = kernels.posterior_marginals(log_pi, log_A, log_lik, lengths, backend=backend)
    xi = kernels.expected_transitions(log_pi, log_A, log_lik, lengths, backend=backend)
    assert torch.equal(gamma, result.gamma)
    assert torch.equal(xi, result.transitions)


def test_backends_agree(make_kernel_inputs):
    log_pi, log_A, log_lik = make_kernel_inputs(4, 40, (5,))
    lengths = torch.tensor([40, 1, 17, 39, 2])
    fast = kernels.forward_backward(log_pi, log_A, log_lik, lengths, backend="numba")
    slow = kernels.forward_backward(log_pi, log_A, log_lik, lengths, backend="torch")
    auto = kernels.forward_backward(log_pi, log_A, log_lik, lengths, backend="auto")
    for a, b, c in zip(fast, slow, auto, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)
        torch.testing.assert_close(c, a, rtol=0, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batched_over_draws_and_sequences_equals_loop(make_kernel_inputs, backend):
    num_draws, num_seqs, num_steps, num_states = 3, 4, 7, 3
    log_pi, log_A, log_lik = make_kernel_inputs(num_states, num_steps, (num_seqs,), (num_draws,))
    lengths = torch.tensor([7, 3, 1, 5])
    # draws (S, 1, ...) broadcast against sequences (N, ...)
    batched = kernels.forward_backward(
        log_pi[:, None], log_A[:, None], log_lik, lengths, backend=backend
    )
    assert batched.log_likelihood.shape == (num_draws, num_seqs)
    assert batched.gamma.shape == (num_draws, num_seqs, num_steps, num_states)
    assert batched.transitions.shape == (num_draws, num_seqs, num_states, num_states)
    for s in range(num_draws):
        for n in range(num_seqs):
            length = int(lengths[n])
            single = kernels.forward_backward(
                log_pi[s], log_A[s], log_lik[n, :length], backend=backend
            )
            assert abs(batched.log_likelihood[s, n].item() - single.log_likelihood.item()) < 1e-12
            torch.testing.assert_close(
                batched.gamma[s, n, :length], single.gamma, rtol=0, atol=1e-12
            )
            torch.testing.assert_close(
                batched.transitions[s, n], single.transitions, rtol=0, atol=1e-12
            )
    loglik = kernels.log_likelihood(log_pi[:, None], log_A[:, None], log_lik, lengths)
    torch.testing.assert_close(loglik, batched.log_likelihood, rtol=0, atol=1e-10)


@pytest.mark.slow
def test_very_long_sequence_is_finite_and_matches_sequential_forward(make_kernel_inputs):
    num_steps = 100_000
    log_pi, log_A, log_lik = make_kernel_inputs(3, num_steps)
    sequential = kernels.forward(log_pi, log_A, log_lik)[-1].logsumexp(-1).item()
    # about -2e5: a naive probability-space product would underflow long before
    assert np.isfinite(sequential) and sequential < -1e4
    for backend in BACKENDS:
        parallel = kernels.log_likelihood(log_pi, log_A, log_lik, backend=backend).item()
        assert np.isfinite(parallel), backend
        assert abs(parallel - sequential) <= 1e-6 * abs(sequential), backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_state(make_kernel_inputs, backend):
    _, _, log_lik = make_kernel_inputs(1, 5, (2,))
    zero = torch.zeros(1, dtype=torch.float64)
    lengths = torch.tensor([5, 3])
    result = kernels.forward_backward(zero, zero[None], log_lik, lengths, backend=backend)
    expected = torch.stack([log_lik[0, :, 0].sum(), log_lik[1, :3, 0].sum()])
    torch.testing.assert_close(result.log_likelihood, expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(
        result.gamma[..., 0],
        torch.tensor([[1.0] * 5, [1.0] * 3 + [0.0] * 2], dtype=torch.float64),
        rtol=0,
        atol=1e-12,
    )
    torch.testing.assert_close(
        result.transitions[:, 0, 0],
        torch.tensor([4.0, 2.0], dtype=torch.float64),
        rtol=0,
        atol=1e-12,
    )
    path, score = kernels.viterbi(zero, zero[None], log_lik, lengths)
    assert path.tolist() == [[0] * 5, [0, 0, 0, -1, -1]]
    torch.testing.assert_close(score, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_step_pins_the_initial_distribution_convention(make_kernel_inputs, backend):
    """T = 1: ``log p(y_1) = logsumexp(log_pi + log_lik[0])``; ``A`` plays no part."""
    log_pi, log_A, log_lik = make_kernel_inputs(3, 1)
    by_hand = logsumexp(log_pi.numpy() + log_lik[0].numpy())
    result = kernels.forward_backward(log_pi, log_A, log_lik, backend=backend)
    assert abs(result.log_likelihood.item() - by_hand) < 1e-12
    assert abs(kernels.log_likelihood(log_pi, log_A, log_lik).item() - by_hand) < 1e-12
    softmax = np.exp(log_pi.numpy() + log_lik[0].numpy() - by_hand)
    np.testing.assert_allclose(result.gamma[0].numpy(), softmax, rtol=0, atol=1e-12)
    assert torch.all(result.transitions == 0)
    other_A = torch.log(torch.eye(3, dtype=torch.float64) * 0.7 + 0.1)
    changed = kernels.log_likelihood(log_pi, other_A, log_lik, backend=backend)
    assert abs(changed.item() - by_hand) < 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck(make_kernel_inputs, backend):
    log_pi, log_A, log_lik = make_kernel_inputs(3, 4, (2,))
    lengths = torch.tensor([4, 2])
    inputs = tuple(x.clone().requires_grad_(True) for x in (log_pi, log_A, log_lik))

    def func(a, b, c):
        return kernels.log_likelihood(a, b, c, lengths, backend=backend)

    assert torch.autograd.gradcheck(func, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)


def test_gradgradcheck_torch_backend(make_kernel_inputs):
    log_pi, log_A, log_lik = make_kernel_inputs(2, 3, (2,))
    lengths = torch.tensor([3, 2])
    inputs = tuple(x.clone().requires_grad_(True) for x in (log_pi, log_A, log_lik))

    def func(a, b, c):
        return kernels.log_likelihood(a, b, c, lengths, backend="torch")

    assert torch.autograd.gradgradcheck(func, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_are_the_expected_counts(make_kernel_inputs, backend):
    """d loglik / d log_lik = gamma, d / d log_A (shared) = summed expected transitions.

    With ``backend="torch"`` the gradient comes from autograd through the tree product and the
    counts from the sequential forward-backward: two independent computations.
    """
    log_pi, log_A, log_lik = make_kernel_inputs(3, 6, (3,))
    lengths = torch.tensor([6, 4, 1])
    log_pi = log_pi.clone().requires_grad_(True)
    log_A = log_A.clone().requires_grad_(True)
    log_lik = log_lik.clone().requires_grad_(True)
    total = kernels.log_likelihood(log_pi, log_A, log_lik, lengths, backend=backend).sum()
    grad_pi, grad_A, grad_lik = torch.autograd.grad(total, (log_pi, log_A, log_lik))
    counts = kernels.forward_backward(
        log_pi.detach(), log_A.detach(), log_lik.detach(), lengths, backend="torch"
    )
    torch.testing.assert_close(grad_lik, counts.gamma, rtol=0, atol=1e-10)
    torch.testing.assert_close(grad_A, counts.transitions.sum(0), rtol=0, atol=1e-10)
    torch.testing.assert_close(grad_pi, counts.gamma[:, 0].sum(0), rtol=0, atol=1e-10)


def test_numba_gradient_matches_autograd_through_torch_backend(make_kernel_inputs):
    log_pi, log_A, log_lik = make_kernel_inputs(3, 9, (4,), (2, 1))
    lengths = torch.tensor([9, 5, 1, 8])
    grads = {}
    for backend in BACKENDS:
        leaves = [x.clone().requires_grad_(True) for x in (log_pi, log_A, log_lik)]
        weights = torch.arange(1.0, 9.0, dtype=torch.float64).reshape(2, 4)
        value = kernels.log_likelihood(*leaves, lengths, backend=backend)
        assert value.shape == (2, 4)
        grads[backend] = torch.autograd.grad((weights * value).sum(), leaves)
    for fast, slow in zip(grads["numba"], grads["torch"], strict=True):
        torch.testing.assert_close(fast, slow, rtol=0, atol=1e-10)


def _pyro_hmm(log_pi, log_A, log_B, num_steps, corrected):
    num_states = log_pi.shape[-1]
    emissions = dist.Categorical(logits=log_B)
    if not corrected:
        return dist.DiscreteHMM(log_pi, log_A, emissions)
    first = log_pi.expand(1, num_states, num_states)
    rest = log_A.expand(num_steps - 1, num_states, num_states)
    initial = torch.zeros(num_states, dtype=log_pi.dtype)  # arbitrary: every row of `first` is pi
    return dist.DiscreteHMM(initial, torch.cat([first, rest]), emissions)


@pytest.mark.parametrize("num_steps", [1, 2, 5, 9])
def test_pyro_discrete_hmm_agrees_after_convention_correction(rng, num_steps):
    num_states, num_symbols = 3, 4
    log_pi = torch.log(torch.as_tensor(rng.dirichlet(np.ones(num_states))))
    log_A = torch.log(torch.as_tensor(rng.dirichlet(np.ones(num_states), size=num_states)))
    log_B = torch.log(torch.as_tensor(rng.dirichlet(np.ones(num_symbols), size=num_states)))
    symbols = torch.as_tensor(rng.integers(0, num_symbols, size=num_steps))
    log_lik = log_B[:, symbols].T  # (T, K)
    ours = kernels.log_likelihood(log_pi, log_A, log_lik).item()
    theirs = _pyro_hmm(log_pi, log_A, log_B, num_steps, corrected=True).log_prob(symbols).item()
    assert abs(ours - theirs) < 1e-9
    if num_steps == 1:
        assert abs(ours - torch.logsumexp(log_pi + log_lik[0], -1).item()) < 1e-12


def test_pyro_discrete_hmm_without_correction_uses_a_shifted_initial_state(rng):
    """Pyro's ``DiscreteHMM(log_pi, log_A, ...)`` puts ``pi`` one step before the first
    observation: it equals our kernel with initial distribution ``pi @ A``, not ``pi``."""
    log_pi = torch.log(torch.tensor([0.9, 0.05, 0.05], dtype=torch.float64))
    A = torch.tensor([[0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1]], dtype=torch.float64)
    log_B = torch.log(torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.5, 0.5]], dtype=torch.float64))
    symbols = torch.tensor([0, 1, 1, 0])
    log_lik = log_B[:, symbols].T
    ours = kernels.log_likelihood(log_pi, A.log(), log_lik).item()
    naive = _pyro_hmm(log_pi, A.log(), log_B, 4, corrected=False).log_prob(symbols).item()
    assert abs(ours - naive) > 0.1
    shifted = kernels.log_likelihood(torch.log(log_pi.exp() @ A), A.log(), log_lik).item()
    assert abs(naive - shifted) < 1e-9


# ---------------------------------------------------------------------- input validation
KERNELS = {
    "log_likelihood": kernels.log_likelihood,
    "forward": kernels.forward,
    "backward": kernels.backward,
    "forward_backward": kernels.forward_backward,
    "viterbi": kernels.viterbi,
    "sample_paths": kernels.sample_paths,
}


def _good():
    log_pi = torch.log(torch.full((2,), 0.5, dtype=torch.float64))
    log_A = torch.log(torch.full((2, 2), 0.5, dtype=torch.float64))
    log_lik = torch.zeros(3, 4, 2, dtype=torch.float64)
    return log_pi, log_A, log_lik


BAD_INPUTS = [
    # (position, value, exception, argument named in the message)
    ("log_pi", [0.0, 0.0], TypeError, r"log_pi"),
    ("log_pi", torch.zeros(3, dtype=torch.float64), ValueError, r"log_pi"),
    ("log_pi", torch.zeros(2, dtype=torch.long), TypeError, r"log_pi"),
    ("log_pi", torch.zeros((), dtype=torch.float64), ValueError, r"log_pi"),
    ("log_A", np.zeros((2, 2)), TypeError, r"log_A"),
    ("log_A", torch.zeros(2, 3, dtype=torch.float64), ValueError, r"log_A"),
    ("log_A", torch.zeros(2, dtype=torch.float64), ValueError, r"log_A"),
    ("log_lik", torch.zeros(4, 2, dtype=torch.long), TypeError, r"log_lik"),
    ("log_lik", torch.zeros(2, dtype=torch.float64), ValueError, r"log_lik"),
    ("log_lik", torch.zeros(3, 0, 2, dtype=torch.float64), ValueError, r"log_lik"),
    ("log_lik", torch.zeros(3, 4, 0, dtype=torch.float64), ValueError, r"log_lik"),
    ("lengths", torch.tensor([4.0, 2.0, 1.0]), TypeError, r"lengths"),
    ("lengths", torch.tensor([True, True, True]), TypeError, r"lengths"),
    ("lengths", torch.tensor([4, 0, 1]), ValueError, r"lengths"),
    ("lengths", torch.tensor([4, 5, 1]), ValueError, r"lengths"),
    ("lengths", torch.tensor([4, 2]), ValueError, r"lengths.*broadcast"),
    ("log_A", torch.zeros(2, 2, 2, dtype=torch.float64), ValueError, r"log_A.*broadcast"),
]


@pytest.mark.parametrize("name", list(KERNELS))
@pytest.mark.parametrize(("position", "value", "error", "match"), BAD_INPUTS)
def test_bad_kernel_inputs_name_the_argument(name, position, value, error, match):
    log_pi, log_A, log_lik = _good()
    args = {"log_pi": log_pi, "log_A": log_A, "log_lik": log_lik, "lengths": None}
    args[position] = value
    with pytest.raises(error, match=match):
        KERNELS[name](args["log_pi"], args["log_A"], args["log_lik"], args["lengths"])


@pytest.mark.parametrize("name", ["log_likelihood", "forward_backward"])
def test_bad_backend_is_named(name):
    with pytest.raises(ValueError, match="backend"):
        KERNELS[name](*_good(), backend="cuda-magic")


def test_lengths_as_python_list_are_accepted():
    log_pi, log_A, log_lik = _good()
    from_list = kernels.log_likelihood(log_pi, log_A, log_lik, [4, 2, 1])
    from_tensor = kernels.log_likelihood(log_pi, log_A, log_lik, torch.tensor([4, 2, 1]))
    assert torch.equal(from_list, from_tensor)
    # zero log_lik, uniform pi and A: every path has the same probability, total mass is 1
    torch.testing.assert_close(from_list, torch.zeros(3, dtype=torch.float64), rtol=0, atol=1e-12)
