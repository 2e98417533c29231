"""Streaming mini-batch SVI from a store, its scaling and checkpoints."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyro
import pytest
import torch

from hmm_pyro import fit_map, fit_svi, simulate
from hmm_pyro.inference.stream import (
    BatchSchedule,
    _stream_model,
    fit_svi_stream,
    store_log_likelihood,
)
from hmm_pyro.store import open_store, write_store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def many(workload_hmm, true_params):
    data, _ = simulate(workload_hmm, true_params, [30] * 200, seed=11)
    return data


@pytest.fixture(scope="module")
def store_path(many, tmp_path_factory, workload_hmm):
    path = tmp_path_factory.mktemp("store") / "many.nc"
    return write_store(path, many, chunk_size=16, emission=workload_hmm.emission)


def test_every_block_is_used_once_per_epoch_and_the_scale_is_unbiased():
    schedule = BatchSchedule(num_sequences=105, batch_size=30, block_size=10, seed=0)
    # 11 blocks (the last has 5 sequences), 3 per batch, 3 batches per epoch (2 blocks left).
    assert (schedule.num_blocks, schedule.blocks_per_batch, schedule.batches_per_epoch) == (
        11,
        3,
        3,
    )
    counts = np.zeros(105)
    for step in range(3 * 2000):
        indices, correction = schedule.indices(step)
        assert np.all(np.diff(indices) > 0)
        if step < 3:
            counts_epoch = np.bincount(indices, minlength=105)
            assert counts_epoch.max() == 1
        # plate scale N / len(indices) times the correction: num_blocks / blocks_per_batch
        assert np.isclose(105 / indices.size * correction, 11 / 3)
        counts[indices] += 11 / 3
    # Horvitz-Thompson: every sequence's scaled inclusion averages one per step.
    assert np.allclose(counts / 6000, 1.0, atol=0.05)
    with pytest.raises(ValueError, match="block_size"):
        BatchSchedule(100, batch_size=5, block_size=10, seed=0)


def test_the_batch_model_scales_the_likelihood_by_the_plate(workload_hmm, many, true_params):
    model = _stream_model(workload_hmm, num_sequences=200)
    indices = torch.arange(10, 60)
    batch = many.select(indices)
    conditioned = pyro.poutine.condition(model, data=true_params)
    trace = pyro.poutine.trace(conditioned).get_trace(batch, indices, 1.0)
    expected = float(workload_hmm.log_prior(true_params)) + 4.0 * float(
        workload_hmm.log_likelihood(true_params, batch).sum()
    )
    assert np.isclose(float(trace.log_prob_sum()), expected, rtol=1e-12)


def test_full_batch_stream_map_matches_fit_map_adam_on_the_same_objective(workload_hmm, many):
    settings = {"steps": 60, "lr": 0.05, "seed": 2, "progress": False}
    stream = fit_svi_stream(
        workload_hmm, many, batch_size=500, block_size=1, lr_decay=1.0, **settings
    )
    assert (stream.method, stream.attrs["guide"], stream.attrs["optimizer"]) == (
        "svi",
        "map",
        "adam",
    )
    reference = fit_map(workload_hmm, many, optimizer="adam", restarts=1, tol=0.0, **settings)
    for name in workload_hmm.param_names:
        torch.testing.assert_close(stream.draws()[name], reference.draws()[name], rtol=0, atol=1e-9)


def test_stream_fit_reaches_the_map_keeps_a_subset_and_the_whole_store_likelihood(
    workload_hmm, many, store_path, align_rows
):
    with open_store(store_path) as store:
        fit = fit_svi_stream(
            workload_hmm,
            store,
            batch_size=40,
            steps=300,
            keep_sequences=25,
            seed=0,
            init="prior",  # seed 0 was measured with prior-draw starts (one restart)
            progress=False,
        )
        total = store_log_likelihood(workload_hmm, fit.posterior_mean(), store, chunk_size=64)
    attrs = fit.attrs
    assert fit.data.num_sequences == 25 and fit.idata.log_likelihood["y"].shape[-1] == 25
    assert "first 25 of 200" in attrs["data_subset"]
    assert attrs["stream"]["batches_per_epoch"] == 5 and attrs["stream"]["epochs"] == 60
    assert np.isclose(attrs["log_likelihood_total"][0], total)
    assert fit.idata.sample_stats.loss.shape == (1, 1, 1, 300)
    # 60 epochs of mini-batches of 40 reach the full-data MAP point (L-BFGS) closely.
    MAP = fit_map(workload_hmm, many, seed=0, progress=False).posterior_mean()["B"]
    B = fit.posterior_mean()["B"]
    assert float((B[align_rows(MAP, B)] - MAP).abs().max()) < 0.03


def test_stream_checkpoint_resume_is_bitwise(workload_hmm, store_path, tmp_path):
    settings = {"batch_size": 40, "steps": 120, "guide": "normal", "num_draws": 20, "seed": 4}
    settings.update(progress=False, restarts=2)
    straight = fit_svi_stream(workload_hmm, store_path, **settings)
    path = tmp_path / "stream.ckpt"

    def stop(restart, step, loss):
        if (restart, step) == (1, 77):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit_svi_stream(
            workload_hmm,
            store_path,
            checkpoint=path,
            checkpoint_every=25,
            callback=stop,
            **settings,
        )
    resumed = fit_svi_stream(workload_hmm, store_path, checkpoint=path, resume=True, **settings)
    assert resumed.attrs["resumed_from"] == {"restart": 1, "step": 77}
    for name in workload_hmm.param_names:
        assert torch.equal(straight.draws()[name], resumed.draws()[name])


def test_bad_arguments_are_named(workload_hmm, many, store_path):
    with pytest.raises(ValueError, match="block_size"):
        fit_svi_stream(workload_hmm, many, batch_size=5, block_size=10)
    with pytest.raises(ValueError, match="lr_decay"):
        fit_svi_stream(workload_hmm, many, lr_decay=2.0)
    with pytest.raises(ValueError, match="guide"):
        fit_svi_stream(workload_hmm, many, guide="laplace")
    with open_store(store_path) as store:
        for runner in (fit_svi, fit_map):
            with pytest.raises(TypeError, match="fit_svi_stream"):
                runner(workload_hmm, store)
    from hmm_pyro import HMM, Gaussian

    with pytest.raises(ValueError, match="store"):
        fit_svi_stream(HMM(2, Gaussian()), store_path)


@pytest.mark.slow
def test_benchmark_scaled_down_recovers_the_truth_in_bounded_memory(tmp_path):
    """The 100,000-sequence benchmark at 5,000 sequences, each phase in its own process."""
    out = tmp_path / "stream.json"
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "stream.py"),
        "--sequences=5000",
        "--steps=200",
        f"--work={tmp_path}",
        f"--out={out}",
    ]
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    results = json.loads(out.read_text())
    errors = results["fit"]["max_abs_error"]
    assert errors["B"] < 0.02 and errors["A"] < 0.02
    assert results["peak_rss_mb"] < 1000
    assert results["decode"]["viterbi_accuracy"] > 0.75
