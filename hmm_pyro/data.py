"""``Sequences``: one or many observation sequences of different lengths, padded, with masks.

Values are held as a float64 tensor ``(N, T_max, D)`` (``D = 1`` for univariate data) with
``NaN`` at missing observations and at padding, plus ``lengths (N,)``. A missing observation is
kept as a step of the chain whose emission term is dropped (marginalised). Symbols read from
text keep their names (:attr:`Sequences.symbols`); the values are their codes ``0 .. V-1``.

Sequences may carry :class:`~hmm_pyro.Covariates` (:attr:`Sequences.covariates`): numbers
observed at every step that drive the transitions of a
:class:`~hmm_pyro.CovariateHMM`.

Layer rule: ``data`` imports only ``covariates``, ``kernels`` and the private utilities; every
layer above imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from hmm_pyro._archive import check_memory, file_label, read_npy, read_npz
from hmm_pyro._io import atomic_path
from hmm_pyro._numeric import to_float_array
from hmm_pyro._tables import check_symbols, split_long_table
from hmm_pyro._types import SequencesLike
from hmm_pyro._validation import check_bool, check_int, describe, warn
from hmm_pyro.covariates import Covariates, covariates_from_table

__all__ = ["Sequences", "TimeGapWarning", "as_sequences"]


class TimeGapWarning(UserWarning):
    """A time column skipped steps; they were read as missing observations."""


_FILE_KINDS = "biufcUSmM"
"""NumPy dtype kinds read from ``.npy``/``.npz`` files (never objects): the constructor then
refuses the non-numeric ones with its usual ``TypeError``."""


def _check_padded_size(label: str, count: int, length: int, width: int) -> None:
    """Refuse ``count`` padded sequences that would not fit in memory (float64, held twice)."""
    check_memory(2 * 8 * count * length * width, label)


def _is_ragged(items: list | tuple) -> bool:
    """True when a list holds sequences that do not stack into one regular array."""
    if not items or not all(isinstance(item, Iterable) for item in items):
        return False
    if any(isinstance(item, (np.ma.MaskedArray, torch.Tensor)) for item in items):
        return True
    try:
        np.asarray(items, dtype=np.float64)
    except (TypeError, ValueError):
        return True
    return False


class Sequences:
    """One or many observation sequences, padded to a common length.

    Parameters
    ----------
    data : array-like, list of array-likes, torch.Tensor or Sequences
        A 1-D array (one univariate sequence); a 2-D array ``(N, T)`` of ``N`` univariate
        sequences (``(T, D)`` of one sequence when ``dim=D`` is given); a 3-D array
        ``(N, T, D)``; or a list of per-sequence arrays ``(T_n,)`` / ``(T_n, D)`` of different
        lengths. ``NaN`` and masked entries (``numpy.ma``) are missing observations.
    lengths : sequence of int, optional
        Valid lengths of the rows of a padded 2-D/3-D array; the rest of each row is padding.
    dim : int, optional
        Emission dimension ``D``; inferred when omitted (1 for 1-D/2-D arrays).
    symbols : sequence of str, optional
        Names of the symbols ``0 .. V-1`` when the values are codes of named symbols (text
        data); the values must then be whole numbers in ``[0, V)``, one per step.
    covariates : Covariates, optional
        Covariates of every step, aligned with the sequences (:meth:`with_covariates`).

    Attributes
    ----------
    values : torch.Tensor
        ``(N, T_max, D)`` float64, NaN at missing and padded entries.
    lengths : torch.Tensor
        ``(N,)`` int64 number of steps of each sequence.
    symbols : tuple of str or None
        Names of the symbols (``None``: the values are numbers).
    covariates : Covariates or None
        The covariates of every step, or ``None``.

    Raises
    ------
    TypeError
        For values that are not real numbers: strings (even ``"1"``), bytes, complex numbers,
        dates, non-numeric table columns.
    ValueError
        For ``inf``, no sequence, an empty sequence, zero values per step, or ``lengths``/``dim``
        that do not fit the data. Every message starts with the argument's name.

    Examples
    --------
    >>> seqs = Sequences([[0, 1, 1], [2, 0]])
    >>> seqs.num_sequences, seqs.max_length, seqs.lengths.tolist()
    (2, 3, [3, 2])
    """

    symbols: tuple[str, ...] | None = None
    """Names of the symbols, or ``None`` (also for instances built without ``__init__``)."""
    covariates: Covariates | None = None
    """Covariates of every step, or ``None`` (also for instances built without ``__init__``)."""

    def __init__(
        self,
        data: SequencesLike,
        lengths: Sequence[int] | np.ndarray | torch.Tensor | None = None,
        dim: int | None = None,
        symbols: Sequence[str] | None = None,
        covariates: Covariates | None = None,
    ) -> None:
        self._cache: dict[Hashable, Any] = {}
        if isinstance(data, Sequences):
            if lengths is not None:
                raise ValueError("lengths: expected None when data is already a Sequences")
            if dim is not None and dim != data.dim:
                raise ValueError(f"dim: expected {data.dim} (from data), got {dim}")
            self.values, self.lengths = data.values, data.lengths
            self._name_symbols(data.symbols if symbols is None else symbols)
            self._attach(data.covariates if covariates is None else covariates)
            return
        if dim is not None:
            dim = check_int("dim", dim, minimum=1)
        pieces = self._split(data, lengths, dim)
        if not pieces:
            raise ValueError("data: expected at least one sequence, got none")
        dims = {piece.shape[1] for piece in pieces}
        if len(dims) != 1:
            raise ValueError(
                f"data: expected every sequence to have the same dimension, got {dims}"
            )
        for index, piece in enumerate(pieces):
            if piece.shape[0] == 0:
                raise ValueError(f"data: expected non-empty sequences, sequence {index} is empty")
        width = dims.pop()
        if width == 0:
            raise ValueError("data: expected at least one value per step, got dimension 0")
        if dim is not None and width != dim:
            raise ValueError(f"data: expected dimension dim={dim}, got {width}")
        max_length = max(piece.shape[0] for piece in pieces)
        values = np.full((len(pieces), max_length, width), np.nan)
        for index, piece in enumerate(pieces):
            values[index, : piece.shape[0]] = piece
        self.values = torch.from_numpy(values)
        self.lengths = torch.tensor([piece.shape[0] for piece in pieces], dtype=torch.long)
        self._name_symbols(symbols)
        self._attach(covariates)

    def _attach(self, covariates: Covariates | None) -> None:
        """Check that ``covariates`` line up with the sequences and keep them."""
        if covariates is None:
            return
        if not isinstance(covariates, Covariates):
            raise TypeError(
                f"covariates: expected a hmm_pyro.Covariates, got {describe(covariates)}"
            )
        if covariates.num_sequences != self.num_sequences:
            raise ValueError(
                f"covariates: expected {self.num_sequences} sequences (as the data), got "
                f"{covariates.num_sequences}"
            )
        wrong = torch.nonzero(covariates.lengths != self.lengths).flatten()
        if wrong.numel():
            n = int(wrong[0])
            raise ValueError(
                f"covariates: sequence {n} has {int(covariates.lengths[n])} steps, the data "
                f"{int(self.lengths[n])}; covariates need a value at every step"
            )
        self.covariates = covariates

    def with_covariates(self, covariates: Covariates | None) -> Sequences:
        """The same sequences with ``covariates`` attached (``None``: without covariates)."""
        result = Sequences(self, symbols=self.symbols)
        result.covariates = None
        result._attach(covariates)
        return result

    def _name_symbols(self, symbols: Sequence[str] | None) -> None:
        """Check that the values are codes of ``symbols`` and record the names."""
        if symbols is None:
            return
        names = check_symbols("symbols", symbols)
        observed = self.values[~torch.isnan(self.values)]
        if self.dim != 1:
            raise ValueError(
                f"symbols: named symbols are one value per step, got dimension {self.dim}"
            )
        bad = (observed != observed.round()) | (observed < 0) | (observed >= len(names))
        if bool(bad.any()):
            raise ValueError(
                f"symbols: expected codes 0 .. {len(names) - 1} of the {len(names)} names, got "
                f"{observed[bad][0].item()}"
            )
        self.symbols = names

    @staticmethod
    def _split(data: SequencesLike, lengths: Any, dim: int | None) -> list[np.ndarray]:
        """Return a list of ``(T_n, D)`` float arrays, one per sequence."""
        if isinstance(data, (str, Path)):
            raise TypeError(
                f"data: expected arrays, got the path {str(data)!r}; use Sequences.from_file"
            )
        if isinstance(data, pd.DataFrame):
            raise TypeError("data: got a DataFrame; use Sequences.from_dataframe(df, ...)")
        if isinstance(data, (list, tuple)) and _is_ragged(data):
            if lengths is not None:
                raise ValueError(
                    "lengths: expected None for a list of sequences (each has its own)"
                )
            pieces = []
            for index, item in enumerate(data):
                array = to_float_array(f"data[{index}]", item)
                if array.ndim == 1 and (dim is None or dim == 1):
                    array = array[:, None]
                if array.ndim != 2:
                    expected = "(T,)" if dim in (None, 1) else f"(T, {dim})"
                    raise ValueError(f"data[{index}]: expected shape {expected}, got {array.shape}")
                pieces.append(array)
            return pieces
        array = to_float_array("data", data)
        if array.ndim == 0:
            raise ValueError(f"data: expected a sequence, got a scalar {describe(data)}")
        if array.ndim == 1:
            array = array[None, :, None]
        elif array.ndim == 2:
            array = array[None] if dim not in (None, 1) else array[:, :, None]
        elif array.ndim != 3:
            raise ValueError(f"data: expected 1 to 3 dimensions, got shape {array.shape}")
        if lengths is None:
            return list(array)
        lengths = np.asarray(lengths)
        if lengths.shape != (array.shape[0],) or not np.issubdtype(lengths.dtype, np.integer):
            raise ValueError(
                f"lengths: expected {array.shape[0]} integers (one per sequence), "
                f"got {describe(lengths)}"
            )
        if (lengths < 1).any() or (lengths > array.shape[1]).any():
            raise ValueError(
                f"lengths: expected values in [1, {array.shape[1]}], got {lengths.tolist()}"
            )
        return [row[:length] for row, length in zip(array, lengths, strict=True)]

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_dataframe(
        cls,
        frame: pd.DataFrame,
        sequence: str | None = "sequence",
        time: str | None = "time",
        value: str | Sequence[str] = "value",
        gaps: str = "missing",
        symbols: Sequence[str] | None = None,
        covariates: Sequence[str] | None = None,
        standardize: bool = True,
    ) -> Sequences:
        """Build from a long-format table: one row per (sequence, time step).

        Parameters
        ----------
        frame : pandas.DataFrame
            The table.
        sequence : str or None
            Column with the sequence id; sequences keep the order of first appearance.
            ``None``: the whole table is one sequence.
        time : str or None
            Column ordering the steps within a sequence; ``None`` keeps row order. Whole-number
            times also place the steps: the time step is the greatest common divisor of the
            differences between consecutive times (over all sequences), and a larger
            difference is a gap (years 1900, 1901, 1903: one missing year).
        value : str or sequence of str
            Column(s) holding the observation; several columns give ``D > 1``. A single
            column of text gives named symbols (:attr:`symbols`), coded in sorted order.
        gaps : {"missing", "error", "ignore"}
            A gap's steps are missing observations (marginalised by every model; a
            :class:`TimeGapWarning` says how many), an error, or ignored (``"ignore"``: the
            time column only orders the rows, and may hold any sortable values).
        symbols : sequence of str, optional
            The alphabet of a text value column, in code order (e.g. a fit's, to code new data
            alike); default: its sorted distinct values.
        covariates : sequence of str, optional
            Columns read as :class:`~hmm_pyro.Covariates` (numbers at every step, gaps
            included: a step without a value is an error).
        standardize : bool
            Standardise the covariates (see :class:`~hmm_pyro.Covariates`).

        Returns
        -------
        Sequences

        Warns
        -----
        TimeGapWarning
            When ``gaps="missing"`` filled gaps, with their number and the first one.
        """
        table = split_long_table(frame, sequence, time, value, gaps=gaps, symbols=symbols)
        columns = [value] if isinstance(value, str) else list(value)
        pieces = []
        for values, positions, length in table.groups:
            piece = np.full((length, len(columns)), np.nan)
            piece[positions] = to_float_array(f"frame[{columns}]", values)
            pieces.append(piece)
        if table.gaps:
            warn(
                f"time column {time!r}: {table.gaps} gap(s), {table.missing_steps} skipped "
                f"step(s) of {table.step} (first: {table.example}), read as missing "
                "observations, which the models marginalise (gaps='error' refuses gaps)",
                TimeGapWarning,
            )
        return cls(
            pieces,
            dim=len(columns),
            symbols=table.symbols,
            covariates=covariates_from_table(frame, sequence, time, gaps, covariates, standardize),
        )

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        sequence: str | None = "sequence",
        time: str | None = "time",
        value: str | Sequence[str] = "value",
        gaps: str = "missing",
        symbols: Sequence[str] | None = None,
        covariates: Sequence[str] | None = None,
        standardize: bool = True,
    ) -> Sequences:
        """Read sequences from ``.csv`` (long format), ``.npy`` or ``.npz``.

        NumPy files are read without pickles (object arrays are refused) and with every
        array's declared size checked against the file and, like the padded sequences it
        would make, against the memory available, before anything is allocated.

        Parameters
        ----------
        path : str or pathlib.Path
            A CSV file with columns ``sequence``, ``time`` and ``value`` (see
            :meth:`from_dataframe`; in a file of one column every line is a step, an empty
            one a missing value); an ``.npy`` array (as for the constructor); or an ``.npz``
            archive holding either ``values`` (+ optional ``lengths``) or one array per sequence.
        sequence, time, value, gaps, symbols, covariates, standardize
            CSV input: the columns and their reading, as in :meth:`from_dataframe`.

        Returns
        -------
        Sequences

        Raises
        ------
        ValueError, TypeError
            For a missing file, a file that cannot be read, or data the constructor refuses;
            the message names the file and the problem (``TypeError`` for non-numeric values).
        """
        path = Path(path)
        if not path.exists():
            raise ValueError(f"path: expected an existing file, got {str(path)!r}")
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".npy", ".npz"):
            raise ValueError(f"path: expected a .csv, .npy or .npz file, got {path.name!r}")
        if covariates is not None and suffix != ".csv":
            raise ValueError(
                "covariates: columns of a CSV file; attach covariates to arrays with "
                "Sequences(..., covariates=Covariates(...))"
            )
        label = file_label("path", path)
        try:
            if suffix == ".csv":
                # named symbols are text even when a file holds only digits
                types = {value: str} if symbols is not None and isinstance(value, str) else None
                # one column: every line is a step (a blank one a space, an empty one missing)
                one_column = len(pd.read_csv(path, nrows=0).columns) == 1
                frame = pd.read_csv(path, dtype=types, skip_blank_lines=not one_column)
                return cls.from_dataframe(
                    frame,
                    sequence=sequence,
                    time=time,
                    value=value,
                    gaps=gaps,
                    symbols=symbols,
                    covariates=covariates,
                    standardize=standardize,
                )
            if suffix == ".npy":
                array = read_npy(path, "path", kinds=_FILE_KINDS)
                _check_padded_size(label, 1, array.size, 1)
                return cls(array)
            arrays = read_npz(path, "path", kinds=_FILE_KINDS)
            if "values" in arrays:
                _check_padded_size(label, 1, arrays["values"].size, 1)
                return cls(arrays["values"], lengths=arrays.get("lengths"))
            pieces = list(arrays.values())
            longest = max((piece.shape[0] if piece.ndim else 1 for piece in pieces), default=0)
            width = max((piece.shape[1] if piece.ndim == 2 else 1 for piece in pieces), default=0)
            _check_padded_size(label, len(pieces), longest, width)
            return cls(pieces)
        except (ValueError, TypeError, OverflowError, OSError) as error:
            text = " ".join(str(error).split())
            text = text if text.startswith(label) else f"{label}: {text}"
            raise (TypeError if isinstance(error, TypeError) else ValueError)(text) from error

    # ------------------------------------------------------------------ properties
    @property
    def num_sequences(self) -> int:
        """Number of sequences ``N``."""
        return int(self.values.shape[0])

    @property
    def max_length(self) -> int:
        """Padded length ``T_max``."""
        return int(self.values.shape[1])

    @property
    def dim(self) -> int:
        """Emission dimension ``D``."""
        return int(self.values.shape[2])

    def cached(self, key: Hashable, factory: Callable[[], Any]) -> Any:
        """Return ``factory()`` computed once per key (sequences are treated as immutable)."""
        if key not in self._cache:
            self._cache[key] = factory()
        return self._cache[key]

    @property
    def mask(self) -> torch.Tensor:
        """``(N, T_max)`` bool: True at steps inside each sequence (not padding)."""
        return self.cached("mask", lambda: torch.arange(self.max_length) < self.lengths[:, None])

    @property
    def observed(self) -> torch.Tensor:
        """``(N, T_max, D)`` bool: True where a value was observed (not missing, not padding)."""
        return self.cached("observed", lambda: ~torch.isnan(self.values))

    @property
    def complete(self) -> bool:
        """True if every entry of ``values`` is observed (no missing values, no padding)."""
        return self.cached("complete", lambda: bool(self.observed.all()))

    def filled(self, fill_value: float, dtype: torch.dtype) -> torch.Tensor:
        """``values`` with missing and padded entries replaced by ``fill_value``, in ``dtype``."""
        return self.cached(
            ("filled", fill_value, dtype),
            lambda: torch.where(self.observed, self.values, fill_value).to(dtype),
        )

    @property
    def num_observed(self) -> int:
        """Number of observed steps (steps with at least one observed coordinate)."""
        return int(self.observed.any(-1).sum())

    def __len__(self) -> int:
        return self.num_sequences

    def __getitem__(self, index: int) -> np.ndarray:
        """Return sequence ``index`` as a ``(T_n,)`` or ``(T_n, D)`` float array."""
        row = self.values[index, : int(self.lengths[index])].numpy()
        return row[:, 0] if self.dim == 1 else row

    def to_list(self) -> list[np.ndarray]:
        """Return the sequences as a list of float arrays (NaN at missing values)."""
        return [self[index] for index in range(self.num_sequences)]

    def to_dataframe(self) -> pd.DataFrame:
        """Return a long-format table: ``sequence``, ``time``, ``value`` and the covariates.

        The covariates' columns hold their values as given (not standardised).
        """
        rows = []
        for index in range(self.num_sequences):
            row = self.values[index, : int(self.lengths[index])].numpy()
            frame = pd.DataFrame(
                row, columns=["value"] if self.dim == 1 else [f"value_{d}" for d in range(self.dim)]
            )
            frame.insert(0, "time", np.arange(len(row)))
            frame.insert(0, "sequence", index)
            if self.covariates is not None:
                raw = self.covariates.raw[index, : len(row)].numpy()
                for position, name in enumerate(self.covariates.names):
                    frame[name] = raw[:, position]
            rows.append(frame)
        return pd.concat(rows, ignore_index=True)

    def to_file(self, path: str | Path, integer: bool = False) -> Path:
        """Write the sequences to ``.csv`` (long format), ``.npy`` or ``.npz``, by the suffix.

        :meth:`from_file` reads every file back. The file is written under a temporary name and
        renamed at the end (:func:`hmm_pyro._io.atomic_path`): it is either complete or absent.

        Parameters
        ----------
        path : str or pathlib.Path
            The file. ``.csv``: the :meth:`to_dataframe` table. ``.npz``: ``values``
            ``(N, T_max)`` (``(N, T_max, D)`` for ``D > 1``, NaN at padding) and ``lengths``.
            ``.npy``: the values alone, so every sequence must have the same length.
        integer : bool
            Write the CSV value columns as integers (counts, symbols) rather than floats;
            missing values stay empty cells. Other formats ignore it.

        Returns
        -------
        pathlib.Path
            ``path``.

        Raises
        ------
        ValueError
            For another suffix, ``.npy`` with sequences of different lengths, or
            ``integer=True`` with values that are not whole numbers.

        Examples
        --------
        >>> Sequences([[0, 1, 1], [2, 0]]).to_file("symbols.csv", integer=True)  # doctest: +SKIP
        PosixPath('symbols.csv')
        """
        path = Path(path)
        integer = check_bool("integer", integer)
        suffix = path.suffix.lower()
        values = self.values.numpy()
        if self.dim == 1:
            values = values[..., 0]
        if suffix == ".csv":
            frame = self.to_dataframe()
            if integer:
                columns = [column for column in frame.columns if column.startswith("value")]
                observed = frame[columns].to_numpy()
                observed = observed[~np.isnan(observed)]
                fractional = observed[observed != np.round(observed)]
                if fractional.size:
                    raise ValueError(
                        f"integer: expected whole numbers for integer=True, got {fractional[0]}"
                    )
                frame[columns] = frame[columns].astype("Int64")
            with atomic_path(path) as temporary:
                frame.to_csv(temporary, index=False)
        elif suffix == ".npz":
            with atomic_path(path) as temporary:
                np.savez(temporary, values=values, lengths=self.lengths.numpy())
        elif suffix == ".npy":
            if len(set(self.lengths.tolist())) != 1:
                raise ValueError("path: .npy needs sequences of equal length; use .csv or .npz")
            with atomic_path(path) as temporary:
                np.save(temporary, values)
        else:
            raise ValueError(f"path: expected a .csv, .npz or .npy file name, got {path.name!r}")
        return path

    def select(self, index: Sequence[int] | torch.Tensor) -> Sequences:
        """Return the subset of sequences at ``index`` (padding trimmed)."""
        index = torch.as_tensor(index, dtype=torch.long)
        subset = Sequences.__new__(Sequences)
        subset._cache = {}
        lengths = self.lengths[index]
        subset.values = self.values[index, : int(lengths.max())]
        subset.lengths = lengths
        subset.symbols = self.symbols
        if self.covariates is not None:
            subset.covariates = self.covariates.select(index)
        return subset

    def __repr__(self) -> str:
        lengths = self.lengths.tolist()
        shown = lengths if len(lengths) <= 6 else [*lengths[:5], "..."]
        missing = int((~self.observed).sum()) - int((~self.mask).sum()) * self.dim
        named = ""
        if self.symbols is not None:
            names = ", ".join(repr(name) for name in self.symbols[:5])
            named = f", symbols=[{names}{', ...' if len(self.symbols) > 5 else ''}]"
        if self.covariates is not None:
            named += f", covariates={list(self.covariates.names)}"
        return (
            f"Sequences(num_sequences={self.num_sequences}, dim={self.dim}, "
            f"lengths={shown}, missing={missing}{named})"
        )


def as_sequences(data: SequencesLike) -> Sequences:
    """Return ``data`` as :class:`Sequences` (unchanged if it already is one)."""
    return data if isinstance(data, Sequences) else Sequences(data)
