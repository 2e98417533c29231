"""Small real data sets shipped with hmm_pyro: one CSV file each, with its source.

:data:`DATASETS` is the registry: name -> :class:`Dataset`, a record of the file, what its
columns hold, how :meth:`hmm_pyro.Sequences.from_file` (or ``hmm-pyro fit``) reads it and where
the numbers come from. A new data set is its CSV file in this folder, one registry entry and,
for convenience, a loader function like :func:`earthquakes`. ``hmm-pyro datasets`` lists them
and copies one out; ``docs/datasets.md`` describes the sources.

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

__all__ = ["DATASETS", "Dataset", "dataset", "earthquakes"]

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
    """

    name: str
    file: str
    title: str
    source: str
    columns: Mapping[str, str]
    read: Mapping[str, Any] = field(default_factory=dict)
    emission: str = "categorical"

    @property
    def path(self) -> Path:
        """The CSV file."""
        return _FOLDER / self.file

    def frame(self) -> pd.DataFrame:
        """The CSV file as a table."""
        return pd.read_csv(self.path)

    def sequences(self) -> Sequences:
        """The observations, read by :meth:`hmm_pyro.Sequences.from_file` with :attr:`read`."""
        return Sequences.from_file(self.path, **self.read)

    def cli_options(self) -> list[str]:
        """The ``hmm-pyro fit`` options that read the file as :meth:`sequences` does."""
        options = []
        for key in ("sequence", "time", "value"):
            if key in self.read:
                setting = self.read[key]
                text = "none" if setting is None else str(setting)
                options += [f"--{key}-column", text]
        return [*options, "--emission", self.emission]


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
