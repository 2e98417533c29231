"""NUTS with chain_dir: finished chains saved atomically and reused on a rerun."""

import pytest
import torch

from hmm_pyro import fit_nuts

SETTINGS = {"chains": 2, "warmup": 30, "draws": 20, "parallel": False, "progress": False}


def test_saved_chains_are_reused_and_give_the_uninterrupted_result(
    workload_hmm, small_data, tmp_path
):
    reference = fit_nuts(workload_hmm, small_data, seed=4, **SETTINGS)
    first = fit_nuts(workload_hmm, small_data, seed=4, chain_dir=tmp_path, **SETTINGS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain_0.npz", "chain_1.npz"]
    assert first.attrs["reused_chains"] == []
    # As if the run had been stopped before chain 1 finished: only chain 1 runs again.
    (tmp_path / "chain_1.npz").unlink()
    rerun = fit_nuts(workload_hmm, small_data, seed=None, chain_dir=tmp_path, **SETTINGS)
    assert rerun.attrs["reused_chains"] == [0] and rerun.attrs["seed"] == 4
    again = fit_nuts(workload_hmm, small_data, seed=4, chain_dir=tmp_path, **SETTINGS)
    assert again.attrs["reused_chains"] == [0, 1]
    for fit in (first, rerun, again):
        for name in workload_hmm.param_names:
            assert torch.equal(fit.draws()[name], reference.draws()[name])
        assert (fit.idata.sample_stats.lp.values == reference.idata.sample_stats.lp.values).all()


def test_chains_from_other_settings_are_refused(workload_hmm, small_data, tmp_path):
    settings = {**SETTINGS, "chains": 1, "warmup": 10, "draws": 5}
    fit_nuts(workload_hmm, small_data, seed=1, chain_dir=tmp_path, **settings)
    with pytest.raises(ValueError, match=r"chain_dir: .* other settings"):
        fit_nuts(workload_hmm, small_data, seed=1, chain_dir=tmp_path, **{**settings, "draws": 6})
    (tmp_path / "chain_0.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a saved chain"):
        fit_nuts(workload_hmm, small_data, seed=1, chain_dir=tmp_path, **settings)
    with pytest.raises(TypeError, match="chain_dir"):
        fit_nuts(workload_hmm, small_data, chain_dir=3, **settings)
