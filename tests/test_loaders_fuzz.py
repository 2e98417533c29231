"""Every file loader, fed mutated real files: one clear error or a valid result, never worse.

The loaders: ``Sequences.from_file`` (CSV, NPY, NPZ), ``open_store`` (then every row and the
true states read), ``load`` (NetCDF fits), ``load_checkpoint`` (SVI checkpoints) and
``load_chain`` (saved NUTS chains). Each Hypothesis example takes a real file written by
hmm_pyro, damages it with one mutation of :mod:`tests.file_mutations` (bit flips, truncation,
garbage, wrong dtypes and shapes, NaN/inf, huge declared dimensions, empty or missing parts,
edited headers and attributes, pickles), or swaps in a valid file of another kind (a NetCDF
file that is not ours, another loader's file), and hands it to the loader.

The property, for every case: the loader returns (a mutation can leave a valid file, e.g. a
flipped bit in padding; a checksummed file must then hold exactly the original content unless
the mutation signed it again, as a forger would) or
raises one ``ValueError``/``TypeError`` whose message is one line naming the file; within
:data:`CASE_SECONDS`. Anything else (an exception from torch, h5py, xarray, zipfile; a timeout)
fails the test. The memory available is pinned to :data:`MEMORY` here, so that "huge" does not
depend on the machine: data larger than that must be refused before it is allocated. No
pickle is ever unpickled (:data:`~tests.file_mutations.TRAP_FILE` is never created).
``derandomize=True`` draws the same cases in every run: :data:`TOTAL_CASES` in all.
"""

from __future__ import annotations

import collections
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
import torch
import xarray as xr
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import hmm_pyro as hp
from hmm_pyro.inference._chains import _read as read_chain_header
from hmm_pyro.inference._chains import load_chain
from hmm_pyro.inference.checkpoint import load_checkpoint
from hmm_pyro.simulate import REFERENCE_PARAMS
from tests import file_mutations as fm

# One worker runs the whole module, so the totals test sees every fuzz case (pytest-xdist).
pytestmark = pytest.mark.xdist_group("loaders_fuzz")

CASES = {"checkpoint": 130, "chain": 100, "csv": 60, "npy": 50, "npz": 70, "store": 100, "fit": 80}
TOTAL_CASES = sum(CASES.values())
CASE_SECONDS = 10.0
"""Longest time one case may take (the slowest valid case, a NetCDF fit, loads in ~0.3 s)."""
MEMORY = 2**30
"""Memory the readers are told is available (1 GiB)."""
OUTCOMES: collections.Counter[tuple[str, str]] = collections.Counter()
SECONDS: dict[str, list[float]] = collections.defaultdict(list)


class CaseTimeout(BaseException):
    """Raised by the alarm in a case that runs too long (a ``BaseException``, so that no
    loader can mistake it for a read error)."""


def _settings(name: str) -> settings:
    return settings(
        max_examples=CASES[name],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# ---------------------------------------------------------------------------- real files
@pytest.fixture(scope="module", autouse=True)
def pinned_memory() -> Iterator[None]:
    with mock.patch("hmm_pyro._archive.memory_available", return_value=MEMORY):
        yield
    assert not fm.TRAP_FILE.exists(), "a pickle written by a mutation was unpickled"


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> dict[str, Path]:
    """One valid file per loader, written by hmm_pyro."""
    fm.TRAP_FILE.unlink(missing_ok=True)
    folder = tmp_path_factory.mktemp("real")
    hmm = hp.HMM(3, hp.Categorical(5))
    data, _ = hp.simulate(hmm, REFERENCE_PARAMS, [30, 20, 25], seed=1)
    data.to_dataframe().to_csv(folder / "data.csv", index=False)
    values = data.values.numpy()[..., 0]
    np.save(folder / "data.npy", values)
    np.savez(folder / "data.npz", values=values, lengths=data.lengths.numpy())
    np.savez(folder / "pieces.npz", *data.to_list())
    hp.simulate_store(folder / "store.nc", hmm, REFERENCE_PARAMS, 5, [9, 4, 7, 6, 8], seed=1)
    hp.Fit.from_params(hmm, data, REFERENCE_PARAMS).save(folder / "fit.nc")

    def stop(restart: int, step: int, loss: float) -> None:
        if (restart, step) == (1, 12):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        hp.fit_svi(hmm, data, guide="normal", steps=30, restarts=2, seed=1,
                   num_draws=4, progress=False, checkpoint=folder / "run.ckpt",
                   checkpoint_every=5, callback=stop)  # fmt: skip
    hp.fit_nuts(hmm, data, chains=1, warmup=10, draws=5, seed=1, chain_dir=folder / "chains",
                parallel=False, progress=False, relabel=False)  # fmt: skip
    foreign = folder / "foreign.nc"
    xr.Dataset({"x": (("a", "b"), np.ones((3, 2)))}, attrs={"title": "not ours"}).to_netcdf(
        foreign, engine="h5netcdf"
    )
    return {
        "checkpoint": folder / "run.ckpt",
        "chain": folder / "chains" / "chain_0.npz",
        "csv": folder / "data.csv",
        "npy": folder / "data.npy",
        "npz": folder / "data.npz",
        "pieces": folder / "pieces.npz",
        "store": folder / "store.nc",
        "fit": folder / "fit.nc",
        "foreign": foreign,
    }


def _read_store(path: Path) -> int:
    with hp.open_store(path) as store:
        rows = sum(chunk.num_sequences for _, chunk in store.iter_chunks(2))
        if store.has_states:
            store.read_states(np.arange(len(store)))
    return rows


@pytest.fixture(scope="module")
def loaders(real) -> dict[str, Callable[[Path], Any]]:
    signature = read_chain_header(real["chain"])[2]
    return {
        "checkpoint": load_checkpoint,
        "chain": lambda path: load_chain(path, signature),
        "csv": hp.Sequences.from_file,
        "npy": hp.Sequences.from_file,
        "npz": hp.Sequences.from_file,
        "store": _read_store,
        "fit": hp.load,
    }


def _same(first: Any, second: Any) -> bool:
    """Equal nested state (tensors and arrays compared bitwise, NaN equal to NaN)."""
    if isinstance(first, torch.Tensor):
        first, second = first.detach().numpy(), second.detach().numpy()
    if isinstance(first, np.ndarray):
        return first.dtype == second.dtype and np.array_equal(
            first, second, equal_nan=first.dtype.kind == "f"
        )
    if isinstance(first, dict):
        return first.keys() == second.keys() and all(_same(first[k], second[k]) for k in first)
    if isinstance(first, (list, tuple)):
        return len(first) == len(second) and all(map(_same, first, second))
    return first == second or (first != first and second != second)  # NaN


# ---------------------------------------------------------------------------- the property
def _alarm(signum: int, frame: Any) -> None:
    raise CaseTimeout


def run_case(loader: str, load: Callable[[Path], Any], path: Path, what: str) -> Any:
    """Load ``path``: a result, or one short line naming the file; record the outcome."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
    began = time.perf_counter()
    try:
        result, outcome = load(path), "loaded"
    except (ValueError, TypeError) as error:
        message = str(error)
        assert str(path) in message, f"{what}: the error does not name the file: {message}"
        assert "\n" not in message and len(message) < 1500, f"{what}: {message!r}"
        result, outcome = None, "refused"
    except CaseTimeout:
        raise AssertionError(f"{loader}: {what}: took more than {CASE_SECONDS} s") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    SECONDS[loader].append(time.perf_counter() - began)
    OUTCOMES[loader, outcome] += 1
    event(f"{loader}: {outcome}: {what}")
    return result


def _cross(real: dict[str, Path], own: str) -> Callable[..., str]:
    """A valid file of another kind: a NetCDF file not ours, or another loader's file."""

    def mutation(source: Path, target: Path, data: st.DataObject) -> str:
        other = data.draw(st.sampled_from(sorted(set(real) - {own})), label="other file")
        target.write_bytes(real[other].read_bytes())
        return f"another file: {other}"

    return mutation


def _fuzz(loader: str, source: str, structural: list, real, loaders, tmp_path_factory, data):
    """One case: 60 % a structural mutation, 40 % bytes damaged or another valid file."""
    folder = tmp_path_factory.getbasetemp() / "mutated"
    folder.mkdir(exist_ok=True)
    target = folder / f"mutated{real[source].suffix}"
    if data.draw(st.integers(0, 9), label="kind") < 6:
        choices = structural
    else:
        choices = [*fm.BYTE_MUTATIONS, _cross(real, source)]
    mutation = data.draw(st.sampled_from(choices), label="mutation")
    what = mutation(real[source], target, data)
    result = run_case(loader, loaders[loader], target, what)
    if result is not None and loader in ("checkpoint", "chain") and "re-signed" not in what:
        original = loaders[loader](real[source])  # checksummed: damaged means refused
        assert _same(result, original), f"{what}: loaded, but not the original content"


@_settings("checkpoint")
@given(data=st.data())
def test_checkpoint_loader(real, loaders, tmp_path_factory, data):
    _fuzz("checkpoint", "checkpoint", fm.ARCHIVE_MUTATIONS, real, loaders, tmp_path_factory, data)


@_settings("chain")
@given(data=st.data())
def test_saved_chain_loader(real, loaders, tmp_path_factory, data):
    _fuzz("chain", "chain", fm.ARCHIVE_MUTATIONS, real, loaders, tmp_path_factory, data)


@_settings("csv")
@given(data=st.data())
def test_csv_sequences_loader(real, loaders, tmp_path_factory, data):
    _fuzz(
        "csv", "csv", [*fm.BYTE_MUTATIONS, *fm.CSV_MUTATIONS], real, loaders, tmp_path_factory, data
    )


@_settings("npy")
@given(data=st.data())
def test_npy_sequences_loader(real, loaders, tmp_path_factory, data):
    _fuzz("npy", "npy", [fm.edit_npy], real, loaders, tmp_path_factory, data)


@_settings("npz")
@given(data=st.data(), source=st.sampled_from(["npz", "pieces"]))
def test_npz_sequences_loader(real, loaders, tmp_path_factory, data, source):
    _fuzz("npz", source, fm.NPZ_MUTATIONS, real, loaders, tmp_path_factory, data)


@_settings("store")
@given(data=st.data())
def test_store_loader(real, loaders, tmp_path_factory, data):
    _fuzz("store", "store", fm.HDF5_MUTATIONS, real, loaders, tmp_path_factory, data)


@_settings("fit")
@given(data=st.data())
def test_fit_loader(real, loaders, tmp_path_factory, data):
    _fuzz("fit", "fit", fm.HDF5_MUTATIONS, real, loaders, tmp_path_factory, data)


def test_the_fuzz_runs_at_least_500_cases_in_under_a_minute():
    assert TOTAL_CASES >= 500
    if sum(OUTCOMES.values()) < TOTAL_CASES:
        pytest.skip("run with the fuzz tests above to check their totals")
    seconds = {loader: sum(times) for loader, times in SECONDS.items()}
    report = {
        loader: (OUTCOMES[loader, "refused"], OUTCOMES[loader, "loaded"], round(seconds[loader], 1))
        for loader in CASES
    }
    slowest = max(max(times) for times in SECONDS.values())
    print(f"\nfuzz cases (refused, loaded, seconds in the loader): {report}; slowest case "
          f"{slowest:.2f} s")  # fmt: skip
    assert sum(seconds.values()) < 60.0, report
    assert slowest < CASE_SECONDS
