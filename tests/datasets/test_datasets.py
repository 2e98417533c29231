"""``hmm_pyro.datasets``: the registry and the shipped files, checked against their sources, and
the numbers the data sets reproduce (``docs/datasets.md``), checked against computations
independent of hmm_pyro: direct numerical maximisation of the likelihood
(:mod:`tests.datasets.direct_likelihood`) and hmmlearn."""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hmmlearn.hmm import CategoricalHMM
from scipy import stats

import hmm_pyro as hp
from hmm_pyro.cli import build_parser
from hmm_pyro.cli._options import load_data
from hmm_pyro.datasets import (
    DATASETS,
    dataset,
    declaration,
    earthquakes,
    fetal_lamb,
    old_faithful,
    seattle_weather,
)
from hmm_pyro.fit import fit_statistics
from tests.datasets.direct_covariate import SEASONAL_MODE, design, log_objective, pack
from tests.datasets.direct_likelihood import REFERENCE, forward_log_likelihood, maximise


def test_earthquakes_match_the_published_series():
    """Zucchini & MacDonald (2009, Table 1.1): 107 years, 13, 14, 8, ... 11, 11, the maximum 41
    in 1943; sample mean 19.36 and variance 51.57 (the overdispersion quoted with the series)."""
    table = earthquakes()
    assert list(table.columns) == ["year", "count"]
    assert table["year"].tolist() == list(range(1900, 2007))
    counts = table["count"].to_numpy()
    assert counts[:3].tolist() == [13, 14, 8] and counts[-2:].tolist() == [11, 11]
    assert round(counts.mean(), 2) == 19.36 and round(counts.var(ddof=1), 2) == 51.57
    assert counts.max() == 41 and table.loc[counts.argmax(), "year"] == 1943


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_data_set_reads_alike_from_python_and_the_cli_options(name):
    entry = dataset(name)
    assert entry.name == name and entry.path.is_file() and entry.source and entry.title
    assert set(entry.columns) <= set(entry.frame().columns)
    data = entry.sequences()
    args = build_parser().parse_args(["fit", str(entry.path), *entry.cli_options(), "-K", "2"])
    from_cli = load_data(args)
    np.testing.assert_array_equal(from_cli.values.numpy(), data.values.numpy())
    assert from_cli.symbols == data.symbols and args.emission == entry.emission


def test_fetal_lamb_matches_its_sources():
    """Leroux & Puterman (1992): 240 five-second intervals. The copies of the series in the R
    packages BoomMix and label.switching agree; their frequency table: 182 intervals without a
    movement, 41 with one, 12, 2, 2, 0, 0 and 1 with two to seven, 86 movements in all, the
    burst 7, 3, 2, 3, 2, 4 in intervals 85-90."""
    table = fetal_lamb()
    assert list(table.columns) == ["interval", "count"]
    assert table["interval"].tolist() == list(range(1, 241))
    counts = table["count"].to_numpy()
    assert Counter(counts.tolist()) == {0: 182, 1: 41, 2: 12, 3: 2, 4: 2, 7: 1}
    assert counts.sum() == 86 and counts[84:90].tolist() == [7, 3, 2, 3, 2, 4]


def test_old_faithful_matches_its_source():
    """Azzalini & Bowman (1990), as the R packages sm and MASS ship it: 299 eruptions, the first
    (80 min, 4.0166667 min) and last (79, 2); waits of 43-108 minutes summing to 21622 (mean
    72.314); and the alternation the examples rely on: no two waits under 68 min in a row."""
    table = old_faithful()
    assert list(table.columns) == ["eruption", "waiting", "duration"]
    assert table["eruption"].tolist() == list(range(1, 300))
    waiting = table["waiting"].to_numpy()
    assert waiting.sum() == 21622 and (waiting.min(), waiting.max()) == (43, 108)
    assert table.iloc[0].tolist() == [1, 80, 4.0166667] and table.iloc[-1].tolist() == [299, 79, 2]
    assert round(table["duration"].sum(), 4) == 1034.7833
    short = waiting < 68
    assert short.sum() == 101 and not np.any(short[:-1] & short[1:])


def test_declaration_matches_the_transcription():
    """The National Archives' transcription (two independent copies agree letter for letter):
    1323 words from "When in the Course" to "our sacred Honor", with its spellings (harrass,
    compleat, Brittish, shewn); 7856 symbols, 27 distinct, ``e`` the most frequent letter."""
    text = "".join(declaration()["letter"])
    assert (
        len(text) == 7856
        and len(set(text)) == 27
        and set(text) <= set("_abcdefghijklmnopqrstuvwxyz")
    )
    words = text.split("_")
    assert len(words) == 1323 and all(words)
    assert text.startswith("when_in_the_course_of_human_events_it_becomes_necessary")
    assert text.endswith("our_lives_our_fortunes_and_our_sacred_honor")
    assert {"harrass", "compleat", "brittish", "shewn"} <= set(words)
    assert Counter(text.replace("_", "")).most_common(1)[0][0] == "e"


def _log_emission(name: str):
    """The independent log-density table ``theta -> (T, 2)`` of a data set's model, and its
    starting points: Poisson log rates, or Gaussian means and log standard deviations."""
    if name == "fetal_lamb":
        counts = fetal_lamb()["count"].to_numpy()
        starts = [np.log(counts.mean() * np.array([0.5, 5.0]))]
        return lambda theta: stats.poisson.logpmf(counts[:, None], np.exp(theta)), starts
    waiting = old_faithful()["waiting"].to_numpy().astype(float)
    spread = np.log(waiting.std() / 2)
    starts = [np.array([*np.quantile(waiting, [0.25, 0.75]), spread, spread])]
    return lambda theta: stats.norm.logpdf(waiting[:, None], theta[:2], np.exp(theta[2:])), starts


def _emission_vector(name: str, estimate: dict) -> np.ndarray:
    """The EM estimate in the direct maximisation's parameters."""
    if name == "fetal_lamb":
        return np.log(estimate["rate"].numpy())
    return np.concatenate([estimate["mu"].numpy(), np.log(estimate["sigma"].numpy())])


@pytest.fixture(scope="module")
def em_fits() -> dict:
    """Maximum likelihood by EM (flat Dirichlets, no emission prior, tol 1e-10; one start from
    the data, seed 0), per case."""
    fits = {}
    for name, initial in REFERENCE:
        emission = hp.Poisson() if name == "fetal_lamb" else hp.Gaussian()
        fits[name, initial] = hp.fit_em(
            hp.HMM(num_states=2, emission=emission),
            dataset(name).sequences(),
            restarts=1,
            max_iter=2000,
            tol=1e-10,
            seed=0,
            emission_prior=False,
            initial=initial,
            progress=False,
        )
    return fits


@pytest.mark.xdist_group("datasets_em")
@pytest.mark.parametrize(("name", "initial"), list(REFERENCE))
def test_em_reaches_the_direct_maximum_likelihood(em_fits, name, initial):
    """The recorded optimum is what direct maximisation (NumPy forward algorithm, SciPy
    L-BFGS-B, no hmm_pyro) finds, to 4 decimals; EM's optimum equals it within 1e-4 nats with
    the same parameters (rates, means and sds to 1e-3 relative, probabilities to 1e-3); and the
    independent forward algorithm at EM's estimate gives EM's log likelihood to 1e-8."""
    table, starts = _log_emission(name)
    direct = maximise(table, starts, 2, initial)
    assert round(direct.log_likelihood, 4) == REFERENCE[name, initial]
    fit = em_fits[name, initial]
    statistics = fit_statistics(fit)
    assert statistics.maximum_likelihood
    assert statistics.log_likelihood == pytest.approx(direct.log_likelihood, abs=1e-4)
    estimate = fit.posterior_mean()
    theta = _emission_vector(name, estimate)
    initial_probs, transition = estimate["pi"].numpy(), estimate["A"].numpy()
    independent = forward_log_likelihood(table(theta), initial_probs, transition)
    assert independent == pytest.approx(statistics.log_likelihood, abs=1e-8)
    order, direct_order = np.argsort(theta[:2]), np.argsort(direct.emission[:2])
    per_state = theta.reshape(-1, 2)[:, order]
    direct_per_state = direct.emission.reshape(-1, 2)[:, direct_order]
    np.testing.assert_allclose(np.exp(per_state), np.exp(direct_per_state), rtol=1e-3)
    np.testing.assert_allclose(
        transition[np.ix_(order, order)],
        direct.transition[np.ix_(direct_order, direct_order)],
        atol=1e-3,
    )
    np.testing.assert_allclose(initial_probs[order], direct.initial[direct_order], atol=1e-3)


DECLARATION_OPTIMUM = -21537.7052
"""The best of 20 runs of hmmlearn's CategoricalHMM (random starts, tol 1e-9, up to 5000
iterations) on the declaration, -21537.70519 (docs/datasets.md)."""


@pytest.fixture(scope="module")
def letters():
    """The declaration and its two-state letters HMM by EM (3 seeded restarts, tol 1e-10)."""
    data = dataset("declaration").sequences()
    hmm = hp.HMM(num_states=2, emission=hp.Categorical(27, symbols=data.symbols))
    fit = hp.fit_em(
        hmm,
        data,
        restarts=3,
        max_iter=3000,
        tol=1e-10,
        seed=0,
        emission_prior=False,
        progress=False,
    )
    return data, fit


@pytest.mark.xdist_group("datasets_letters")
def test_declaration_letters_split_vowels_from_consonants(letters):
    """Cave & Neuwirth (1980): two states separate vowels from consonants. Here one state gives
    the word break and each of a, e, i, o, u the higher probability, the other every consonant
    (y included); the states alternate (each stays with probability below 1/3)."""
    data, fit = letters
    emission = fit.posterior_mean()["B"].numpy()
    favoured = emission.argmax(axis=0)
    vowel_state = favoured[data.symbols.index("e")]
    pairs = zip(data.symbols, favoured, strict=True)
    vowel_like = {symbol for symbol, state in pairs if state == vowel_state}
    assert vowel_like == set("_aeiou")
    assert np.all(np.diag(fit.posterior_mean()["A"].numpy()) < 1 / 3)


@pytest.mark.xdist_group("datasets_letters")
def test_declaration_optimum_is_confirmed_by_hmmlearn(letters):
    """hmmlearn's CategoricalHMM (its own forward algorithm and EM) scores EM's estimate as
    hmm_pyro does (to 1e-6 nats), its EM started there gains under 1e-3 nats in 100 updates (a
    local maximum), and the value is the recorded best of 20 hmmlearn runs to 1e-3 nats."""
    data, fit = letters
    codes = data.values[0].numpy().astype(int).reshape(-1, 1)
    estimate = {name: value.numpy() for name, value in fit.posterior_mean().items()}
    ours = fit_statistics(fit).log_likelihood
    model = CategoricalHMM(
        n_components=2, n_features=27, init_params="", n_iter=100, tol=0.0, implementation="scaling"
    )
    model.startprob_, model.transmat_, model.emissionprob_ = (
        estimate["pi"],
        estimate["A"],
        estimate["B"],
    )
    assert model.score(codes) == pytest.approx(ours, abs=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # hmmlearn notes zero probabilities it cannot move
        model.fit(codes)
    assert model.score(codes) - ours < 1e-3
    assert ours == pytest.approx(DECLARATION_OPTIMUM, abs=1e-3)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"name: expected one of \('earthquakes'"):
        dataset("quakes")


def test_seattle_weather_matches_its_source_and_derivations():
    """NOAA's daily record as vega-datasets ships it: 1461 consecutive days 2012-01-01 to
    2015-12-31, 10.9 mm on 2 January 2012, 4,426.0 mm in all; the derived columns follow from
    it (rain classes from the precipitation, the season from the date)."""
    table = seattle_weather()
    dates = pd.to_datetime(table["date"])
    assert len(table) == 1461 and table["day"].tolist() == list(range(1, 1462))
    assert (dates.diff().dropna().dt.days == 1).all()
    assert (str(dates.iloc[0].date()), str(dates.iloc[-1].date())) == ("2012-01-01", "2015-12-31")
    rain = table["precipitation"].to_numpy()
    assert rain[1] == 10.9 and round(rain.sum(), 1) == 4426.0
    classes = np.where(rain == 0, "dry", np.where(rain < 5, "light", "heavy"))
    assert (table["rain"].to_numpy() == classes).all()
    length = np.where(dates.dt.is_leap_year, 366, 365)
    angle = 2 * np.pi * (dates.dt.day_of_year.to_numpy() - 1) / length
    np.testing.assert_allclose(table["season_cos"], np.cos(angle), atol=1e-6)
    np.testing.assert_allclose(table["season_sin"], np.sin(angle), atol=1e-6)


def test_seasonal_rain_mode_matches_direct_maximisation():
    """``examples/08_seasonal_rain.py``: the seasonal model's MAP (2 restarts) has the log
    likelihood of the independent direct maximisation (-1223.9147, docs/datasets.md) to 1e-4,
    the independent forward recursion scores its estimate the same to 1e-8, and the independent
    objective there is not below the independent optimum by more than 1e-6 (a mode at least as
    good). Detects a wrong time-varying kernel, prior or optimiser stop of more than 1e-4 nats."""
    entry = dataset("seattle_weather")
    data = entry.sequences()
    emission = hp.Categorical(3, symbols=data.symbols)
    hmm = hp.CovariateHMM(2, emission, transition_covariates=list(entry.covariates))
    fit = hp.fit_map(hmm, data, restarts=2, seed=0, progress=False)
    log_lik = fit_statistics(fit).log_likelihood
    assert log_lik == pytest.approx(SEASONAL_MODE.log_likelihood, abs=1e-4)
    mode = {name: value.numpy() for name, value in fit.posterior_mean().items()}
    table = entry.frame()
    seen = table["rain"].map({name: code for code, name in enumerate(data.symbols)}).to_numpy()
    steps = design(table[list(entry.covariates)].to_numpy())
    theta = pack(mode["pi"], mode["beta_A"], mode["B"])
    direct_lik, direct_objective = log_objective(theta, seen, steps, 3)
    assert direct_lik == pytest.approx(log_lik, abs=1e-6)
    assert direct_objective >= SEASONAL_MODE.log_objective - 1e-6
