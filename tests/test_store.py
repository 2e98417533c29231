"""Chunked NetCDF sequence stores: round trips, lazy reads, atomic writes, and _io helpers."""

import numpy as np
import pytest
import torch
import xarray as xr

import hmm_pyro as hp
from hmm_pyro._io import atomic_path, atomic_write
from hmm_pyro.simulate import REFERENCE_PARAMS, simulate_store
from hmm_pyro.store import MemoryStore, as_store, is_store, open_store, write_store


def _same(first: hp.Sequences, second: hp.Sequences) -> bool:
    return torch.equal(first.lengths, second.lengths) and torch.equal(
        first.values.nan_to_num(-7.0), second.values.nan_to_num(-7.0)
    )


@pytest.fixture
def ragged():
    """Ragged 2-D Gaussian-like data with a missing value."""
    rng = np.random.default_rng(0)
    pieces = [rng.normal(size=(length, 2)) for length in (5, 3, 7, 1, 4, 6, 2)]
    pieces[2][1, 0] = np.nan
    return hp.Sequences(pieces, dim=2)


def test_round_trip_reads_any_rows_in_any_order(tmp_path, ragged):
    path = write_store(tmp_path / "s.nc", ragged, chunk_size=3)
    with open_store(path) as store:
        assert (store.num_sequences, len(store), store.max_length, store.dim) == (7, 7, 7, 2)
        assert store.lengths.tolist() == ragged.lengths.tolist()
        for indices in ([0], [6, 2, 2, 0], [1, 2, 3], list(range(7)), np.array([5, 4])):
            assert _same(store.read(indices), ragged.select(list(indices)))
        assert _same(store.read_range(2, 100), ragged.select([2, 3, 4, 5, 6]))
        starts = [start for start, _ in store.iter_chunks(3)]
        assert starts == [0, 3, 6]
        assert store.fingerprint == MemoryStore(ragged).fingerprint
        with pytest.raises(ValueError, match="indices"):
            store.read([7])
        with pytest.raises(ValueError, match="indices"):
            store.read([])


def test_chunked_writes_equal_one_write_and_xarray_reads_the_file(tmp_path, ragged):
    whole = write_store(tmp_path / "whole.nc", ragged)
    chunks = (ragged.select(part) for part in ([0, 1], [2, 3, 4], [5, 6]))
    parts = write_store(tmp_path / "parts.nc", chunks, max_length=7, chunk_size=2)
    with open_store(whole) as first, open_store(parts) as second:
        assert first.fingerprint == second.fingerprint
        assert _same(first.read(range(7)), second.read(range(7)))
    with xr.open_dataset(parts, engine="h5netcdf") as dataset:
        assert dataset["values"].shape == (7, 7, 2)
        assert dataset["lengths"].values.tolist() == ragged.lengths.tolist()


def test_a_failed_write_leaves_neither_the_file_nor_a_temporary(tmp_path, ragged):
    longer = hp.Sequences([np.zeros((9, 2))], dim=2)
    with pytest.raises(ValueError, match="max_length"):
        write_store(tmp_path / "s.nc", iter([ragged, longer]))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="symbols"):
        write_store(tmp_path / "s.nc", hp.Sequences([[0, 7]]), emission=hp.Categorical(3))
    assert list(tmp_path.iterdir()) == []


def test_simulated_store_is_reproducible_and_holds_the_states(tmp_path):
    hmm = hp.HMM(3, hp.Categorical(num_symbols=5))
    first = simulate_store(
        tmp_path / "a.nc", hmm, REFERENCE_PARAMS, 250, 20, seed=4, write_chunk=100
    )
    second = simulate_store(
        tmp_path / "b.nc", hmm, REFERENCE_PARAMS, 250, 20, seed=4, write_chunk=100
    )
    with open_store(first) as a, open_store(second) as b:
        assert a.fingerprint == b.fingerprint
        assert a.emission == {"family": "categorical", "num_symbols": 5}
        assert a.has_states and a.read_states([0, 249]).shape == (2, 20)
        # The first write chunk is exactly hp.simulate with the first child seed.
        child = int(np.random.SeedSequence(4).spawn(3)[0].generate_state(1)[0])
        data, states = hp.simulate(hmm, REFERENCE_PARAMS, [20] * 100, seed=child)
        assert _same(a.read_range(0, 100), data)
        assert torch.equal(a.read_states(np.arange(100)), states)
        a.check_model(hmm)
        with pytest.raises(ValueError, match="'categorical' emissions"):
            a.check_model(hp.HMM(3, hp.Poisson()))


def test_open_store_rejects_other_files(tmp_path, ragged):
    with pytest.raises(ValueError, match="existing"):
        open_store(tmp_path / "missing.nc")
    (tmp_path / "text.nc").write_text("not hdf5")
    with pytest.raises(ValueError, match="HDF5"):
        open_store(tmp_path / "text.nc")
    xr.Dataset({"x": ("a", [1.0, 2.0])}).to_netcdf(tmp_path / "other.nc", engine="h5netcdf")
    with pytest.raises(ValueError, match="not a hmm_pyro sequence store"):
        open_store(tmp_path / "other.nc")


def test_is_store_reads_only_the_attributes(tmp_path, ragged):
    path = write_store(tmp_path / "store.nc", ragged)
    assert is_store(path) and is_store(str(path))
    assert not is_store(tmp_path / "missing.nc")
    (tmp_path / "text.nc").write_text("not hdf5")
    assert not is_store(tmp_path / "text.nc")
    xr.Dataset({"x": ("a", [1.0, 2.0])}).to_netcdf(tmp_path / "other.nc", engine="h5netcdf")
    assert not is_store(tmp_path / "other.nc")
    (tmp_path / "store.csv").write_bytes(path.read_bytes())  # a store by content, not by name
    assert not is_store(tmp_path / "store.csv")
    assert not is_store(tmp_path)


def _edited(source, target, edit):
    import shutil

    import h5py

    shutil.copyfile(source, target)
    with h5py.File(target, "r+") as handle:
        edit(handle)
    return target


def test_open_store_refuses_damaged_stores_naming_the_file(tmp_path, ragged):
    source = write_store(tmp_path / "s.nc", ragged, chunk_size=3)

    def set_attr(key, value):
        return lambda handle: handle.attrs.__setitem__(key, value)

    def replace(name, **options):
        def edit(handle):
            del handle[name]
            handle.create_dataset(name, **options)

        return edit

    def write(name, index, value):
        return lambda handle: handle[name].__setitem__(index, value)

    def huge(handle):
        replace("lengths", shape=(2**40,), dtype="i8", chunks=True)(handle)
        replace("values", shape=(2**40, 7, 2), dtype="f8", chunks=True)(handle)

    cases = [
        (set_attr("hmm_pyro_store", 7), "store format version 7, this hmm_pyro reads 1"),
        (write("lengths", 2, 99), r"lengths must lie in \[1, 7\], got \[1, 99\]"),
        (write("lengths", 0, 0), r"lengths must lie in \[1, 7\], got \[0, 7\]"),
        (replace("lengths", data=np.ones(3, dtype=np.int64)), r"lengths \(3,\)"),
        (replace("values", data=np.ones((7, 7), dtype="S2")), "'values' is not a 3-D dataset"),
        (set_attr("emission", "[1, 2]"), "its emission attribute is not a JSON object"),
        (replace("lengths", shape=(2**40,), dtype="i8", chunks=True), "expected values"),
        # Chunked datasets declare 2**40 rows in a file of a few kilobytes.
        (huge, r"would need 8\.0 TiB of memory, only .* refused before allocating"),
    ]
    for index, (edit, message) in enumerate(cases):
        path = _edited(source, tmp_path / f"bad{index}.nc", edit)
        with pytest.raises(ValueError, match=message) as error:
            open_store(path)
        assert str(error.value).startswith(f"path: cannot read {str(path)!r}: ")
    path = _edited(source, tmp_path / "inf.nc", write("values", (4, 0, 1), np.inf))
    with open_store(path) as store:
        assert len(store.read([0, 1, 2])) == 3
        with pytest.raises(ValueError, match=r"inf\.nc': values: row 4 holds inf"):
            store.read([3, 4])


def test_memory_store_has_the_store_interface(ragged):
    store = as_store(ragged)
    assert isinstance(store, MemoryStore) and as_store(store) is store
    assert _same(store.read([3, 1]), ragged.select([3, 1]))
    assert store.num_sequences == 7 and store.dim == 2


def test_atomic_write_keeps_the_old_file_on_error(tmp_path):
    target = tmp_path / "out" / "report.json"
    with atomic_write(target) as handle:
        handle.write("old")
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write("half")
        raise RuntimeError("crash")
    assert target.read_text() == "old"
    with atomic_path(tmp_path / "figure.png") as temporary:
        assert temporary.suffix == ".png" and temporary.parent == tmp_path
        temporary.write_bytes(b"png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.png", "out"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["report.json"]
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(target, mode="a"):
            pass


def test_atomic_writes_get_ordinary_permissions_and_keep_existing_ones(tmp_path):
    """A new file gets 0o666 minus the umask (not mkstemp's private 0o600); a replaced
    file keeps its mode."""
    import os
    import stat

    mask = os.umask(0)
    os.umask(mask)
    fresh = tmp_path / "fresh.txt"
    with atomic_write(fresh) as handle:
        handle.write("x")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~mask
    os.chmod(fresh, 0o640)
    with atomic_write(fresh) as handle:
        handle.write("y")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640 and fresh.read_text() == "y"
