"""``Sequences``: every constructor path, files, missing values and input validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp

import hmm_pyro as hp
from hmm_pyro import kernels
from hmm_pyro.data import TimeGapWarning

NAN = np.nan


def _rows(seqs: hp.Sequences) -> list[list[float]]:
    """Sequences as nested lists (NaN kept), for exact comparisons."""
    return [np.asarray(item).tolist() for item in seqs.to_list()]


def _same(seqs: hp.Sequences, expected: list) -> None:
    assert seqs.num_sequences == len(expected)
    for actual, wanted in zip(seqs.to_list(), expected, strict=True):
        np.testing.assert_array_equal(actual, np.asarray(wanted, dtype=np.float64))


# ---------------------------------------------------------------------- constructors
def test_ragged_list():
    seqs = hp.Sequences([[0, 1, 1], [2, 0]])
    assert seqs.values.shape == (2, 3, 1) and seqs.values.dtype == torch.float64
    assert seqs.lengths.tolist() == [3, 2] and seqs.lengths.dtype == torch.int64
    assert (seqs.num_sequences, seqs.max_length, seqs.dim, len(seqs)) == (2, 3, 1, 2)
    assert np.isnan(seqs.values[1, 2, 0].item())
    assert seqs.mask.tolist() == [[True, True, True], [True, True, False]]
    assert seqs.observed[..., 0].tolist() == seqs.mask.tolist()
    assert not seqs.complete and seqs.num_observed == 5
    _same(seqs, [[0, 1, 1], [2, 0]])
    assert repr(seqs) == "Sequences(num_sequences=2, dim=1, lengths=[3, 2], missing=0)"


def test_one_dimensional_array_is_one_sequence():
    seqs = hp.Sequences(np.arange(5.0))
    assert seqs.values.shape == (1, 5, 1) and seqs.lengths.tolist() == [5]
    assert seqs.complete
    _same(seqs, [np.arange(5.0)])
    assert hp.Sequences([0.5, 1.5, 2.5]).values.shape == (1, 3, 1)


def test_two_dimensional_array_is_univariate_sequences_and_lengths_trim():
    array = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 99.0, 99.0]])
    seqs = hp.Sequences(array, lengths=[4, 2])
    assert seqs.values.shape == (2, 4, 1) and seqs.lengths.tolist() == [4, 2]
    _same(seqs, [[1, 2, 3, 4], [5, 6]])
    assert torch.isnan(seqs.values[1, 2:]).all()  # the 99s are padding, not data
    full = hp.Sequences(array)
    assert full.lengths.tolist() == [4, 4]
    same = hp.Sequences(array, lengths=torch.tensor([4, 2]))
    assert torch.equal(same.lengths, seqs.lengths)


def test_two_dimensional_array_with_dim_is_one_multivariate_sequence():
    array = np.arange(12.0).reshape(4, 3)
    seqs = hp.Sequences(array, dim=3)
    assert seqs.values.shape == (1, 4, 3) and seqs.dim == 3
    np.testing.assert_array_equal(seqs[0], array)
    with pytest.raises(ValueError, match="dim=2"):
        hp.Sequences(array, dim=2)


def test_three_dimensional_array():
    array = np.arange(24.0).reshape(2, 4, 3)
    seqs = hp.Sequences(array, lengths=[4, 1])
    assert seqs.values.shape == (2, 4, 3) and seqs.lengths.tolist() == [4, 1]
    np.testing.assert_array_equal(seqs[0], array[0])
    np.testing.assert_array_equal(seqs[1], array[1, :1])
    assert hp.Sequences(array, dim=3).dim == 3


def test_list_of_multivariate_arrays():
    pieces = [np.arange(6.0).reshape(3, 2), np.array([[7.0, NAN]])]
    seqs = hp.Sequences(pieces)
    assert seqs.values.shape == (2, 3, 2) and seqs.lengths.tolist() == [3, 1]
    assert seqs.observed[1, 0].tolist() == [True, False]
    assert seqs.num_observed == 4
    np.testing.assert_array_equal(seqs[1], pieces[1])


def test_masked_array_entries_are_missing():
    data = np.ma.masked_array([[1, 2, 3], [4, 5, 6]], mask=[[0, 1, 0], [0, 0, 1]])
    seqs = hp.Sequences(data)
    assert seqs.lengths.tolist() == [3, 3]
    assert seqs.observed[..., 0].tolist() == [[True, False, True], [True, True, False]]
    _same(seqs, [[1, NAN, 3], [4, 5, NAN]])
    ragged = hp.Sequences([np.ma.masked_array([1.0, 2.0], mask=[1, 0]), np.array([3.0])])
    _same(ragged, [[NAN, 2], [3]])


def test_tensors():
    seqs = hp.Sequences(torch.tensor([[1, 2], [3, 4]]))
    _same(seqs, [[1, 2], [3, 4]])
    ragged = hp.Sequences([torch.tensor([1.0, 2.0, 3.0], requires_grad=True), torch.tensor([4])])
    _same(ragged, [[1, 2, 3], [4]])
    assert not ragged.values.requires_grad


def test_copy_from_sequences():
    original = hp.Sequences([[1.0, 2.0], [3.0]])
    copy = hp.Sequences(original)
    assert torch.equal(copy.lengths, original.lengths)
    assert torch.equal(copy.values.nan_to_num(-1), original.values.nan_to_num(-1))
    with pytest.raises(ValueError, match="lengths"):
        hp.Sequences(original, lengths=[2, 1])
    with pytest.raises(ValueError, match="dim"):
        hp.Sequences(original, dim=2)


def test_select_filled_and_to_dataframe():
    seqs = hp.Sequences([[1.0, NAN, 3.0], [4.0], [5.0, 6.0]])
    subset = seqs.select([2, 1])
    assert subset.max_length == 2 and subset.lengths.tolist() == [2, 1]
    _same(subset, [[5, 6], [4]])
    filled = seqs.filled(-7.0, torch.float32)
    assert filled.dtype == torch.float32 and filled[0, 1, 0].item() == -7.0
    assert filled[1, 1, 0].item() == -7.0
    frame = seqs.to_dataframe()
    assert list(frame.columns) == ["sequence", "time", "value"]
    assert frame["sequence"].tolist() == [0, 0, 0, 1, 2, 2]
    assert frame["time"].tolist() == [0, 1, 2, 0, 0, 1]
    assert repr(seqs).endswith("missing=1)")


# ---------------------------------------------------------------------- DataFrames and files
def _long_frame(rng, sequences, columns=("value",)):
    rows = []
    for ident, values in sequences.items():
        values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
        for t, row in enumerate(values):
            rows.append({"id": ident, "step": t * 10, **dict(zip(columns, row, strict=True))})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=int(rng.integers(1 << 30)))


def test_from_dataframe_with_shuffled_rows(rng):
    sequences = {"a": [0, 1, 2, 3], "b": [5, NAN], "c": [7]}
    frame = _long_frame(rng, sequences)
    seqs = hp.Sequences.from_dataframe(frame, sequence="id", time="step", value="value")
    order = list(dict.fromkeys(frame["id"]))  # documented: order of first appearance
    assert sorted(order) == ["a", "b", "c"]
    _same(seqs, [sequences[ident] for ident in order])
    # the time column, not the row order, orders the steps
    assert not frame[frame["id"] == "a"]["step"].is_monotonic_increasing


def test_from_dataframe_multivariate_and_row_order(rng):
    sequences = {1: [[0.5, 1.0], [2.0, NAN], [3.0, 4.0]], 2: [[9.0, 8.0]]}
    frame = _long_frame(rng, sequences, columns=("x", "y"))
    seqs = hp.Sequences.from_dataframe(frame, sequence="id", time="step", value=["x", "y"])
    assert seqs.dim == 2
    order = list(dict.fromkeys(frame["id"]))
    _same(seqs, [sequences[ident] for ident in order])
    # time=None keeps the (shuffled) row order within each sequence
    unordered = hp.Sequences.from_dataframe(frame, sequence="id", time=None, value=["x", "y"])
    first = order.index(1)
    expected = frame[frame["id"] == 1][["x", "y"]].to_numpy()
    np.testing.assert_array_equal(unordered[first], expected)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sequence": "seq"}, r"frame: expected columns .*missing \['seq'\]"),
        ({"time": "t"}, r"frame: .*missing \['t'\]"),
        ({"value": ["value", "other"]}, r"frame: .*missing \['other'\]"),
    ],
)
def test_from_dataframe_missing_columns(kwargs, match):
    frame = pd.DataFrame({"sequence": [0, 0], "time": [0, 1], "value": [1.0, 2.0]})
    with pytest.raises(ValueError, match=match):
        hp.Sequences.from_dataframe(frame, **kwargs)


def test_from_dataframe_bad_tables():
    with pytest.raises(TypeError, match="frame"):
        hp.Sequences.from_dataframe({"sequence": [0], "time": [0], "value": [1.0]})
    with pytest.raises(ValueError, match="frame"):
        hp.Sequences.from_dataframe(pd.DataFrame({"sequence": [], "time": [], "value": []}))
    repeated = pd.DataFrame({"sequence": [0, 0], "time": [1, 1], "value": [1.0, 2.0]})
    with pytest.raises(ValueError, match="frame: column 'time' repeats"):
        hp.Sequences.from_dataframe(repeated)
    mixed = pd.DataFrame({"sequence": [0, 0], "time": [0, 1], "value": ["a", 1]})
    with pytest.raises(TypeError, match="frame"):  # text and numbers: neither symbols nor numbers
        hp.Sequences.from_dataframe(mixed)
    with pytest.raises(TypeError, match="from_dataframe"):
        hp.Sequences(repeated)


def test_from_dataframe_rejects_missing_sequence_ids():
    """A row without a sequence id must not be dropped silently."""
    frame = pd.DataFrame(
        {"sequence": [0.0, 0.0, NAN, 1.0], "time": [0, 1, 2, 0], "value": [1.0, 2.0, 3.0, 4.0]}
    )
    with pytest.raises(ValueError, match="frame: column 'sequence'"):
        hp.Sequences.from_dataframe(frame)


def test_csv_round_trip(tmp_path, rng):
    seqs = hp.Sequences([[0.5, NAN, 2.0, 3.0], [4.0, 5.0], [6.0]])
    path = tmp_path / "data.csv"
    frame = seqs.to_dataframe().sample(frac=1.0, random_state=3)
    frame.to_csv(path, index=False)
    loaded = hp.Sequences.from_file(path)
    order = list(dict.fromkeys(frame["sequence"]))  # order of first appearance in the file
    assert sorted(order) == [0, 1, 2]
    _same(loaded, [seqs[i] for i in order])
    multi = hp.Sequences([np.array([[1.0, 2.0], [NAN, 4.0]])])
    multi.to_dataframe().to_csv(tmp_path / "multi.csv", index=False)
    loaded = hp.Sequences.from_file(str(tmp_path / "multi.csv"), value=["value_0", "value_1"])
    _same(loaded, [[[1.0, 2.0], [NAN, 4.0]]])


def test_npy_round_trip(tmp_path):
    array = np.array([[1.0, 2.0, NAN], [4.0, 5.0, 6.0]])
    np.save(tmp_path / "two.npy", array)
    _same(hp.Sequences.from_file(tmp_path / "two.npy"), [[1, 2, NAN], [4, 5, 6]])
    cube = np.arange(12.0).reshape(2, 3, 2)
    np.save(tmp_path / "cube.npy", cube)
    loaded = hp.Sequences.from_file(tmp_path / "cube.npy")
    assert loaded.dim == 2
    _same(loaded, list(cube))


def test_npz_round_trips(tmp_path):
    values = np.array([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    np.savez(tmp_path / "padded.npz", values=values, lengths=np.array([3, 1]))
    _same(hp.Sequences.from_file(tmp_path / "padded.npz"), [[1, 2, 3], [4]])
    np.savez(tmp_path / "values.npz", values=values)
    _same(hp.Sequences.from_file(tmp_path / "values.npz"), [[1, 2, 3], [4, 0, 0]])
    # one array per sequence; 12 of them so that arr_10 must come after arr_9, not after arr_1
    pieces = [np.arange(float(n + 1)) for n in range(12)]
    np.savez(tmp_path / "pieces.npz", *pieces)
    loaded = hp.Sequences.from_file(tmp_path / "pieces.npz")
    assert loaded.lengths.tolist() == list(range(1, 13))
    _same(loaded, pieces)


def test_from_file_bad_paths(tmp_path):
    with pytest.raises(ValueError, match="path: expected an existing file"):
        hp.Sequences.from_file(tmp_path / "absent.csv")
    (tmp_path / "data.txt").write_text("1 2 3\n")
    with pytest.raises(ValueError, match=r"path: expected a \.csv, \.npy or \.npz"):
        hp.Sequences.from_file(tmp_path / "data.txt")
    with pytest.raises(TypeError, match=r"data: .*from_file"):
        hp.Sequences(str(tmp_path / "data.txt"))


@pytest.mark.parametrize("suffix", [".csv", ".npz"])
def test_to_file_round_trips_ragged_sequences_with_missing_values(tmp_path, suffix):
    seqs = hp.Sequences([[0.5, NAN, 2.0, 3.0], [4.0, 5.0], [6.0]])
    path = seqs.to_file(tmp_path / f"sub/data{suffix}")
    assert path == tmp_path / f"sub/data{suffix}"
    _same(hp.Sequences.from_file(path), [[0.5, NAN, 2.0, 3.0], [4.0, 5.0], [6.0]])
    multi = hp.Sequences([np.array([[1.0, 2.0], [NAN, 4.0]]), np.array([[5.0, 6.0]])])
    loaded = hp.Sequences.from_file(
        multi.to_file(tmp_path / f"multi{suffix}"), value=["value_0", "value_1"]
    )
    assert loaded.dim == 2
    _same(loaded, [[[1.0, 2.0], [NAN, 4.0]], [[5.0, 6.0]]])


def test_to_file_npy_needs_equal_lengths(tmp_path):
    seqs = hp.Sequences([[1.0, 2.0, NAN], [4.0, 5.0, 6.0]])
    _same(hp.Sequences.from_file(seqs.to_file(tmp_path / "two.npy")), [[1, 2, NAN], [4, 5, 6]])
    assert np.load(tmp_path / "two.npy").shape == (2, 3)
    cube = hp.Sequences(np.arange(12.0).reshape(2, 3, 2))
    assert hp.Sequences.from_file(cube.to_file(tmp_path / "cube.npy")).dim == 2
    with pytest.raises(ValueError, match=r"path: \.npy needs sequences of equal length"):
        hp.Sequences([[1.0, 2.0], [3.0]]).to_file(tmp_path / "ragged.npy")
    assert not (tmp_path / "ragged.npy").exists()


def test_to_file_integer_columns(tmp_path):
    seqs = hp.Sequences([[0, 3, NAN], [2]])
    path = seqs.to_file(tmp_path / "symbols.csv", integer=True)
    assert path.read_text().splitlines() == [
        "sequence,time,value",
        "0,0,0",
        "0,1,3",
        "0,2,",
        "1,0,2",
    ]
    _same(hp.Sequences.from_file(path), [[0, 3, NAN], [2]])
    assert seqs.to_file(tmp_path / "floats.csv").read_text().splitlines()[1] == "0,0,0.0"


def test_to_file_bad_arguments(tmp_path):
    seqs = hp.Sequences([[0.5, 1.0]])
    with pytest.raises(ValueError, match=r"path: expected a \.csv, \.npz or \.npy file name"):
        seqs.to_file(tmp_path / "data.txt")
    with pytest.raises(ValueError, match=r"integer: expected whole numbers .* got 0\.5"):
        seqs.to_file(tmp_path / "data.csv", integer=True)
    with pytest.raises(TypeError, match="integer: expected True or False"):
        seqs.to_file(tmp_path / "data.csv", integer=1)
    assert not list(tmp_path.iterdir())


def test_from_file_refuses_pickles_damage_and_oversized_data_naming_the_file(tmp_path):
    from unittest import mock

    from tests.file_mutations import TRAP_FILE, Trap

    TRAP_FILE.unlink(missing_ok=True)
    np.save(tmp_path / "objects.npy", np.array([Trap()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"path: cannot read '.*objects\.npy': it holds Python"):
        hp.Sequences.from_file(tmp_path / "objects.npy")
    assert not TRAP_FILE.exists()
    np.save(tmp_path / "cut.npy", np.zeros((3, 4)))
    (tmp_path / "cut.npy").write_bytes((tmp_path / "cut.npy").read_bytes()[:-9])
    with pytest.raises(ValueError, match=r"cut\.npy'.*\(3, 4\).*96 bytes.*holds 87 bytes"):
        hp.Sequences.from_file(tmp_path / "cut.npy")
    (tmp_path / "text.csv").write_text("sequence,time,value\n0,0,a\n")
    with pytest.raises(ValueError, match=r"text\.csv'.*one text value, 'a'; named symbols need"):
        hp.Sequences.from_file(tmp_path / "text.csv")
    # 1,001 sequences whose longest has 2,000 steps: 1,001 x 2,000 padded values.
    rows = ["sequence,time,value"] + [f"{n},0,1" for n in range(1000)]
    rows += [f"1000,{t},1" for t in range(2000)]
    (tmp_path / "wide.csv").write_text("\n".join(rows))
    with (
        mock.patch("hmm_pyro._archive.memory_available", return_value=2**24),
        pytest.raises(ValueError, match=r"wide\.csv'.*would need 30\.5 MiB of memory"),
    ):
        hp.Sequences.from_file(tmp_path / "wide.csv")
    assert hp.Sequences.from_file(tmp_path / "wide.csv").max_length == 2000


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("data", "kwargs", "error", "match"),
    [
        ([], {}, ValueError, r"data: expected non-empty"),
        ([[1, 2], []], {}, ValueError, r"data: expected non-empty sequences, sequence 1"),
        ([[], []], {}, ValueError, r"data: expected non-empty"),
        (np.zeros((2, 0)), {}, ValueError, r"data: expected non-empty"),
        (3.0, {}, ValueError, r"data: expected a sequence"),
        (np.zeros((1, 2, 2, 2)), {}, ValueError, r"data: expected 1 to 3 dimensions"),
        ([1.0, np.inf], {}, ValueError, r"data: .*inf"),
        ([[1.0, 2.0], [-np.inf]], {}, ValueError, r"data\[1\]: .*inf"),
        (["a", "b"], {}, TypeError, r"data(\[0\])?: expected numeric"),
        (np.array(["a", "b"]), {}, TypeError, r"data: expected numeric"),
        (np.ma.masked_array(["a", "b"]), {}, TypeError, r"data: expected numeric"),
        ([[1.0], ["x", "y"]], {}, TypeError, r"data\[1\]: expected numeric"),
        ([np.zeros((2, 2)), np.zeros((3, 3))], {}, ValueError, r"data: .*same dimension"),
        ([np.zeros(3), np.zeros(2)], {"dim": 2}, ValueError, r"data\[0\]: expected shape"),
        ([np.zeros((3, 2, 2)), np.zeros((2, 2))], {}, ValueError, r"data\[0\]: expected shape"),
        (np.zeros((2, 3)), {"lengths": [3]}, ValueError, r"lengths: expected 2 integers"),
        (np.zeros((2, 3)), {"lengths": [3.0, 1.0]}, ValueError, r"lengths: expected 2 integers"),
        (np.zeros((2, 3)), {"lengths": [3, 0]}, ValueError, r"lengths: expected values in"),
        (np.zeros((2, 3)), {"lengths": [4, 1]}, ValueError, r"lengths: expected values in"),
        ([[1, 2], [3]], {"lengths": [2, 1]}, ValueError, r"lengths: expected None"),
        (np.zeros((1, 3, 2)), {"dim": 3}, ValueError, r"data: expected dimension dim=3"),
        (np.zeros(3), {"dim": 0}, ValueError, r"dim"),
        (np.zeros(3), {"dim": 1.0}, TypeError, r"dim"),
    ],
)
def test_bad_input_names_the_argument(data, kwargs, error, match):
    with pytest.raises(error, match=match):
        hp.Sequences(data, **kwargs)


@pytest.mark.parametrize(
    ("family", "data", "match"),
    [
        ("categorical", [[0, 1, 3]], r"data: expected symbols in \[0, 2\]"),
        ("categorical", [[0, -1]], r"data: expected symbols"),
        ("categorical", [[0, 1.5]], r"data: expected integer symbols"),
        ("categorical", np.zeros((1, 3, 2)), r"data: expected observations of dimension 1"),
        ("poisson", [[0, -2]], r"data: expected non-negative counts"),
        ("poisson", [[0, 2.5]], r"data: expected integer counts"),
        ("poisson", np.zeros((1, 3, 2)), r"data: expected observations of dimension 1"),
        ("poisson2", [[0, 1]], r"data: expected observations of dimension 2"),
        ("gaussian", np.zeros((1, 3, 2)), r"data: expected observations of dimension 1"),
        ("gaussian2", np.zeros((1, 3, 3)), r"data: expected observations of dimension 2"),
    ],
)
def test_model_rejects_data_the_family_cannot_produce(make_hmm, family, data, match):
    hmm, params = make_hmm(family)
    with pytest.raises(ValueError, match=match):
        hmm.log_likelihood(params, data)
    with pytest.raises(ValueError, match=match):
        hmm.log_likelihood(params, hp.Sequences(data))


# ---------------------------------------------------------------------- missing values
@pytest.mark.parametrize("step", [0, 2, 4])
def test_missing_categorical_symbol_is_summed_out(make_hmm, step):
    hmm, params = make_hmm("categorical", num_states=3)
    base = [0.0, 2.0, 1.0, 1.0, 0.0]
    missing = list(base)
    missing[step] = NAN
    completions = []
    for symbol in range(3):
        filled = list(base)
        filled[step] = float(symbol)
        completions.append(filled)
    # the other sequence in the batch must not be affected by the missing value
    data = hp.Sequences([missing, [1.0, 2.0]])
    loglik = hmm.log_likelihood(params, data)
    full = hmm.log_likelihood(params, hp.Sequences(completions)).numpy()
    assert abs(loglik[0].item() - logsumexp(full)) < 1e-9
    alone = hmm.log_likelihood(params, [[1.0, 2.0]]).item()
    assert abs(loglik[1].item() - alone) < 1e-12


@pytest.mark.parametrize("family", ["gaussian", "gaussian2", "poisson2"])
def test_missing_step_equals_a_zero_log_likelihood_row(make_hmm, rng, family):
    hmm, params = make_hmm(family, num_states=3)
    width = hmm.emission.dim
    values = rng.poisson(3.0, size=(6, width)).astype(np.float64)
    holed = values.copy()
    holed[3] = NAN
    loglik = hmm.log_likelihood(params, [holed]).item()
    log_pi, log_A, table, _ = hmm.kernel_inputs(params, hp.Sequences([values]))
    table = table.clone()
    table[0, 3] = 0.0
    expected = kernels.log_likelihood(log_pi, log_A, table).item()
    assert abs(loglik - expected) < 1e-9
    # and the missing step is not simply dropped from the chain: transitions still apply
    dropped = hmm.log_likelihood(params, [np.delete(values, 3, axis=0)]).item()
    assert abs(loglik - dropped) > 1e-6


def test_partially_missing_multivariate_step_uses_the_observed_coordinate(make_hmm):
    hmm, params = make_hmm("gaussian2", num_states=2)
    values = np.array([[0.3, -1.0], [1.5, NAN], [NAN, 2.0], [0.0, 0.5]])
    mu, sigma = params["mu"].numpy(), params["sigma"].numpy()
    table = np.zeros((4, 2))
    for t in range(4):
        for k in range(2):
            for d in range(2):
                if not np.isnan(values[t, d]):
                    table[t, k] += stats.norm.logpdf(values[t, d], mu[k, d], sigma[k, d])
    expected = kernels.log_likelihood(
        params["pi"].log(), params["A"].log(), torch.as_tensor(table)
    ).item()
    assert abs(hmm.log_likelihood(params, [values]).item() - expected) < 1e-9


def test_missing_poisson_count_matches_a_truncated_sum(make_hmm):
    hmm, params = make_hmm("poisson", num_states=2)
    base = np.array([2.0, 0.0, 5.0, 1.0])
    holed = base.copy()
    holed[2] = NAN
    # truncate where the largest rate leaves less than 1e-15 of its mass beyond the grid
    top = int(stats.poisson.isf(1e-15, params["rate"].max().item())) + 1
    assert stats.poisson.sf(top, params["rate"].max().item()) < 1e-15
    completions = np.tile(base, (top + 1, 1))
    completions[:, 2] = np.arange(top + 1)
    full = hmm.log_likelihood(params, completions).numpy()
    assert full.shape == (top + 1,)
    assert abs(hmm.log_likelihood(params, [holed]).item() - logsumexp(full)) < 1e-9


@pytest.mark.parametrize("family", ["categorical", "gaussian", "poisson"])
def test_all_missing_sequence_has_log_likelihood_zero(make_hmm, family):
    hmm, params = make_hmm(family, num_states=3)
    loglik = hmm.log_likelihood(params, [[NAN, NAN, NAN], [NAN]])
    torch.testing.assert_close(loglik, torch.zeros(2, dtype=torch.float64), rtol=0, atol=1e-12)
    marginals = hmm.posterior_marginals(params, [[NAN, NAN, NAN]])
    # with no data the smoothed marginals are the prior marginals pi A^t
    prior = params["pi"].clone()
    for t in range(3):
        torch.testing.assert_close(marginals[0, t], prior, rtol=0, atol=1e-12)
        prior = prior @ params["A"]


# ------------------------------------------------------------------ long tables: ids, gaps, text
def test_one_sequence_without_a_sequence_column():
    frame = pd.DataFrame({"time": [2, 0, 1], "value": [3.0, 1.0, 2.0]})
    seqs = hp.Sequences.from_dataframe(frame, sequence=None)
    _same(seqs, [[1.0, 2.0, 3.0]])


def test_skipped_times_become_missing_steps_with_a_warning():
    """Times 0, 5, 9 (step 1): steps 1-4 and 6-8 are missing, and the warning counts them."""
    frame = pd.DataFrame({"sequence": [0, 0, 0, 1], "time": [9, 0, 5, 3], "value": [3, 1, 2, 7]})
    with pytest.warns(TimeGapWarning, match=r"2 gap\(s\), 7 skipped step\(s\) of 1") as caught:
        seqs = hp.Sequences.from_dataframe(frame)
    assert len(caught) == 1
    _same(seqs, [[1, NAN, NAN, NAN, NAN, 2, NAN, NAN, NAN, 3], [7]])
    with pytest.raises(ValueError, match=r"frame: column 'time' skips steps \(2 gap\(s\), e\.g\."):
        hp.Sequences.from_dataframe(frame, gaps="error")
    _same(hp.Sequences.from_dataframe(frame, gaps="ignore"), [[1, 2, 3], [7]])


def test_the_time_step_is_the_common_divisor_of_the_differences():
    """Times every 10 (and 2000, 2010, 2030) have step 10: only 2020 is missing."""
    regular = pd.DataFrame({"time": [0, 10, 20], "value": [1.0, 2.0, 3.0]})
    _same(hp.Sequences.from_dataframe(regular, sequence=None), [[1.0, 2.0, 3.0]])
    holed = pd.DataFrame({"time": [2000, 2010, 2030], "value": [1.0, 2.0, 3.0]})
    with pytest.warns(TimeGapWarning, match=r"1 skipped step\(s\) of 10 \(first: from 2010 to"):
        _same(hp.Sequences.from_dataframe(holed, sequence=None), [[1.0, 2.0, NAN, 3.0]])


@pytest.mark.parametrize("times", [[0.0, 0.5, 1.0], ["a", "b", "c"], [0.0, NAN, 2.0]])
def test_gaps_need_whole_number_times(times):
    frame = pd.DataFrame({"time": times, "value": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match=r"column 'time' must hold whole numbers.*gaps='ignore'"):
        hp.Sequences.from_dataframe(frame, sequence=None)
    if not any(isinstance(item, float) and np.isnan(item) for item in times):
        assert hp.Sequences.from_dataframe(frame, sequence=None, gaps="ignore").max_length == 3


def test_a_huge_gap_is_refused_before_allocating():
    frame = pd.DataFrame({"time": [0, 1, 10**15], "value": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match=r"frame: would need .* of memory"):
        hp.Sequences.from_dataframe(frame, sequence=None)


def test_gap_steps_are_marginalised_like_brute_force(make_hmm):
    """The likelihood of counts at times 0, 1, 3 sums the hidden state at time 2 with no
    emission term: brute force over all 2**4 paths, to 1e-12."""
    hmm, params = make_hmm("poisson", num_states=2)
    frame = pd.DataFrame({"time": [0, 1, 3], "value": [2.0, 5.0, 1.0]})
    with pytest.warns(TimeGapWarning):
        seqs = hp.Sequences.from_dataframe(frame, sequence=None)
    pi, A, rate = (params[name].numpy() for name in ("pi", "A", "rate"))
    observed = {0: 2, 1: 5, 3: 1}
    total = 0.0
    for path in np.ndindex(2, 2, 2, 2):
        weight = pi[path[0]] * np.prod([A[path[t - 1], path[t]] for t in range(1, 4)])
        for t, count in observed.items():
            weight *= stats.poisson.pmf(count, rate[path[t]].item())
        total += weight
    assert abs(hmm.log_likelihood(params, seqs).item() - np.log(total)) < 1e-12


def test_text_values_are_named_symbols_in_sorted_order(tmp_path):
    frame = pd.DataFrame({"sequence": [0, 0, 0, 1], "time": [0, 1, 2, 0], "value": list("bab ")})
    frame.loc[2, "value"] = None  # an empty cell: missing
    seqs = hp.Sequences.from_dataframe(frame)
    assert seqs.symbols == (" ", "a", "b")
    _same(seqs, [[2, 1, NAN], [0]])
    assert seqs.select([1]).symbols == (" ", "a", "b")
    assert hp.Sequences(seqs).symbols == (" ", "a", "b")
    assert repr(seqs).endswith("symbols=[' ', 'a', 'b'])")
    # a given alphabet fixes the codes (new data coded as a fit's symbols); digits stay text
    alphabet = ["b", "a", " ", "0"]
    _same(hp.Sequences.from_dataframe(frame, symbols=alphabet), [[0, 1, NAN], [2]])
    path = tmp_path / "digits.csv"
    pd.DataFrame({"sequence": [0, 0], "time": [0, 1], "value": [0, 0]}).to_csv(path, index=False)
    assert hp.Sequences.from_file(path, symbols=alphabet).values[0, :, 0].tolist() == [3.0, 3.0]


@pytest.mark.parametrize(
    ("frame", "kwargs", "error", "match"),
    [
        ({"value": ["a", "b", "z"]}, {"symbols": ["a", "b"]}, ValueError, r"\['z'\], not among"),
        ({"value": ["a", "a"]}, {}, ValueError, "one text value, 'a'"),
        ({"value": [1.0, 2.0]}, {"symbols": ["a", "b"]}, ValueError, "do not hold text"),
        ({"value": ["a", "b"]}, {"symbols": ["a", "a"]}, ValueError, "distinct"),
        ({"value": ["a", "b"]}, {"symbols": "ab"}, TypeError, "list of symbol names"),
        ({"value": ["a", "b"], "other": ["c", "d"]}, {"value": ["value", "other"]}, ValueError,
         "single value column"),
    ],
)  # fmt: skip
def test_bad_text_values_name_the_problem(frame, kwargs, error, match):
    table = pd.DataFrame(frame).assign(time=lambda f: np.arange(len(f)))
    with pytest.raises(error, match=match):
        hp.Sequences.from_dataframe(table, sequence=None, **kwargs)


def test_symbols_argument_checks_the_codes():
    assert hp.Sequences([[1, 0, NAN]], symbols=["x", "y"]).symbols == ("x", "y")
    with pytest.raises(ValueError, match=r"symbols: expected codes 0 \.\. 1 of the 2 names, got 2"):
        hp.Sequences([[1, 2]], symbols=["x", "y"])
    with pytest.raises(ValueError, match="symbols: named symbols are one value per step"):
        hp.Sequences(np.zeros((1, 3, 2)), symbols=["x", "y"])


def test_a_one_column_file_keeps_every_line_as_a_step(tmp_path):
    """pandas skips blank lines; in a file of one column they are steps: a space, or missing."""
    path = tmp_path / "letters.csv"
    path.write_text("value\na\n \n\nb\n")
    seqs = hp.Sequences.from_file(path, sequence=None, time=None)
    assert seqs.symbols == (" ", "a", "b")
    _same(seqs, [[1, 0, NAN, 2]])
