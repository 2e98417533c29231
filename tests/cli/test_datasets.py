"""``hmm-pyro datasets``: list, describe and copy the shipped data sets."""

from __future__ import annotations

from hmm_pyro.cli import main
from hmm_pyro.datasets import DATASETS, dataset


def test_list_describe_and_copy(tmp_path, capsys):
    assert main(["datasets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = [line.split(maxsplit=1) for line in lines[: len(DATASETS)]]
    assert listed == [[name, entry.title] for name, entry in DATASETS.items()]
    width = max(len(name) for name in DATASETS)  # names padded to the longest, then 2 spaces
    assert lines[0].startswith("earthquakes".ljust(width + 2) + "Annual counts of major")
    out = tmp_path / "copy" / "quakes.csv"
    assert main(["datasets", "earthquakes", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.read_bytes() == dataset("earthquakes").path.read_bytes()
    assert "source: Zucchini, W. and MacDonald, I. L. (2009)" in printed
    assert f"fit it: hmm-pyro fit {out} --sequence-column none --time-column year" in printed


def test_bad_names_exit_2_with_one_line(capsys):
    assert main(["datasets", "quakes"]) == 2
    assert main(["datasets", "--out", "x.csv"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "name: expected one of" in lines[0] and "--out" in lines[1]
