"""Decoding the sequences of a store chunk by chunk."""

import numpy as np
import pytest
import torch
import xarray as xr

from hmm_pyro import HMM, Categorical, fit_map, simulate
from hmm_pyro.decode import decode_store, iter_decode
from hmm_pyro.simulate import REFERENCE_PARAMS
from hmm_pyro.store import MemoryStore, write_store


@pytest.fixture(scope="module")
def workload_hmm():
    """3 states, 5 symbols, flat Dirichlet priors (the reference workload)."""
    return HMM(num_states=3, emission=Categorical(num_symbols=5))


@pytest.fixture(scope="module")
def many(workload_hmm):
    data, _ = simulate(workload_hmm, REFERENCE_PARAMS, [30] * 200, seed=11)
    return data


@pytest.fixture(scope="module")
def store_path(many, tmp_path_factory, workload_hmm):
    path = tmp_path_factory.mktemp("store") / "many.nc"
    return write_store(path, many, chunk_size=16, emission=workload_hmm.emission)


def test_chunked_decoding_equals_decoding_everything(workload_hmm, many, store_path, tmp_path):
    fit = fit_map(
        workload_hmm, many.select(range(50)), steps=50, restarts=1, seed=0, progress=False
    )
    probs = fit.state_probs(many)
    paths, scores = fit.viterbi(many)
    parts = list(iter_decode(fit, MemoryStore(many), chunk_size=64))
    assert [(p.start, p.stop) for p in parts] == [(0, 64), (64, 128), (128, 192), (192, 200)]
    torch.testing.assert_close(torch.cat([p.state_probs for p in parts]), probs)
    assert torch.equal(torch.cat([p.paths for p in parts]), paths)
    out = decode_store(fit, store_path, tmp_path / "decoded.nc", chunk_size=64)
    with xr.open_dataset(out, engine="h5netcdf") as decoded:
        np.testing.assert_allclose(decoded["state_probs"].values, probs.numpy(), atol=1e-6)
        np.testing.assert_array_equal(decoded["viterbi"].values, paths.numpy())
        np.testing.assert_allclose(decoded["viterbi_score"].values, scores.numpy())
