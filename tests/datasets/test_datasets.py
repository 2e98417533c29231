"""``hmm_pyro.datasets``: the registry and the shipped files, checked against their sources."""

from __future__ import annotations

import numpy as np
import pytest

from hmm_pyro.cli import build_parser
from hmm_pyro.cli._options import load_data
from hmm_pyro.datasets import DATASETS, dataset, earthquakes


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


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"name: expected one of \('earthquakes'"):
        dataset("quakes")
