"""Small real data sets shipped with hmm_pyro: one CSV file each, with its source.

:data:`DATASETS` is the registry: name -> :class:`Dataset`, a record of the file, what its
columns hold, how :meth:`hmm_pyro.Sequences.from_file` (or ``hmm-pyro fit``) reads it and where
the numbers come from. A new data set is its CSV file in this folder, one registry entry and,
for convenience, a loader function like :func:`earthquakes`. The data sets: :func:`earthquakes`
(yearly counts, Poisson), :func:`fetal_lamb` (counts per 5 seconds, Poisson),
:func:`old_faithful` (a geyser's waiting times, Gaussian), :func:`declaration` (the
letters of a text, categorical) and :func:`seattle_weather` (daily rain with a seasonal
covariate, categorical, for :class:`~hmm_pyro.CovariateHMM`). ``hmm-pyro datasets`` lists
them and copies one out; ``docs/datasets.md`` describes the sources and the numbers each
reproduces.

Layer rule: ``datasets`` imports ``data`` (and the private utilities); the layers above it may
import it, nothing below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hmm_pyro._validation import check_choice
from hmm_pyro.data import Sequences

__all__ = [
    "DATASETS",
    "Dataset",
    "dataset",
    "declaration",
    "earthquakes",
    "fetal_lamb",
    "old_faithful",
    "seattle_weather",
]

_FOLDER = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Dataset:
    """A data set shipped with hmm_pyro.

    Attributes
    ----------
    name : str
        Registry key.
    file : str
        CSV file name in this package.
    title : str
        One line saying what the data are.
    source : str
        Where the numbers come from (the publication that analyses them).
    columns : dict of str to str
        Each column and what it holds.
    read : dict
        Options of :meth:`hmm_pyro.Sequences.from_file` that read the file (``sequence``,
        ``time``, ``value``).
    emission : str
        The emission family the data call for (``--emission``).
    covariates : tuple of str
        Columns meant as transition covariates (``--transition-covariates``), if any.
    """

    name: str
    file: str
    title: str
    source: str
    columns: Mapping[str, str]
    read: Mapping[str, Any] = field(default_factory=dict)
    emission: str = "categorical"
    covariates: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        """The CSV file."""
        return _FOLDER / self.file

    def frame(self) -> pd.DataFrame:
        """The CSV file as a table."""
        return pd.read_csv(self.path)

    def sequences(self) -> Sequences:
        """The observations, read by :meth:`hmm_pyro.Sequences.from_file` with :attr:`read`.

        :attr:`covariates`, when there are any, are attached (standardised).
        """
        covariates = list(self.covariates) if self.covariates else None
        return Sequences.from_file(self.path, **self.read, covariates=covariates)

    def cli_options(self) -> list[str]:
        """The ``hmm-pyro fit`` options that read the file as :meth:`sequences` does."""
        options = []
        for key in ("sequence", "time", "value"):
            if key in self.read:
                setting = self.read[key]
                text = "none" if setting is None else str(setting)
                options += [f"--{key}-column", text]
        options += ["--emission", self.emission]
        if self.covariates:
            options += ["--transition-covariates", ",".join(self.covariates)]
        return options


DATASETS: dict[str, Dataset] = {
    "earthquakes": Dataset(
        name="earthquakes",
        file="earthquakes.csv",
        title="Annual counts of major earthquakes (magnitude 7 or more) worldwide, 1900-2006",
        source="Zucchini, W. and MacDonald, I. L. (2009), Hidden Markov Models for Time Series: "
        "An Introduction Using R, Chapman & Hall/CRC, Table 1.1 (from the U.S. Geological "
        "Survey's earthquake lists)",
        columns={"year": "calendar year, 1900 to 2006", "count": "earthquakes of magnitude >= 7"},
        read={"sequence": None, "time": "year", "value": "count"},
        emission="poisson",
    ),
    "fetal_lamb": Dataset(
        name="fetal_lamb",
        file="fetal_lamb.csv",
        title="Movements of a fetal lamb counted in 240 consecutive 5-second intervals",
        source="Leroux, B. G. and Puterman, M. L. (1992), Maximum-penalized-likelihood "
        "estimation for independent and Markov-dependent mixture models, Biometrics 48, "
        "545-558 (the series as distributed with the R packages label.switching and BoomMix)",
        columns={"interval": "5-second interval, 1 to 240", "count": "movements observed"},
        read={"sequence": None, "time": "interval", "value": "count"},
        emission="poisson",
    ),
    "old_faithful": Dataset(
        name="old_faithful",
        file="old_faithful.csv",
        title="Old Faithful geyser: 299 successive eruptions, 1 to 15 August 1985",
        source="Azzalini, A. and Bowman, A. W. (1990), A look at some data on the Old Faithful "
        "geyser, Applied Statistics 39, 357-365 (the series 'geyser' of the R packages sm "
        "and MASS)",
        columns={
            "eruption": "eruption number, 1 to 299, in time order",
            "waiting": "minutes from the start of the previous eruption to the start of this one",
            "duration": "minutes this eruption lasted (some night-time durations were recorded "
            "only as short, medium or long and coded 2, 3 or 4)",
        },
        read={"sequence": None, "time": "eruption", "value": "waiting"},
        emission="gaussian",
    ),
    "declaration": Dataset(
        name="declaration",
        file="declaration.csv",
        title="The United States Declaration of Independence (1776): 7856 letters and word breaks",
        source="The National Archives' transcription of the Declaration of Independence (public "
        "domain), from 'When in the Course' to 'our sacred Honor', lower-cased, with '_' for "
        "each break between words; the letters model of Cave, R. L. and Neuwirth, L. P. (1980), "
        "Hidden Markov models for English, in J. D. Ferguson (ed.), Hidden Markov Models for "
        "Speech, IDA-CRD, Princeton",
        columns={"letter": "a to z, or '_' for a break between words (one row per symbol)"},
        read={"sequence": None, "time": None, "value": "letter"},
        emission="categorical",
    ),
    "seattle_weather": Dataset(
        name="seattle_weather",
        file="seattle_weather.csv",
        title="Daily weather at Seattle, 2012-2015: rain in three classes, with the season",
        source="NOAA National Centers for Environmental Information, Climate Data Online, "
        "daily observations for Seattle, Washington (public domain), as distributed in the "
        "vega-datasets collection (seattle-weather.csv); the columns rain, season_cos and "
        "season_sin are derived here (docs/datasets.md)",
        columns={
            "day": "day number, 1 (2012-01-01) to 1461 (2015-12-31), no gaps",
            "date": "calendar date, YYYY-MM-DD",
            "precipitation": "precipitation that day (mm)",
            "temp_max": "highest temperature (degrees C)",
            "temp_min": "lowest temperature (degrees C)",
            "wind": "mean wind speed (m/s)",
            "weather": "the day's weather label of the source (sun, fog, drizzle, rain, snow)",
            "rain": "precipitation in three classes: dry (0 mm), light (under 5 mm), heavy",
            "season_cos": "cos(2 pi (day of year - 1) / days in the year)",
            "season_sin": "sin(2 pi (day of year - 1) / days in the year)",
        },
        read={"sequence": None, "time": "day", "value": "rain"},
        emission="categorical",
        covariates=("season_cos", "season_sin"),
    ),
}
"""The registry of shipped data sets: name -> :class:`Dataset`."""


def dataset(name: str) -> Dataset:
    """The data set called ``name`` (a key of :data:`DATASETS`).

    Raises
    ------
    ValueError
        For an unknown name, listing the known ones.
    """
    check_choice("name", name, tuple(DATASETS))
    return DATASETS[name]


def earthquakes() -> pd.DataFrame:
    """Annual counts of major earthquakes worldwide, 1900-2006 (107 years).

    The series of Zucchini & MacDonald (2009, Table 1.1), whose two-state Poisson HMM has the
    maximum log likelihoods -341.8787 (initial distribution estimated) and -342.3183
    (stationary initial distribution); see ``docs/datasets.md``.

    Returns
    -------
    pandas.DataFrame
        Columns ``year`` and ``count`` (integers), one row per year.

    Examples
    --------
    >>> table = earthquakes()
    >>> len(table), int(table["count"].sum())
    (107, 2072)
    """
    return DATASETS["earthquakes"].frame()


def fetal_lamb() -> pd.DataFrame:
    """Movements of a fetal lamb in 240 consecutive 5-second intervals.

    The series of Leroux & Puterman (1992): 86 movements, 182 intervals without one, at most
    7 in one interval; its two-state Poisson HMM separates a quiet and an active state (see
    ``docs/datasets.md`` for its maximum likelihood).

    Returns
    -------
    pandas.DataFrame
        Columns ``interval`` and ``count`` (integers), one row per interval.

    Examples
    --------
    >>> table = fetal_lamb()
    >>> len(table), int(table["count"].sum())
    (240, 86)
    """
    return DATASETS["fetal_lamb"].frame()


def old_faithful() -> pd.DataFrame:
    """Waiting times and durations of 299 successive eruptions of Old Faithful (August 1985).

    The continuous record of Azzalini & Bowman (1990). Waiting times fall into a short (about
    an hour) and a long (about 80 minutes) group, and no two short waits follow each other:
    a two-state Gaussian HMM estimates the probability of short after short as 0 (see
    ``docs/datasets.md``).

    Returns
    -------
    pandas.DataFrame
        Columns ``eruption`` (1 to 299), ``waiting`` (whole minutes) and ``duration``
        (minutes), one row per eruption in time order.

    Examples
    --------
    >>> table = old_faithful()
    >>> len(table), int(table["waiting"].sum())
    (299, 21622)
    """
    return DATASETS["old_faithful"].frame()


def declaration() -> pd.DataFrame:
    """The Declaration of Independence as a sequence of 7856 letters and word breaks.

    Lower-case ``a``-``z`` and ``_`` (a break between words), the 27 symbols of the letters
    model of Cave & Neuwirth (1980), whose two-state HMM separates vowels from consonants
    (see ``docs/datasets.md``).

    Returns
    -------
    pandas.DataFrame
        Column ``letter`` (one-character strings), one row per symbol.

    Examples
    --------
    >>> text = "".join(declaration()["letter"])
    >>> len(text), text[:26]
    (7856, 'when_in_the_course_of_huma')
    """
    return DATASETS["declaration"].frame()


def seattle_weather() -> pd.DataFrame:
    """Daily weather at Seattle from 2012 to 2015 (1461 days), with rain classes and the season.

    NOAA's daily observations (precipitation, temperatures, wind) with three derived columns:
    ``rain`` (``dry`` on days without precipitation, ``light`` under 5 mm, ``heavy`` from 5 mm)
    and ``season_cos`` / ``season_sin``, the day of the year on the unit circle, the covariates
    of the seasonal rain example (``examples/08_seasonal_rain.py``; ``docs/datasets.md``).

    Returns
    -------
    pandas.DataFrame
        One row per day in date order; columns as :data:`DATASETS` lists them.

    Examples
    --------
    >>> table = seattle_weather()
    >>> len(table), table["rain"].value_counts().to_dict()
    (1461, {'dry': 838, 'light': 360, 'heavy': 263})
    """
    return DATASETS["seattle_weather"].frame()
