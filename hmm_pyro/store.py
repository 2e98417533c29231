"""Sequences on disk: a chunked NetCDF-4 store read lazily, a few rows at a time.

A store is one NetCDF-4 (HDF5) file, written with ``h5netcdf`` and readable by
``xarray.open_dataset(path, engine="h5netcdf")``:

- ``values`` ``(sequence, time, dim)`` float64, NaN at missing observations and padding, chunked
  along sequences (``chunk_size`` sequences per HDF5 chunk, whole rows);
- ``lengths`` ``(sequence,)`` int64;
- ``states`` ``(sequence, time)`` int16, ``-1`` at padding (only in stores written by
  :func:`hmm_pyro.simulate_store`: the true hidden states);
- attributes ``hmm_pyro_store`` (format version), ``emission`` (JSON of the emission family,
  when known), ``fingerprint`` (SHA-256 of the values and lengths, to tie checkpoints to data).

Writers build the whole file under a temporary name in the target folder and rename it at the
end (:func:`hmm_pyro._io.atomic_path`), so a store is either complete or absent. Sources larger
than memory are written chunk by chunk: pass an iterable of :class:`~hmm_pyro.data.Sequences`
(or use :func:`hmm_pyro.simulate_store`); only one chunk is held at a time.

:func:`open_store` returns a :class:`SequenceStore` that keeps the file open and holds only the
lengths ``(N,)`` in memory; :meth:`SequenceStore.read` returns the requested rows as
``Sequences`` (contiguous runs of indices are read as slices, which is what makes block-wise
mini-batches cheap). :class:`MemoryStore` offers the same interface over in-memory ``Sequences``.

Layer rule: ``store`` imports ``model``, ``emissions`` and the layers below them, and the
private utilities; ``simulate`` and everything above import it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import h5netcdf
import h5py
import numpy as np
import torch

from hmm_pyro._archive import READ_ERRORS, check_memory, file_label
from hmm_pyro._io import atomic_path
from hmm_pyro._types import SequencesLike
from hmm_pyro._validation import check_int, describe
from hmm_pyro.data import Sequences, as_sequences
from hmm_pyro.emissions import Emission
from hmm_pyro.kernels import PAD_STATE
from hmm_pyro.model import HMM

__all__ = [
    "STORE_VERSION",
    "MemoryStore",
    "SequenceStore",
    "as_store",
    "is_store",
    "open_store",
    "write_store",
]

STORE_VERSION = 1
DEFAULT_CHUNK_SIZE = 100
"""Sequences per HDF5 chunk: small enough that a block of a few rows reads little data."""


def _from_padded(values: np.ndarray, lengths: np.ndarray) -> Sequences:
    """``Sequences`` from padded ``(N, T, D)`` values that already hold NaN at padding."""
    sequences = Sequences.__new__(Sequences)
    sequences._cache = {}
    sequences.values = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float64))
    sequences.lengths = torch.from_numpy(np.ascontiguousarray(lengths, dtype=np.int64))
    return sequences


def _as_chunks(data: SequencesLike) -> Iterator[Sequences]:
    """One ``Sequences`` (whole) or the items of an iterable, each as ``Sequences``."""
    if isinstance(data, Sequences):
        yield data
        return
    if isinstance(data, (str, bytes, os.PathLike, np.ndarray, torch.Tensor)) or not isinstance(
        data, Iterable
    ):
        raise TypeError(
            "data: expected a Sequences or an iterable of Sequences (one per chunk), "
            f"got {describe(data)}"
        )
    for index, chunk in enumerate(data):
        try:
            yield as_sequences(chunk)
        except (TypeError, ValueError) as error:
            raise type(error)(f"data[{index}]: {error}") from error


def _runs(indices: np.ndarray) -> list[tuple[int, int]]:
    """Split sorted unique indices into ``[start, stop)`` runs of consecutive values."""
    breaks = np.flatnonzero(np.diff(indices) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [indices.size]])
    return [(int(indices[a]), int(indices[b - 1]) + 1) for a, b in zip(starts, stops, strict=True)]


def _check_indices(indices: Any, size: int) -> np.ndarray:
    array = np.asarray(indices.numpy() if isinstance(indices, torch.Tensor) else indices)
    if array.ndim != 1 or array.size == 0 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"indices: expected a non-empty 1-D array of integers, got {describe(indices)}"
        )
    if array.min() < 0 or array.max() >= size:
        raise ValueError(
            f"indices: expected values in [0, {size - 1}], got [{array.min()}, {array.max()}]"
        )
    return array.astype(np.int64)


class _Store:
    """Shared logic of the two store types: index checks, reordering, chunk iteration."""

    lengths: np.ndarray
    emission: dict[str, Any] | None

    @property
    def num_sequences(self) -> int:
        """Number of sequences ``N``."""
        return int(self.lengths.shape[0])

    def __len__(self) -> int:
        return self.num_sequences

    def _read_sorted(self, indices: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def read(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> Sequences:
        """Return the sequences at ``indices`` (in that order), padding trimmed.

        Parameters
        ----------
        indices : array-like of int
            Row numbers in ``[0, N)``; repeats allowed.

        Returns
        -------
        Sequences
        """
        indices = _check_indices(indices, self.num_sequences)
        unique, inverse = np.unique(indices, return_inverse=True)
        values = self._read_sorted(unique)
        if unique.size != indices.size or not np.array_equal(unique, indices):
            values = values[inverse]
        return _from_padded(values, self.lengths[indices])

    def read_range(self, start: int, stop: int) -> Sequences:
        """Return sequences ``start .. stop - 1`` (clipped to ``N``)."""
        start = check_int("start", start, minimum=0)
        stop = min(check_int("stop", stop, minimum=start + 1), self.num_sequences)
        if start >= self.num_sequences:
            raise ValueError(f"start: expected a value below {self.num_sequences}, got {start}")
        return self.read(np.arange(start, stop))

    def iter_chunks(self, chunk_size: int = 1000) -> Iterator[tuple[int, Sequences]]:
        """Yield ``(start, Sequences)`` for consecutive chunks of ``chunk_size`` sequences."""
        chunk_size = check_int("chunk_size", chunk_size, minimum=1)
        for start in range(0, self.num_sequences, chunk_size):
            yield start, self.read_range(start, start + chunk_size)

    def check_model(self, hmm: HMM) -> None:
        """Raise ``ValueError`` if the store's emission dimension or family contradicts ``hmm``."""
        if self.dim != hmm.emission.dim:
            raise ValueError(
                f"store: holds {self.dim}-dimensional observations, the model's emission "
                f"{hmm.emission!r} expects dim={hmm.emission.dim}"
            )
        written = self.emission or {}
        if written.get("family") is not None and not hmm.emission.same_family(written):
            raise ValueError(
                f"store: was written for {written['family']!r} emissions, the model has "
                f"{hmm.emission.family!r}"
            )

    @property
    def dim(self) -> int:  # pragma: no cover - abstract
        """Emission dimension ``D``."""
        raise NotImplementedError


class SequenceStore(_Store):
    """A store file opened for lazy reading (see the module notes).

    Use :func:`open_store` to open one. Close it with :meth:`close` or a ``with`` block.

    Attributes
    ----------
    path : pathlib.Path
        The file.
    lengths : numpy.ndarray
        ``(N,)`` int64, held in memory.
    emission : dict or None
        Emission configuration recorded by the writer.
    fingerprint : str
        SHA-256 of the values and lengths, as written.
    attrs : dict
        All decoded file attributes.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ValueError(f"path: expected an existing store file, got {str(self.path)!r}")
        self._label = file_label("path", self.path)
        try:
            self._file = h5py.File(self.path, "r")
        except READ_ERRORS as error:
            raise ValueError(
                f"path: {str(self.path)!r} is not an HDF5/NetCDF-4 file ({error})"
            ) from error
        try:
            if "hmm_pyro_store" not in self._file.attrs or "values" not in self._file:
                raise ValueError(
                    f"path: {str(self.path)!r} is not a hmm_pyro sequence store "
                    "(write one with hmm_pyro.store.write_store)"
                )
            self.attrs = {key: _decode(value) for key, value in self._file.attrs.items()}
            self._values = self._file["values"]
            self.lengths = self._checked_lengths()
            self.emission = self.attrs.get("emission")
            if self.emission is not None and not isinstance(self.emission, dict):
                raise ValueError(f"{self._label}: its emission attribute is not a JSON object")
        except READ_ERRORS as error:
            self._file.close()
            text = " ".join(str(error).split())
            if not text.startswith(("path: ", self._label)):
                text = f"{self._label}: {type(error).__name__}: {text}"
            raise ValueError(text) from error
        except BaseException:
            self._file.close()
            raise
        self.fingerprint = str(self.attrs.get("fingerprint", ""))

    def _checked_lengths(self) -> np.ndarray:
        """The lengths, once the file's layout is known to be a store's (see the module notes).

        Checked before anything is read: the format version, the variables' kinds, dtypes and
        shapes, and that one row of values fits in memory; then every length is in
        ``[1, T_max]``.
        """
        label, file = self._label, self._file
        version = self.attrs.get("hmm_pyro_store")
        if version != STORE_VERSION:
            raise ValueError(
                f"{label}: store format version {version!r}, this hmm_pyro reads {STORE_VERSION}"
            )
        layout = {"values": (3, "f"), "lengths": (1, "iu"), "states": (2, "iu")}
        for name, (ndim, kinds) in layout.items():
            if name == "states" and name not in file:
                continue
            item = file.get(name)
            if (
                not isinstance(item, h5py.Dataset)
                or item.ndim != ndim
                or item.dtype.kind not in kinds
            ):
                raise ValueError(
                    f"{label}: {name!r} is not a {ndim}-D dataset of kind {kinds!r} "
                    f"({describe(item)})"
                )
        count, width, dim = self._values.shape
        shape = file["lengths"].shape
        if count < 1 or width < 1 or dim < 1 or shape != (count,):
            raise ValueError(
                f"{label}: expected values (N, T, D) with N, T, D >= 1 and lengths (N,), got "
                f"values {self._values.shape} and lengths {shape}"
            )
        if "states" in file and file["states"].shape != (count, width):
            raise ValueError(f"{label}: states {file['states'].shape}, values {(count, width)}")
        check_memory(count * 8 + width * dim * 8, label)  # the lengths, and one row
        lengths = np.asarray(file["lengths"][...], dtype=np.int64)
        if lengths.min() < 1 or lengths.max() > width:
            raise ValueError(
                f"{label}: lengths must lie in [1, {width}], got [{lengths.min()}, {lengths.max()}]"
            )
        return lengths

    @property
    def max_length(self) -> int:
        """Padded length ``T_max``."""
        return int(self._values.shape[1])

    @property
    def dim(self) -> int:
        """Emission dimension ``D``."""
        return int(self._values.shape[2])

    @property
    def has_states(self) -> bool:
        """True if the store holds true hidden states (written by :func:`simulate_store`)."""
        return "states" in self._file

    def read_states(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> torch.Tensor:
        """True hidden states of the rows at ``indices``: ``(n, T_max)`` int64, -1 at padding."""
        if not self.has_states:
            raise ValueError(f"store: {str(self.path)!r} holds no true states")
        indices = _check_indices(indices, self.num_sequences)
        unique, inverse = np.unique(indices, return_inverse=True)
        with self._reading("states"):
            rows = np.concatenate([self._file["states"][a:b] for a, b in _runs(unique)], axis=0)
        return torch.from_numpy(rows.astype(np.int64)[inverse])

    @contextlib.contextmanager
    def _reading(self, what: str) -> Iterator[None]:
        """Turn a failed read of the file into a ``ValueError`` naming it."""
        try:
            yield
        except READ_ERRORS as error:
            text = " ".join(str(error).split())
            raise ValueError(f"{self._label}: {what}: {type(error).__name__}: {text}") from error

    def _read_sorted(self, indices: np.ndarray) -> np.ndarray:
        width = int(self.lengths[indices].max())
        runs = _runs(indices)
        check_memory(indices.size * width * self.dim * 8, self._label)
        with self._reading("values"):
            if len(runs) * 4 > indices.size:  # scattered rows: one fancy-indexed read
                values = self._values[indices, :width]
            else:
                values = np.concatenate([self._values[a:b, :width] for a, b in runs], axis=0)
        infinite = np.isinf(values).any(axis=(1, 2))
        if infinite.any():
            raise ValueError(f"{self._label}: values: row {indices[infinite][0]} holds inf")
        return values

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> SequenceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"SequenceStore({str(self.path)!r}, num_sequences={self.num_sequences}, "
            f"max_length={self.max_length}, dim={self.dim})"
        )


class MemoryStore(_Store):
    """The store interface over in-memory :class:`~hmm_pyro.data.Sequences`.

    Parameters
    ----------
    data : Sequences or array-like
        The sequences.
    """

    def __init__(self, data: SequencesLike) -> None:
        self.data = as_sequences(data)
        self.lengths = self.data.lengths.numpy().astype(np.int64)
        self.emission = None
        self.path = None
        self.attrs: dict[str, Any] = {}
        self._fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the values and lengths (and of the covariates the sequences carry)."""
        if self._fingerprint is None:
            digest = _Fingerprint()
            digest.update(self.data.values.numpy(), self.lengths)
            covariates = self.data.covariates
            if covariates is not None:  # the values the model sees, standardised or not
                digest.update(covariates.values.numpy(), self.lengths)
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    @property
    def max_length(self) -> int:
        """Padded length ``T_max``."""
        return self.data.max_length

    @property
    def dim(self) -> int:
        """Emission dimension ``D``."""
        return self.data.dim

    def _read_sorted(self, indices: np.ndarray) -> np.ndarray:
        width = int(self.lengths[indices].max())
        return self.data.values.numpy()[indices, :width]

    def close(self) -> None:
        """Nothing to close."""

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MemoryStore({self.data!r})"


def as_store(data: SequencesLike | SequenceStore | MemoryStore) -> SequenceStore | MemoryStore:
    """Return ``data`` as a store: stores unchanged, a path opened, sequences wrapped."""
    if isinstance(data, (SequenceStore, MemoryStore)):
        return data
    if isinstance(data, (str, os.PathLike)):
        return open_store(data)
    return MemoryStore(data)


def open_store(path: str | os.PathLike[str]) -> SequenceStore:
    """Open a store written by :func:`write_store` or :func:`simulate_store` for lazy reading.

    Parameters
    ----------
    path : str or os.PathLike
        The store file.

    Returns
    -------
    SequenceStore
    """
    return SequenceStore(path)


def is_store(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a store (written by :func:`write_store` or :func:`simulate_store`).

    Only the file's attributes are read: a ``.nc`` or ``.h5`` file with the ``hmm_pyro_store``
    attribute is a store; anything else (another suffix, a missing file, a fit, a file HDF5
    cannot open) is not.

    Parameters
    ----------
    path : str or os.PathLike
        The file to test.

    Returns
    -------
    bool
    """
    file = Path(path)
    if file.suffix.lower() not in (".nc", ".h5") or not file.is_file():
        return False
    try:
        with h5py.File(file, "r") as handle:
            return "hmm_pyro_store" in handle.attrs
    except OSError:
        return False


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, np.ndarray) and value.size == 1:
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    return value


class _Fingerprint:
    """SHA-256 of the lengths and of the padded values, independent of how rows are chunked."""

    def __init__(self) -> None:
        self._lengths = hashlib.sha256()
        self._values = hashlib.sha256()

    def update(self, values: np.ndarray, lengths: np.ndarray) -> None:
        self._lengths.update(np.ascontiguousarray(lengths, dtype=np.int64).tobytes())
        self._values.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())

    def hexdigest(self) -> str:
        return hashlib.sha256(self._lengths.digest() + self._values.digest()).hexdigest()


def write_store(
    path: str | os.PathLike[str],
    data: SequencesLike,
    max_length: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    emission: Emission | None = None,
    attrs: dict[str, Any] | None = None,
    states: Iterable[Any] | None = None,
) -> Path:
    """Write sequences to a chunked NetCDF-4 store, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Target file (conventionally ``.nc``).
    data : Sequences, array-like, or iterable of Sequences
        All sequences at once, or an iterable of chunks (any sizes) written one at a time so
        that the whole set never sits in memory.
    max_length : int, optional
        Padded length ``T_max`` of the store; default: the longest sequence of the first chunk
        (a later, longer chunk then raises ``ValueError``).
    chunk_size : int
        Sequences per HDF5 chunk (the unit the file is read in).
    emission : Emission, optional
        Validate every chunk for this family and record it in the attributes.
    attrs : dict, optional
        Extra attributes (JSON-encoded).
    states : iterable of array-like, optional
        True hidden states, one ``(n, T)`` integer array per chunk of ``data``.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    if max_length is not None:
        max_length = check_int("max_length", max_length, minimum=1)
    if emission is not None and not isinstance(emission, Emission):
        raise TypeError(f"emission: expected an Emission, got {describe(emission)}")
    if isinstance(data, (np.ndarray, torch.Tensor)):
        data = as_sequences(data)
    chunks = _as_chunks(data)
    state_chunks = iter(states) if states is not None else None
    path = Path(path)
    digest = _Fingerprint()
    with atomic_path(path) as temporary, h5netcdf.File(temporary, "w") as handle:
        total = 0
        variables: dict[str, Any] = {}
        for index, chunk in enumerate(chunks):
            if emission is not None:
                emission.validate_data(chunk)
            if not variables:
                width = chunk.max_length if max_length is None else max_length
                handle.dimensions = {"sequence": None, "time": width, "dim": chunk.dim}
                variables["values"] = handle.create_variable(
                    "values",
                    ("sequence", "time", "dim"),
                    dtype="f8",
                    chunks=(chunk_size, width, chunk.dim),
                    fillvalue=np.nan,
                )
                variables["lengths"] = handle.create_variable(
                    "lengths", ("sequence",), dtype="i8", chunks=(max(chunk_size, 1024),)
                )
                if state_chunks is not None:
                    variables["states"] = handle.create_variable(
                        "states",
                        ("sequence", "time"),
                        dtype="i2",
                        chunks=(chunk_size, width),
                        fillvalue=PAD_STATE,
                    )
            width = handle.dimensions["time"].size
            if chunk.max_length > width:
                raise ValueError(
                    f"max_length: chunk {index} has a sequence of length {chunk.max_length}, "
                    f"longer than the store's {width} (pass max_length=)"
                )
            if chunk.dim != handle.dimensions["dim"].size:
                raise ValueError(
                    f"data[{index}]: expected dimension {handle.dimensions['dim'].size} like the "
                    f"first chunk, got {chunk.dim}"
                )
            count = chunk.num_sequences
            handle.resize_dimension("sequence", total + count)
            values = chunk.values.numpy()
            lengths = chunk.lengths.numpy()
            variables["values"][total : total + count, : chunk.max_length] = values
            variables["lengths"][total : total + count] = lengths
            if state_chunks is not None:
                try:
                    rows = np.asarray(next(state_chunks))
                except StopIteration:
                    raise ValueError(
                        f"states: expected one array per chunk, ran out at chunk {index}"
                    ) from None
                if rows.shape[0] != count or rows.ndim != 2:
                    raise ValueError(
                        f"states: chunk {index}: expected shape ({count}, T), got {rows.shape}"
                    )
                variables["states"][total : total + count, : rows.shape[1]] = rows
            padded = np.full((count, width, chunk.dim), np.nan)
            padded[:, : chunk.max_length] = values
            digest.update(padded, lengths)
            total += count
        if not variables:
            raise ValueError("data: expected at least one sequence, got an empty iterable")
        meta = {
            "hmm_pyro_store": STORE_VERSION,
            "fingerprint": digest.hexdigest(),
            **({"emission": emission.to_config()} if emission is not None else {}),
            **(attrs or {}),
        }
        for key, value in meta.items():
            handle.attrs[key] = value if isinstance(value, (int, str)) else json.dumps(value)
    return path
