"""``hmm-pyro fit --subject-column``: a multilevel fit from a CSV column naming each sequence's
subject, the shrinkage plot, diagnose, and refusals (in-process ``main([...])`` calls)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

import hmm_pyro as hp
from tests.cli.test_fit import run


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory):
    """Four sequences of three subjects (``ann`` twice, interleaved), 2 Gaussian states."""
    hmm = hp.MultilevelHMM(2, hp.Gaussian(), ["ann", "bob", "ann", "cy"])
    params = hmm.sample_prior(seed=0)
    params["mu"] = torch.tensor([-3.0, 3.0], dtype=torch.float64)
    data, _ = hp.simulate(hmm, params, [40, 30, 30, 20], seed=1)
    table = data.to_dataframe()
    table["who"] = table["sequence"].map({0: "ann", 1: "bob", 2: "ann", 3: "cy"})
    path = tmp_path_factory.mktemp("subjects") / "data.csv"
    table.to_csv(path, index=False)
    return path


def test_fit_reads_the_subjects_and_writes_the_shrinkage_plot(csv_file, tmp_path):
    out = tmp_path / "fit.nc"
    code, stdout, stderr = run(
        "fit", str(csv_file), "--states", "2", "--emission", "gaussian", "--method", "map",
        "--restarts", "1", "--steps", "60", "--subject-column", "who", "--no-progress",
        "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    assert "MultilevelHMM(num_states=2" in stdout and "subjects=3 (4 sequences)" in stdout
    assert (tmp_path / "fit_shrinkage.png").stat().st_size > 1000
    fit = hp.load(out)
    assert fit.hmm.subject_names == ("ann", "bob", "cy")
    assert fit.hmm.subject_index.tolist() == [0, 1, 0, 2]
    code, stdout, stderr = run("diagnose", str(out))
    assert code in (0, 1) and "Traceback" not in stderr, stderr
    assert "refits skipped: each subject has its own parameters" in stdout


def test_subject_options_are_checked(csv_file, tmp_path):
    table = pd.read_csv(csv_file)
    table.loc[0, "who"] = "bob"  # sequence 0 now has two subjects
    mixed = tmp_path / "mixed.csv"
    table.to_csv(mixed, index=False)
    base = ["fit", "--states", "2", "--emission", "gaussian", "--no-progress"]
    cases = [
        ([str(csv_file), "--subject-column", "who", "--method", "em"], "fitted by --method nuts"),
        ([str(csv_file), "--subject-column", "nope", "--method", "map"], "no column 'nope'"),
        ([str(mixed), "--subject-column", "who", "--method", "map"], "sequences ['0'] have"),
    ]
    for extra, message in cases:
        code, _, stderr = run(*base, *extra, "--out", str(tmp_path / "x.nc"))
        assert code != 0 and message in stderr, stderr
        assert "Traceback" not in stderr
