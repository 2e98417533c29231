"""Large batches in threads: the threaded path equals the serial one and the torch backend."""

import numpy as np
import torch

from hmm_pyro import kernels
from hmm_pyro.kernels._numba import batch
from hmm_pyro.kernels._numba.lanes import forward_backward_lanes
from tests.kernels._numba.per_sequence_reference import random_inputs


def test_numba_threaded_path_matches_serial_and_torch(make_kernel_inputs, monkeypatch):
    """Small batches run the serial numba kernel; force the threaded one and compare."""
    log_pi, log_A, log_lik = make_kernel_inputs(3, 20, (6,), (6,))
    lengths = torch.tensor([20, 1, 7, 19, 2, 13])
    serial = kernels.forward_backward(log_pi, log_A, log_lik, lengths, backend="numba")
    reference = kernels.forward_backward(log_pi, log_A, log_lik, lengths, backend="torch")
    monkeypatch.setattr(batch, "PARALLEL_MIN_WORK", 1)
    monkeypatch.setattr(batch.numba, "get_num_threads", lambda: 2)
    assert batch._parallel(log_lik.numpy())
    threaded = kernels.forward_backward(log_pi, log_A, log_lik, lengths, backend="numba")
    value = kernels.log_likelihood(log_pi, log_A, log_lik, lengths, backend="numba")
    for a, b, c in zip(threaded, serial, reference, strict=True):
        # bit for bit: the slices only regroup independent lanes (a chain sampled here with
        # two threads must equal one in a single-threaded worker, docs/parallel.md)
        assert torch.equal(a, b)
        torch.testing.assert_close(a, c, rtol=0, atol=1e-10)
    torch.testing.assert_close(value, reference.log_likelihood, rtol=0, atol=1e-10)


def test_single_threaded_calls_use_the_lanes(monkeypatch):
    calls = []
    monkeypatch.setattr(
        batch,
        "forward_backward_lanes",
        lambda *a: calls.append(1) or forward_backward_lanes(*a),
    )
    monkeypatch.setattr(batch.numba, "get_num_threads", lambda: 1)
    rng = np.random.default_rng(5)
    log_pi, log_A, log_lik, lengths = (torch.from_numpy(a) for a in random_inputs(rng, 4, 9, 3))
    kernels.forward_backward(log_pi, log_A, log_lik, lengths, backend="numba")
    assert calls == [1]
