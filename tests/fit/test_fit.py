"""Fit: hidden-state posteriors, predictive draws, save/load, ArviZ interoperability."""

import warnings

import arviz as az
import numpy as np
import pytest
import torch

from hmm_pyro import HMM, Fit, Gaussian, fit_nuts, load, simulate
from hmm_pyro.fit import MixedLabelsWarning


@pytest.fixture(scope="module")
def gaussian_fit():
    hmm = HMM(2, Gaussian())
    params = {
        "pi": torch.tensor([0.6, 0.4], dtype=torch.float64),
        "A": torch.tensor([[0.9, 0.1], [0.15, 0.85]], dtype=torch.float64),
        "mu": torch.tensor([-1.5, 1.5], dtype=torch.float64),
        "sigma": torch.tensor([0.7, 0.7], dtype=torch.float64),
    }
    values = [
        np.array(row) for row in simulate(hmm, params, [40, 25, 33, 18, 30], seed=0)[0].to_list()
    ]
    values[1][3] = np.nan  # a missing observation
    fit = fit_nuts(
        hmm, values, chains=2, warmup=60, draws=40, seed=0, progress=False, parallel=False
    )
    return fit, params


def test_save_load_round_trip_keeps_every_group(gaussian_fit, tmp_path):
    fit, _ = gaussian_fit
    path = fit.save(tmp_path / "fit.nc")
    loaded = load(path)
    assert set(loaded.idata.groups()) == set(fit.idata.groups())
    for group in fit.idata.groups():
        for name, variable in fit.idata[group].data_vars.items():
            np.testing.assert_array_equal(loaded.idata[group][name].values, variable.values)
    assert loaded.hmm.to_config() == fit.hmm.to_config()
    assert loaded.attrs["seed"] == 0 and loaded.method == "nuts"
    assert torch.equal(loaded.data.lengths, fit.data.lengths)
    assert torch.equal(loaded.data.observed, fit.data.observed)
    assert not list(tmp_path.glob("*.tmp"))


def test_load_rejects_other_files(tmp_path):
    with pytest.raises(ValueError, match="path"):
        load(tmp_path / "missing.nc")
    other = tmp_path / "other.nc"
    az.from_dict(posterior={"x": np.zeros((1, 5))}).to_netcdf(other)
    with pytest.raises(ValueError, match="not a hmm_pyro fit"):
        load(other)


def test_load_refuses_damaged_fits_in_one_line_naming_the_file(gaussian_fit, tmp_path):
    import shutil

    import h5py

    fit, _ = gaussian_fit
    path = fit.save(tmp_path / "fit.nc")
    raw = path.read_bytes()
    cut = tmp_path / "cut.nc"
    cut.write_bytes(raw[: len(raw) // 2])
    huge, nan = tmp_path / "huge.nc", tmp_path / "nan.nc"
    for target in (huge, nan):
        shutil.copyfile(path, target)
    with h5py.File(huge, "r+") as handle:  # a chunked variable declaring 16 TiB, holding nothing
        del handle["posterior/mu"]
        handle["posterior"].create_dataset("mu", shape=(2**40, 2), dtype="f8", chunks=True)
    with h5py.File(nan, "r+") as handle:
        handle["posterior/sigma"][0, 3, 1] = np.nan
    for target, message in (
        (cut, "not a NetCDF-4 fit"),
        (huge, r"would need [\d.]+ TiB of memory, only .* refused before allocating"),
        (nan, "not a valid hmm_pyro fit .*draws of 'sigma' hold NaN or inf"),
    ):
        with pytest.raises(ValueError, match=message) as error:
            load(target)
        assert str(error.value).startswith(f"path: cannot read {str(target)!r}: ")
        assert "\n" not in str(error.value)


def test_arviz_summary_and_loo_run(gaussian_fit):
    fit, _ = gaussian_fit
    summary = fit.summary()
    assert {"mean", "sd", "ess_bulk", "r_hat"} <= set(summary.columns)
    assert len(summary) == 2 + 4 + 2 + 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few sequences: Pareto k warnings are expected here
        loo = az.loo(fit.idata)
    assert np.isfinite(loo.elpd_loo)


def test_state_probs_average_the_per_draw_marginals(gaussian_fit):
    fit, _ = gaussian_fit
    probs = fit.state_probs(max_draws=10)
    draws = fit.flat_draws(10)
    expected = fit.hmm.posterior_marginals(draws, fit.data).mean(0)
    assert torch.allclose(probs, expected, atol=1e-12)
    mask = fit.data.mask
    assert torch.allclose(probs.sum(-1)[mask], torch.ones(int(mask.sum()), dtype=probs.dtype))
    assert float(probs.sum(-1)[~mask].abs().max()) == 0.0


def test_viterbi_and_path_sampling(gaussian_fit):
    fit, _ = gaussian_fit
    paths, _ = fit.viterbi()
    expected, _ = fit.hmm.viterbi(fit.posterior_mean(), fit.data)
    assert torch.equal(paths, expected)
    per_draw, _ = fit.viterbi(per_draw=True, max_draws=7)
    assert per_draw.shape == (7, *paths.shape)
    sampled = fit.sample_paths(num_samples=400, seed=0)
    assert sampled.shape == (400, *paths.shape)
    assert torch.equal(sampled == -1, (paths == -1).expand_as(sampled))
    # Sampled paths agree with the averaged marginals (400 draws: SE <= 0.025, bound 0.12).
    frequency = (sampled == 1).double().mean(0)
    probs = fit.state_probs()[..., 1]
    assert float((frequency - probs)[fit.data.mask].abs().max()) < 0.12
    again = fit.sample_paths(num_samples=400, seed=0)
    assert torch.equal(sampled, again)


def test_posterior_predictive_has_the_data_shape(gaussian_fit):
    fit, _ = gaussian_fit
    dataset = fit.posterior_predictive(num_samples=5, seed=0)
    assert dataset["y"].shape == (1, 5, 5, 40)
    assert "posterior_predictive" in fit.idata.groups()
    lengths = fit.data.lengths.numpy()
    observed = ~np.isnan(dataset["y"].values[0, 0])
    assert (observed.sum(-1) == lengths).all()
    assert ((dataset["states"].values[0, 0] >= 0).sum(-1) == lengths).all()


def test_from_params_wraps_a_point_estimate(gaussian_fit):
    fit, params = gaussian_fit
    point = Fit.from_params(fit.hmm, fit.data, params, method="em", attrs={"init": "data"})
    assert (point.num_chains, point.num_draws) == (1, 1)
    assert point.method == "em" and point.attrs["init"] == "data"
    expected = fit.hmm.posterior_marginals(params, fit.data)
    assert torch.allclose(point.state_probs(), expected, atol=1e-12)
    with pytest.raises(ValueError, match="params"):
        Fit.from_params(fit.hmm, fit.data, {**params, "mu": params["mu"].expand(2, 3, 4, 2)})


PER_STATE = {
    "posterior_mean": lambda fit: fit.posterior_mean(),
    "state_probs": lambda fit: fit.state_probs(max_draws=5),
    "viterbi": lambda fit: fit.viterbi(),
    "sample_paths": lambda fit: fit.sample_paths(num_samples=2, seed=0),
    "posterior_predictive": lambda fit: fit.posterior_predictive(num_samples=2, seed=0),
    "summary": lambda fit: fit.summary(),
}


def _draws_of(fit, chains, draws):
    return {
        name: value[:chains, :draws].clone() for name, value in fit.draws().items()
    }  # (chain, draw, ...) taken from a real fit


@pytest.mark.parametrize("name", sorted(PER_STATE))
def test_per_state_results_of_draws_in_unknown_labellings_warn(gaussian_fit, name):
    fit, _ = gaussian_fit
    assert fit.labelling == "aligned"  # fit_nuts aligned its chains
    draws = _draws_of(fit, 2, 5)
    unknown = Fit.from_params(fit.hmm, fit.data, draws, method="nuts")
    assert unknown.labelling == "unknown"
    with pytest.warns(MixedLabelsWarning, match=rf"Fit\.{name}: .* hmm_pyro\.relabel\(fit\)"):
        PER_STATE[name](unknown)
    raw = Fit.from_params(fit.hmm, fit.data, draws, method="nuts", attrs={"labels": "raw"})
    assert raw.labelling == "raw"
    with pytest.warns(MixedLabelsWarning, match="as sampled"):
        PER_STATE[name](raw)


@pytest.mark.parametrize(
    ("attrs", "method", "shape", "expected"),
    [
        ({"labels": "aligned"}, "nuts", (2, 5), "aligned"),
        ({"relabel": {"method": "stephens"}}, "nuts", (2, 5), "aligned"),  # an older file
        (None, "svi", (1, 5), "one mode"),  # one guide's draws
        (None, "nuts", (1, 1), "one draw"),
        ({"labels": "raw"}, "nuts", (1, 1), "one draw"),
    ],
)
def test_consistent_labellings_do_not_warn(gaussian_fit, attrs, method, shape, expected):
    fit, _ = gaussian_fit
    draws = _draws_of(fit, *shape)
    consistent = Fit.from_params(fit.hmm, fit.data, draws, method=method, attrs=attrs)
    assert consistent.labelling == expected
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for use in PER_STATE.values():
            use(consistent)
