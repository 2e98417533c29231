"""``Covariates``: validation, standardisation (recorded), alignment with ``Sequences``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import hmm_pyro as hp
from hmm_pyro.covariates import Covariates


def two_sequences():
    return [np.array([[0.0, 10.0], [1.0, 12.0], [2.0, 11.0]]), np.array([[1.0, 9.0], [3.0, 8.0]])]


def test_standardised_by_default_with_the_record():
    cov = Covariates(two_sequences(), names=["hour", "temp"])
    stacked = np.concatenate(two_sequences())
    np.testing.assert_allclose(cov.means.numpy(), stacked.mean(0), rtol=1e-15)
    np.testing.assert_allclose(cov.sds.numpy(), stacked.std(0), rtol=1e-15)
    valid = cov.values[0, :3], cov.values[1, :2]
    np.testing.assert_allclose(
        torch.cat(valid).numpy(), (stacked - stacked.mean(0)) / stacked.std(0), rtol=1e-14
    )
    assert cov.lengths.tolist() == [3, 2] and cov.standardized
    assert (cov.values[1, 2] == 0).all() and torch.isnan(cov.raw[1, 2]).all()
    plain = Covariates(two_sequences(), standardize=False)
    assert plain.names == ("x0", "x1") and torch.equal(plain.values[0, :3], cov.raw[0, :3])


def test_values_given_on_the_original_scale_are_standardised_like_the_data():
    cov = Covariates(two_sequences(), names=["hour", "temp"])
    rows = cov.standardize_rows({"hour": [0.0, 3.0]})  # temp at its mean
    expected_hour = (np.array([0.0, 3.0]) - cov.means[0].item()) / cov.sds[0].item()
    np.testing.assert_allclose(rows[:, 0].numpy(), expected_hour, rtol=1e-14)
    assert (rows[:, 1] == 0).all()
    array_rows = cov.standardize_rows(np.array([1.0, 10.0]))
    assert array_rows.shape == (1, 2)
    with pytest.raises(ValueError, match=r"^covariates: \['wind'\] not among"):
        cov.standardize_rows({"wind": 1.0})
    with pytest.raises(ValueError, match=r"^covariates: expected \(M, 2\) values"):
        cov.standardize_rows(np.ones((2, 3)))


def test_new_covariates_take_the_reference_scale_and_selection_keeps_it():
    cov = Covariates(two_sequences(), names=["hour", "temp"])
    other = Covariates([np.array([[5.0, 1.0, 7.0]])], ["temp", "wind", "hour"], standardize=False)
    coded = other.standardize_like(cov)
    assert coded.names == ("hour", "temp") and coded.same_scale(cov)
    expected = (torch.tensor([7.0, 5.0], dtype=torch.float64) - cov.means) / cov.sds
    torch.testing.assert_close(coded.values[0, 0], expected, rtol=0, atol=1e-15)
    subset = cov.select([1])
    assert subset.lengths.tolist() == [2] and subset.same_scale(cov)
    torch.testing.assert_close(subset.values[0], cov.values[1, :2], rtol=0, atol=0)


@pytest.mark.parametrize(
    ("values", "kwargs", "error", "pattern"),
    [
        ([np.array([[1.0], [np.nan]])], {}, ValueError, r"^values: NaN in sequence 0 at step 1"),
        ([np.array([1.0, np.inf])], {}, ValueError, r"^values\[0\]: expected finite"),
        ([np.array(["a", "b"])], {}, TypeError, r"^values\[0\]: expected numeric"),
        ([np.ones((2, 2)), np.ones((2, 3))], {}, ValueError, r"^values: expected every sequence"),
        ([np.ones((3, 1))], {}, ValueError, r"^values: column\(s\) \['x0'\] are constant"),
        ([np.ones((3, 1))], {"names": ["intercept"]}, ValueError, r"^names: 'intercept' is"),
        ([np.arange(3.0)], {"names": ["a", "b"]}, ValueError, r"^names: expected 1 names"),
        (np.ones((2, 3)), {}, ValueError, r"^values: expected a list of \(T_n, P\) arrays"),
    ],
)
def test_bad_covariates_are_refused_in_one_line(values, kwargs, error, pattern):
    with pytest.raises(error, match=pattern) as caught:
        Covariates(values, **kwargs)
    assert "\n" not in str(caught.value)


def test_sequences_carry_aligned_covariates():
    cov = Covariates(two_sequences(), names=["hour", "temp"])
    data = hp.Sequences([[0, 1, 1], [2, 0]], covariates=cov)
    assert data.covariates is cov and "covariates=['hour', 'temp']" in repr(data)
    assert data.select([1]).covariates.lengths.tolist() == [2]
    assert hp.Sequences(data).covariates is cov  # a copy keeps them
    bare = data.with_covariates(None)
    assert bare.covariates is None and data.covariates is cov
    with pytest.raises(ValueError, match=r"^covariates: sequence 1 has 2 steps, the data 3"):
        hp.Sequences([[0, 1, 1], [2, 0, 1]], covariates=cov)
    with pytest.raises(ValueError, match=r"^covariates: expected 3 sequences"):
        hp.Sequences([[0], [1], [2]], covariates=cov)
    with pytest.raises(TypeError, match=r"^covariates: expected a hmm_pyro.Covariates"):
        hp.Sequences([[0, 1]], covariates=np.ones((1, 2, 1)))


def test_covariate_columns_of_a_table_round_trip(tmp_path):
    frame = pd.DataFrame(
        {
            "sequence": [0, 0, 0, 1, 1],
            "time": [0, 1, 2, 0, 1],
            "value": [0.5, 1.5, 2.5, 3.5, 4.5],
            "temp": [10.0, 12.0, 11.0, 9.0, 8.0],
            "hour": [0.0, 1.0, 2.0, 1.0, 3.0],
        }
    )
    data = hp.Sequences.from_dataframe(frame, covariates=["hour", "temp"])
    expected = Covariates(two_sequences(), names=["hour", "temp"])
    assert data.covariates.same_scale(expected)
    torch.testing.assert_close(data.covariates.values, expected.values, rtol=0, atol=0)
    table = data.to_dataframe()
    assert list(table.columns) == ["sequence", "time", "value", "hour", "temp"]
    path = tmp_path / "data.csv"
    table.to_csv(path, index=False)
    again = hp.Sequences.from_file(path, covariates=["hour", "temp"])
    assert again.covariates.same_scale(expected)
    gap = frame.drop(index=1)  # time 1 of sequence 0 missing: a gap without covariates
    with pytest.warns(hp.data.TimeGapWarning):
        with pytest.raises(ValueError, match=r"^covariates: no value of 'hour' in sequence 0 at"):
            hp.Sequences.from_dataframe(gap, covariates=["hour"])
    np.save(tmp_path / "x.npy", np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"^covariates: columns of a CSV file"):
        hp.Sequences.from_file(tmp_path / "x.npy", covariates=["hour"])
