"""sweep: grid expansion, validation, results, and bitwise-equal runs on a Dask cluster.

The cluster tests share one LocalCluster with 2 single-threaded worker processes; one of them
kills a worker while the sweep runs and still gets every result, equal to the serial sweep.
"""

import functools
import json
import os
import signal
import threading
import time

import dask
import numpy as np
import pandas as pd
import pytest

import hmm_pyro as hp
from hmm_pyro.cli import main
from hmm_pyro.simulate import REFERENCE_PARAMS
from hmm_pyro.starts import derive_seeds
from hmm_pyro.sweep import METRIC_COLUMNS, SweepResult

GRID = {
    "num_states": [2, 3, 4],
    "prior": {"flat": hp.Prior(), "sticky": hp.Prior(stickiness=5.0)},
    "symbols": [5, 6],
}  # 12 points
EM_OPTIONS = {"restarts": 2, "max_iter": 40}
ON_THE_CLIENT = pytest.mark.xdist_group("sweep_client")
"""The tests on the module's 2-worker Dask cluster, in this order (the last one kills a worker):
one pytest-xdist worker starts the cluster once and runs them one after the other."""


def make_hmm(num_states, prior, symbols=5):
    return hp.HMM(num_states, hp.Categorical(num_symbols=symbols), prior=prior)


@pytest.fixture(scope="module")
def data():
    sequences, _ = hp.simulate(hp.HMM(3, hp.Categorical(5)), REFERENCE_PARAMS, [60] * 4, seed=1)
    return sequences


@pytest.fixture(scope="module")
def serial(data):
    return hp.sweep(make_hmm, data, GRID, method="em", seed=3, parallel=False, **EM_OPTIONS)


def assert_same(first: SweepResult, second: SweepResult):
    assert len(first) == len(second) == len(first.table)
    for one, other in zip(first.fits, second.fits, strict=True):
        assert one.hmm.to_config() == other.hmm.to_config()
        for name in one.hmm.param_names:
            assert np.array_equal(
                one.idata.posterior[name].values, other.idata.posterior[name].values
            )
        for name, values in one.idata.sample_stats.items():
            assert np.array_equal(
                values.values, other.idata.sample_stats[name].values, equal_nan=True
            )
    columns = [column for column in first.table.columns if column != "seconds"]
    pd.testing.assert_frame_equal(first.table[columns], second.table[columns], check_exact=True)


# ---------------------------------------------------------------------------- the table
def test_table_has_one_row_per_grid_point_in_grid_order(serial, data):
    table = serial.table
    assert list(table.columns) == ["num_states", "prior", "symbols", *METRIC_COLUMNS]
    assert table.index.name == "point" and list(table.index) == list(range(12))
    assert table["num_states"].tolist() == [2] * 4 + [3] * 4 + [4] * 4
    assert table["prior"].tolist() == ["flat", "flat", "sticky", "sticky"] * 3
    assert table["symbols"].tolist() == [5, 6] * 6
    assert table["seed"].tolist() == serial.seeds == derive_seeds(3, 12)
    assert (table["method"] == "em").all() and table["elbo"].isna().all()
    for index, fit in enumerate(serial.fits):
        point = serial.points[index]
        assert fit.hmm.num_states == point["num_states"]
        assert fit.hmm.prior == point["prior"]
        assert fit.attrs["seed"] == serial.seeds[index]
        expected = float(fit.hmm.log_likelihood(fit.posterior_mean(), data).sum())
        assert table.loc[index, "log_likelihood"] == pytest.approx(expected, rel=1e-9)
        assert table.loc[index, "num_params"] == fit.hmm.num_free_params()
        assert table.loc[index, "ok"] == serial.reports[index].ok
    # 2 states, 5 symbols: pi 1 + A 2 + B 2 x 4
    assert table.loc[0, "num_params"] == 11
    bic = -2 * table.loc[0, "log_likelihood"] + 11 * np.log(240)
    assert table.loc[0, "bic"] == pytest.approx(bic)
    assert (table["seconds"] > 0).all()


def test_point_fits_equal_the_runner_called_directly(serial, data):
    index = 5  # 3 states, flat, 6 symbols
    direct = hp.fit_em(
        make_hmm(3, hp.Prior(), 6), data, seed=serial.seeds[index], progress=False, **EM_OPTIONS
    )
    for name in direct.hmm.param_names:
        assert np.array_equal(direct.draws()[name], serial.fits[index].draws()[name])


def test_map_svi_and_nuts_points(data):
    point = hp.sweep(
        functools.partial(make_hmm, prior=hp.Prior()),
        data,
        {"num_states": [2]},
        restarts=1,
        steps=50,
    )
    row = point.table.iloc[0]
    assert row["method"] == "map" and point.fits[0].attrs["optimizer"] == "lbfgs"  # the default
    assert np.isfinite(row["bic"]) and np.isnan(row["elbo"])
    final = float(point.fits[0].idata.sample_stats["final_loss"].min())
    assert row["log_likelihood"] + row["log_prior"] == pytest.approx(-final, rel=1e-9)
    svi = hp.sweep(
        functools.partial(make_hmm, prior=hp.Prior()),
        data,
        {"num_states": [2]},
        method="svi",
        restarts=1,
        steps=50,
        num_draws=20,
    )
    row = svi.table.iloc[0]
    assert row["method"] == "svi" and np.isfinite(row["elbo"]) and np.isnan(row["bic"])
    assert svi.fits[0].num_draws == 20
    nuts = hp.sweep(
        functools.partial(make_hmm, prior=hp.Prior()),
        data,
        {"num_states": [2]},
        method="nuts",
        chains=1,
        warmup=20,
        draws=20,
        max_tree_depth=4,
    )
    row = nuts.table.iloc[0]
    assert nuts.fits[0].num_draws == 20 and np.isnan(row["bic"]) and np.isnan(row["elbo"])
    assert np.isfinite(row["log_likelihood"]) and np.isfinite(row["log_prior"])


COVARIATE_MODELS = {
    "transitions": lambda: hp.CovariateHMM(2, hp.Categorical(3), ["hour"]),
    "emissions": lambda: hp.HMM(2, hp.CategoricalRegression(3, ["hour"])),
}
"""Models that read the covariates: transitions that change with ``hour``, or emissions."""


def test_points_of_covariate_models_carry_the_covariates():
    """Each point rebuilds the covariates exactly (raw values and the standardisation of all
    the data); its log likelihood is that of its mode on the original data, and its fit equals
    the runner called directly there, to 1e-7 (a task runs with one torch thread: sums in
    another order move the mode by about 1e-10; misread covariates would move it by tenths)."""
    hours = 12.0 + 6.0 * np.sin(2 * np.pi * np.arange(50) / 24)
    covariates = hp.Covariates([hours], ["hour"])
    symbols = np.random.default_rng(0).integers(0, 3, 50)
    data = hp.Sequences([symbols], covariates=covariates)
    result = hp.sweep(
        lambda model: COVARIATE_MODELS[model](),
        data,
        {"model": list(COVARIATE_MODELS)},
        method="map",
        seed=2,
        parallel=False,
        restarts=1,
    )
    assert list(result.table["model"]) == list(COVARIATE_MODELS)
    assert np.isfinite(result.table["log_likelihood"]).all()
    for index, (name, make) in enumerate(COVARIATE_MODELS.items()):
        fit = result.fits[index]
        assert fit.data.covariates.same_scale(covariates), name
        np.testing.assert_array_equal(fit.data.covariates.raw.numpy(), covariates.raw.numpy())
        mode = {param: value[0, 0] for param, value in fit.draws().items()}
        np.testing.assert_allclose(
            result.table.loc[index, "log_likelihood"],
            make().log_likelihood(mode, data).sum().item(),
            rtol=1e-12,
        )
        direct = hp.fit_map(make(), data, seed=result.seeds[index], restarts=1, progress=False)
        for param in direct.hmm.param_names:
            np.testing.assert_allclose(
                direct.draws()[param].numpy(), fit.draws()[param].numpy(), rtol=1e-7, atol=1e-7
            )


def test_save_writes_table_reports_and_fits_atomically(serial, data, tmp_path):
    serial.save(tmp_path / "table", fits=False)
    names = sorted(path.name for path in (tmp_path / "table").iterdir())
    assert names == ["sweep.csv", "sweep.json", "sweep.md"]  # no temporary files left
    record = json.loads((tmp_path / "table" / "sweep.json").read_text())
    assert record["method"] == "em" and record["seeds"] == serial.seeds
    assert len(record["table"]) == 12 and record["table"][4]["prior"] == "flat"
    assert record["points"][2]["prior"] == hp.Prior(stickiness=5.0).to_dict()
    assert "| point | num_states | prior |" in (tmp_path / "table" / "sweep.md").read_text()
    frame = pd.read_csv(tmp_path / "table" / "sweep.csv", index_col="point")
    assert frame.shape == (12, 3 + len(METRIC_COLUMNS))

    grid = {"num_states": [2, 3], "prior": [hp.Prior()]}
    pair = hp.sweep(make_hmm, data, grid, method="em", parallel=False)
    paths = pair.save(tmp_path / "out", prefix="k")
    assert set(paths) == {"csv", "json", "markdown", "fit 0", "fit 1"}
    assert paths["fit 1"].name == "k_fit_001.nc"
    loaded = hp.load(paths["fit 1"])
    assert np.array_equal(loaded.draws()["B"], pair.fits[1].draws()["B"])
    pair.save(tmp_path / "out", prefix="k")  # overwrite in place
    assert not [path for path in (tmp_path / "out").iterdir() if path.name.startswith(".")]
    assert pair.table.loc[0, "prior"] == "defaults"


# ---------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("grid", "error", "match"),
    [
        ([2, 3], TypeError, "grid: expected a dict"),
        ({}, ValueError, "grid: expected at least one key"),
        ({"num_states": 3}, TypeError, r"grid\['num_states'\]: expected a list"),
        ({"num_states": "23"}, TypeError, r"grid\['num_states'\]: expected a list"),
        ({"num_states": []}, ValueError, r"grid\['num_states'\]: expected at least one"),
        ({"num states": [2]}, ValueError, "grid: keys must be argument names"),
        ({"seconds": [2]}, ValueError, "also a column"),
        ({"num_states": [2], "colour": [1]}, TypeError, "hmm_factory: cannot be called"),
    ],
)
def test_bad_grid_is_named(data, grid, error, match):
    with pytest.raises(error, match=match):
        hp.sweep(make_hmm, data, grid, parallel=False)


def test_bad_arguments_are_named(data):
    grid = {"num_states": [2], "prior": [hp.Prior()]}
    with pytest.raises(TypeError, match="hmm_factory: expected a callable"):
        hp.sweep("HMM", data, grid)
    with pytest.raises(
        TypeError, match=r"hmm_factory\(num_states=2, prior=.*\): expected a hmm_pyro.HMM"
    ):
        hp.sweep(lambda num_states, prior: None, data, grid)
    with pytest.raises(ValueError, match=r"hmm_factory\(num_states=0"):
        hp.sweep(make_hmm, data, {"num_states": [0], "prior": [hp.Prior()]})
    with pytest.raises(ValueError, match="method: expected one of"):
        hp.sweep(make_hmm, data, grid, method="vi")
    with pytest.raises(TypeError, match="hmm: not an option of the em runner"):
        hp.sweep(make_hmm, data, grid, method="em", hmm=None)
    with pytest.raises(TypeError, match="steps: not an option of the em runner"):
        hp.sweep(make_hmm, data, grid, method="em", steps=10)
    with pytest.raises(TypeError, match=r"client: expected a distributed\.Client"):
        hp.sweep(make_hmm, data, grid, client=8786)
    with pytest.raises(ValueError, match="parallel: False contradicts client"):
        hp.sweep(make_hmm, data, grid, client="tcp://127.0.0.1:1", parallel=False)
    with pytest.raises(ValueError, match="data: does not fit the model of grid point"):
        hp.sweep(make_hmm, data, {"num_states": [2], "prior": [hp.Prior()], "symbols": [3]})


# ---------------------------------------------------------------------------- on a cluster
@pytest.mark.slow
@ON_THE_CLIENT
def test_sweep_on_a_two_worker_cluster_equals_the_serial_sweep(serial, data, client):
    assert len(client.scheduler_info()["workers"]) == 2
    distributed_run = hp.sweep(
        make_hmm, data, GRID, method="em", seed=3, client=client, **EM_OPTIONS
    )
    assert_same(serial, distributed_run)
    assert len({seconds for seconds in distributed_run.table["seconds"]}) == 12


@pytest.mark.slow
@ON_THE_CLIENT
def test_compare_priors_and_nuts_chains_on_the_cluster_equal_serial(data, client):
    from hmm_pyro.compare import compare_priors

    hmm = hp.HMM(3, hp.Categorical(5))
    priors = {"flat": hp.Prior(), "strong": hp.Prior(B=100.0)}
    options = {"method": "map", "seed": 5, "folds": 2, "restarts": 1, "steps": 100}
    here = compare_priors(hmm, data, priors, parallel=False, **options)
    there = compare_priors(hmm, data, priors, client=client, **options)
    columns = [column for column in here.table.columns if column != "seconds"]
    pd.testing.assert_frame_equal(here.table[columns], there.table[columns], check_exact=True)

    chains = {"chains": 2, "warmup": 20, "draws": 10, "max_tree_depth": 4, "progress": False}
    chains["relabel"] = False  # 10 draws per chain are too few to relabel reliably
    serial = hp.fit_nuts(hmm, data, seed=2, parallel=False, **chains)
    address = client.scheduler.address  # a scheduler address: connected and closed by the call
    remote = hp.fit_nuts(hmm, data, seed=2, client=address, **chains)
    for name in hmm.param_names:
        assert np.array_equal(serial.draws()[name], remote.draws()[name])


def _sweep_state(dask_scheduler):
    """(finished sweep tasks, workers running one): runs on the scheduler."""
    tasks = [ts for key, ts in dask_scheduler.tasks.items() if "_run_point" in str(key)]
    done = sum(ts.state == "memory" for ts in tasks)
    busy = [ts.processing_on.address for ts in tasks if ts.processing_on is not None]
    return done, busy


@pytest.mark.slow
@ON_THE_CLIENT
def test_sweep_survives_a_worker_killed_mid_sweep(data, client):
    slow = {"restarts": 2, "max_iter": 150, "tol": 0.0}  # about 0.3 s per point
    expected = hp.sweep(make_hmm, data, GRID, method="em", seed=4, parallel=False, **slow)
    pids = client.run(os.getpid)
    killed: list[tuple[int, int]] = []

    def kill_one_busy_worker():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            done, busy = client.run_on_scheduler(_sweep_state)
            if done >= 1 and busy and busy[0] in pids:
                os.kill(pids[busy[0]], signal.SIGKILL)
                killed.append((pids[busy[0]], done))
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_one_busy_worker)
    killer.start()
    try:
        result = hp.sweep(make_hmm, data, GRID, method="em", seed=4, client=client, **slow)
    finally:
        killer.join()
    assert killed, "no worker was killed during the sweep"
    assert killed[0][1] < 12  # killed while tasks were still running
    assert len(result) == 12
    assert_same(expected, result)
    # The nanny restarted the killed worker: the cluster is whole again.
    deadline = time.monotonic() + 60
    while len(client.scheduler_info()["workers"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert killed[0][0] not in client.run(os.getpid).values()


# ---------------------------------------------------------------------------- CLI
def test_cli_sweep_writes_the_table_reports_and_fits(data, tmp_path, capsys, monkeypatch):
    """``hmm-pyro sweep`` through :func:`main` in this process (the entry point's own subprocess
    test is in tests/test_cli.py)."""
    data.to_dataframe().astype({"value": "int64"}).to_csv(tmp_path / "data.csv", index=False)
    monkeypatch.chdir(tmp_path)
    code = main(
        ["sweep", "data.csv", "--states", "2", "3", "--prior", "flat", "--prior",
         "sticky:stickiness=5", "--method", "em", "--restarts", "2", "--serial", "--out", "out"]
    )  # fmt: skip
    done = capsys.readouterr()
    assert code == 0, done.err
    assert "sweeping 4 fit(s) by em here" in done.out
    out = tmp_path / "out"
    assert {"sweep.csv", "sweep.json", "sweep.md"} <= {path.name for path in out.iterdir()}
    assert len(list(out.glob("sweep_fit_*.nc"))) == 4
    table = pd.read_csv(out / "sweep.csv", index_col="point")
    assert table["num_states"].tolist() == [2, 2, 3, 3]
    assert table["prior"].tolist() == ["flat", "sticky", "flat", "sticky"]


def test_cli_rejects_a_dead_scheduler_in_one_line(data, tmp_path, capsys, monkeypatch):
    data.to_dataframe().astype({"value": "int64"}).to_csv(tmp_path / "data.csv", index=False)
    monkeypatch.chdir(tmp_path)
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        code = main(["sweep", "data.csv", "--states", "2", "3", "--method", "em",
                     "--scheduler", "tcp://127.0.0.1:1", "--out", "never"])  # fmt: skip
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("hmm-pyro sweep: error: client: cannot connect to the Dask")
    assert not (tmp_path / "never").exists()
    assert main(["fit", "data.csv", "--states", "2", "--method", "em", "--scheduler", "x:1"]) == 2
    assert "--scheduler: only NUTS chains" in capsys.readouterr().err
    assert main(["sweep", "data.csv", "--states", "2", "2"]) == 2
    assert "--states: 2 is given twice" in capsys.readouterr().err
    code = main(["compare", "data.csv", "--states", "2", "--serial", "--scheduler", "x:1"])
    assert code == 2 and "cannot be combined with --serial" in capsys.readouterr().err
