"""Viterbi decoding against brute-force argmax over every path, on both routes (numba, torch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hmm_pyro import kernels
from tests.reference import brute_force, path_log_joint

CASES = [(num_states, num_steps) for num_states in (1, 2, 3) for num_steps in range(1, 7)]
BACKENDS = pytest.mark.parametrize("backend", ["numba", "torch"])


@BACKENDS
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(("num_states", "num_steps"), CASES)
def test_path_and_score_match_brute_force(
    rng, make_kernel_inputs, seed, num_states, num_steps, backend
):
    rng.bit_generator.advance(seed * 1000)
    lengths = torch.tensor(sorted({num_steps, 1, max(1, num_steps - 2)}))
    log_pi, log_A, log_lik = make_kernel_inputs(num_states, num_steps, (len(lengths),))
    path, score = kernels.viterbi(log_pi, log_A, log_lik, lengths, backend=backend)
    assert path.shape == (len(lengths), num_steps) and path.dtype == torch.int64
    assert score.shape == (len(lengths),)
    for n, length in enumerate(lengths.tolist()):
        ref = brute_force(log_pi, log_A, log_lik[n, :length])
        # the maximiser is unique: continuous random inputs give no ties
        top_two = np.sort(ref.log_joint)[-2:]
        assert len(top_two) < 2 or top_two[1] - top_two[0] > 1e-9
        assert path[n, :length].tolist() == ref.map_path.tolist(), (n, length)
        assert abs(score[n].item() - ref.map_score) < 1e-9
        assert path[n, length:].tolist() == [-1] * (num_steps - length)


def test_score_is_the_log_joint_of_the_returned_path(make_kernel_inputs):
    log_pi, log_A, log_lik = make_kernel_inputs(4, 30, (3,))
    lengths = torch.tensor([30, 11, 29])
    path, score = kernels.viterbi(log_pi, log_A, log_lik, lengths)
    for n, length in enumerate(lengths.tolist()):
        by_hand = path_log_joint(log_pi, log_A, log_lik[n, :length], path[n, :length])
        assert abs(score[n].item() - by_hand) < 1e-9


def test_padding_is_minus_one_and_valid_steps_are_states(make_kernel_inputs):
    log_pi, log_A, log_lik = make_kernel_inputs(3, 8, (4,))
    lengths = torch.tensor([8, 1, 5, 7])
    path, _ = kernels.viterbi(log_pi, log_A, log_lik, lengths)
    valid = torch.arange(8) < lengths[:, None]
    assert torch.all(path[~valid] == kernels.PAD_STATE)
    assert kernels.PAD_STATE == -1
    assert torch.all((path[valid] >= 0) & (path[valid] < 3))


def test_padded_steps_do_not_change_the_decoded_prefix(make_kernel_inputs):
    log_pi, log_A, log_lik = make_kernel_inputs(3, 9, (1,))
    short = kernels.viterbi(log_pi, log_A, log_lik[:, :4])
    # make the padded steps strongly prefer a state: they must be ignored
    padded = log_lik.clone()
    padded[:, 4:, 2] = 100.0
    long = kernels.viterbi(log_pi, log_A, padded, torch.tensor([4]))
    assert long[0][0, :4].tolist() == short[0][0].tolist()
    assert abs(long[1].item() - short[1].item()) < 1e-12


@BACKENDS
def test_batched_over_draws_equals_loop(make_kernel_inputs, backend):
    log_pi, log_A, log_lik = make_kernel_inputs(3, 6, (4,), (2,))
    lengths = torch.tensor([6, 2, 5, 1])
    path, score = kernels.viterbi(
        log_pi[:, None], log_A[:, None], log_lik, lengths, backend=backend
    )
    assert path.shape == (2, 4, 6) and score.shape == (2, 4)
    for s in range(2):
        for n, length in enumerate(lengths.tolist()):
            single_path, single_score = kernels.viterbi(log_pi[s], log_A[s], log_lik[n, :length])
            assert path[s, n, :length].tolist() == single_path.tolist()
            assert abs(score[s, n].item() - single_score.item()) < 1e-12


@BACKENDS
def test_ties_break_towards_the_lowest_state(backend):
    """Documented: every path equally likely -> the all-zero path."""
    log_pi = torch.full((3,), -np.log(3.0), dtype=torch.float64)
    log_A = torch.full((3, 3), -np.log(3.0), dtype=torch.float64)
    log_lik = torch.zeros(5, 3, dtype=torch.float64)
    path, score = kernels.viterbi(log_pi, log_A, log_lik, backend=backend)
    assert path.tolist() == [0] * 5
    assert abs(score.item() - 5 * -np.log(3.0)) < 1e-12


@BACKENDS
def test_forbidden_transitions_are_respected(backend):
    """A left-to-right chain: the decoded path can never move backwards."""
    A = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]], dtype=torch.float64)
    log_pi = torch.log(torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    # the emissions alone prefer 2, 0, 2, 1, 0: infeasible under A
    log_lik = torch.log(
        torch.tensor(
            [[0.2, 0.1, 0.7], [0.8, 0.1, 0.1], [0.1, 0.2, 0.7], [0.1, 0.8, 0.1], [0.8, 0.1, 0.1]],
            dtype=torch.float64,
        )
    )
    path, score = kernels.viterbi(log_pi, A.log(), log_lik, backend=backend)
    ref = brute_force(log_pi, A.log(), log_lik)
    assert path.tolist() == ref.map_path.tolist()
    assert np.all(np.diff(path.numpy()) >= 0) and path[0].item() == 0
    assert abs(score.item() - ref.map_score) < 1e-12


@pytest.mark.parametrize("time_varying", [False, True])
def test_numba_route_equals_the_torch_route(make_kernel_inputs, time_varying):
    """Paths identical and scores equal to 1e-12 on ragged batches, shared or per-sequence
    matrices, one matrix per step, and float32 inputs (scores keep the input dtype)."""
    generator = torch.Generator().manual_seed(3)
    num_states, num_steps = 4, 40
    log_pi, log_A, log_lik = make_kernel_inputs(num_states, num_steps, (5,))
    if time_varying:
        noise = torch.randn(5, num_steps, num_states, num_states, generator=generator)
        log_A = (log_A + noise.double()).log_softmax(-1)
    lengths = torch.tensor([40, 1, 17, 39, 25])
    for dtype in (torch.float64, torch.float32):
        inputs = [tensor.to(dtype) for tensor in (log_pi, log_A, log_lik)]
        fast = kernels.viterbi(*inputs, lengths, time_varying, backend="numba")
        slow = kernels.viterbi(*inputs, lengths, time_varying, backend="torch")
        assert torch.equal(fast[0], slow[0])
        assert fast[1].dtype == slow[1].dtype == dtype
        torch.testing.assert_close(
            fast[1], slow[1], rtol=0, atol=1e-12 if dtype == torch.float64 else 1e-3
        )


def test_unknown_backend_is_named(make_kernel_inputs):
    log_pi, log_A, log_lik = make_kernel_inputs(2, 3, (1,))
    with pytest.raises(ValueError, match="backend"):
        kernels.viterbi(log_pi, log_A, log_lik, backend="cuda")
