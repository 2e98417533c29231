"""``Covariates``: numbers observed at every step of every sequence, for transition regressions.

A :class:`Covariates` holds ``P`` named columns, one row per step, aligned with the sequences
of a :class:`~hmm_pyro.Sequences` (same number of sequences, same lengths); attach it with
``Sequences(..., covariates=...)``, :meth:`hmm_pyro.Sequences.with_covariates` or read it
from the columns of a table (:meth:`hmm_pyro.Sequences.from_dataframe`). The columns are
standardised by default (mean 0 and standard deviation 1 over all steps of all sequences), and
the means and standard deviations are kept, so that coefficients fitted on the standardised
scale can be read, and new values given, on the original one.

Layer rule: ``covariates`` imports only ``kernels`` and the private utilities; ``data`` and every
layer above import it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from hmm_pyro._numeric import to_float_array
from hmm_pyro._tables import split_long_table
from hmm_pyro._validation import check_bool, describe

__all__ = ["INTERCEPT", "Covariates", "covariates_from_table"]

INTERCEPT = "intercept"
"""Name of the constant term of the regressions (not allowed as a covariate name)."""


def _check_names(names: Sequence[str] | None, count: int) -> tuple[str, ...]:
    if names is None:
        return tuple(f"x{index}" for index in range(count))
    if isinstance(names, (str, bytes)) or not isinstance(names, Sequence):
        raise TypeError(f"names: expected a list of covariate names, got {describe(names)}")
    names = tuple(names)
    if not all(isinstance(name, str) and name != "" for name in names):
        raise TypeError(f"names: expected non-empty strings, got {describe(list(names))}")
    if len(names) != count:
        raise ValueError(f"names: expected {count} names (one per column), got {len(names)}")
    if len(set(names)) != len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise ValueError(f"names: expected distinct names, {repeated} repeat")
    if INTERCEPT in names:
        raise ValueError(f"names: {INTERCEPT!r} is the name of the regressions' constant term")
    return names


def _pieces(values: Any, lengths: Any) -> list[np.ndarray]:
    """Per-sequence ``(T_n, P)`` float arrays from a list of arrays or a padded 3-D array."""
    if isinstance(values, (list, tuple)):
        if lengths is not None:
            raise ValueError("lengths: expected None for a list of sequences (each has its own)")
        if not values:
            raise ValueError("values: expected at least one sequence, got none")
        pieces = []
        for index, item in enumerate(values):
            array = to_float_array(f"values[{index}]", item)
            array = array[:, None] if array.ndim == 1 else array
            if array.ndim != 2:
                raise ValueError(
                    f"values[{index}]: expected shape (T,) or (T, P), got {array.shape}"
                )
            pieces.append(array)
        return pieces
    array = to_float_array("values", values)
    if array.ndim != 3:
        raise ValueError(
            "values: expected a list of (T_n, P) arrays (one per sequence) or an (N, T, P) "
            f"array, got shape {array.shape}"
        )
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


class Covariates:
    """Covariates of every step of every sequence: ``P`` named real columns.

    Parameters
    ----------
    values : list of array-like or array-like
        One ``(T_n, P)`` array per sequence (``(T_n,)`` for one covariate), or an ``(N, T, P)``
        array whose rows are cut to ``lengths``. Every value must be a finite real number.
    names : sequence of str, optional
        Names of the ``P`` columns (default ``x0, x1, ...``); ``"intercept"`` is reserved.
    standardize : bool
        Centre and scale every column to mean 0 and standard deviation 1 over all steps
        (default). The means and standard deviations are kept (:attr:`means`, :attr:`sds`).
    lengths : sequence of int, optional
        Steps of each row of an ``(N, T, P)`` array (default: all ``T``).

    Attributes
    ----------
    names : tuple of str
        Column names.
    values : torch.Tensor
        ``(N, T_max, P)`` float64, standardised when :attr:`standardized`, zero at padding.
    raw : torch.Tensor
        ``(N, T_max, P)`` float64 as given, NaN at padding.
    lengths : torch.Tensor
        ``(N,)`` int64 steps of each sequence.
    means, sds : torch.Tensor
        ``(P,)`` float64: ``values = (raw - means) / sds`` (0 and 1 without standardising).
    standardized : bool
        Whether the columns were standardised.

    Raises
    ------
    TypeError
        For values that are not real numbers (text, complex numbers, dates), naming the
        sequence.
    ValueError
        For NaN or infinite values (with the sequence, step and column), sequences of
        different widths, a constant column to standardise, or bad names.

    Examples
    --------
    >>> cov = Covariates([[[0.0], [1.0], [2.0]], [[1.0], [3.0]]], names=["hour"])
    >>> cov.lengths.tolist(), [round(v, 3) for v in cov.values[0, :, 0].tolist()]
    ([3, 2], [-1.373, -0.392, 0.588])
    """

    def __init__(
        self,
        values: Any,
        names: Sequence[str] | None = None,
        standardize: bool = True,
        lengths: Sequence[int] | np.ndarray | torch.Tensor | None = None,
    ) -> None:
        standardize = bool(check_bool("standardize", standardize))
        pieces = _pieces(values, lengths)
        widths = {piece.shape[1] for piece in pieces}
        if len(widths) != 1:
            raise ValueError(
                f"values: expected every sequence to have the same columns, got {widths}"
            )
        width = widths.pop()
        if width == 0:
            raise ValueError("values: expected at least one covariate column, got none")
        for index, piece in enumerate(pieces):
            if piece.shape[0] == 0:
                raise ValueError(f"values: expected non-empty sequences, sequence {index} is empty")
        self.names = _check_names(names, width)
        for index, piece in enumerate(pieces):
            bad = np.argwhere(np.isnan(piece))
            if bad.size:
                step, column = bad[0]
                raise ValueError(
                    f"values: NaN in sequence {index} at step {step} (column "
                    f"{self.names[column]!r}); covariates must be observed at every step"
                )
        longest = max(piece.shape[0] for piece in pieces)
        raw = np.full((len(pieces), longest, width), np.nan)
        for index, piece in enumerate(pieces):
            raw[index, : piece.shape[0]] = piece
        stacked = np.concatenate(pieces)
        if standardize:
            means, sds = stacked.mean(0), stacked.std(0)
            constant = [name for name, sd in zip(self.names, sds, strict=True) if not sd > 0]
            if constant:
                raise ValueError(
                    f"values: column(s) {constant} are constant and cannot be standardised (a "
                    "constant covariate duplicates the intercept); drop them"
                )
        else:
            means, sds = np.zeros(width), np.ones(width)
        self._build(torch.from_numpy(raw), torch.from_numpy(means), torch.from_numpy(sds))
        self.standardized = standardize

    def _build(self, raw: torch.Tensor, means: torch.Tensor, sds: torch.Tensor) -> None:
        self.raw = raw
        self.lengths = (~torch.isnan(raw[..., 0])).sum(-1)
        self.means, self.sds = means, sds
        self.values = torch.nan_to_num((raw - means) / sds, nan=0.0)

    @classmethod
    def from_standardization(
        cls,
        raw: np.ndarray | torch.Tensor,
        names: Sequence[str],
        means: np.ndarray | torch.Tensor,
        sds: np.ndarray | torch.Tensor,
        standardized: bool,
    ) -> Covariates:
        """Rebuild covariates from NaN-padded raw values and a recorded standardisation.

        Parameters
        ----------
        raw : array-like
            ``(N, T_max, P)`` values as given, NaN at padding (:attr:`raw`).
        names : sequence of str
            Column names.
        means, sds : array-like
            ``(P,)`` the standardisation to apply (e.g. a fit's: new data coded alike).
        standardized : bool
            Recorded as :attr:`standardized`.

        Returns
        -------
        Covariates
        """
        raw = torch.as_tensor(np.asarray(raw, dtype=np.float64))
        means = torch.as_tensor(np.asarray(means, dtype=np.float64))
        sds = torch.as_tensor(np.asarray(sds, dtype=np.float64))
        if raw.dim() != 3 or means.shape != (raw.shape[-1],) or sds.shape != means.shape:
            raise ValueError(
                f"raw, means, sds: expected (N, T, P), (P,) and (P,), got {tuple(raw.shape)}, "
                f"{tuple(means.shape)} and {tuple(sds.shape)}"
            )
        if not bool((sds > 0).all()) or not bool(torch.isfinite(means).all()):
            raise ValueError("means, sds: expected finite means and positive standard deviations")
        covariates = cls.__new__(cls)
        covariates.names = _check_names(names, raw.shape[-1])
        covariates._build(raw, means, sds)
        covariates.standardized = bool(standardized)
        return covariates

    def to_standardization(self) -> dict[str, Any]:
        """The plain arrays that :meth:`from_standardization` rebuilds these covariates from.

        What a task run in another process carries (NumPy arrays, a list, a flag: picklable
        and light): ``Covariates.from_standardization(**record)`` gives the same raw values,
        names, means, standard deviations and standardised values, bit for bit.

        Returns
        -------
        dict
            ``raw`` ``(N, T_max, P)`` (NaN at padding), ``names``, ``means`` and ``sds``
            ``(P,)``, ``standardized``.
        """
        return {
            "raw": self.raw.numpy(),
            "names": list(self.names),
            "means": self.means.numpy(),
            "sds": self.sds.numpy(),
            "standardized": self.standardized,
        }

    # ------------------------------------------------------------------ properties
    @property
    def num_sequences(self) -> int:
        """Number of sequences ``N``."""
        return int(self.raw.shape[0])

    @property
    def num_covariates(self) -> int:
        """Number of columns ``P``."""
        return len(self.names)

    def __len__(self) -> int:
        return self.num_sequences

    def __repr__(self) -> str:
        scale = "standardised" if self.standardized else "as given"
        return f"Covariates(names={list(self.names)}, num_sequences={self.num_sequences}, {scale})"

    # ------------------------------------------------------------------ access
    def index(self, names: Sequence[str], what: str = "names") -> list[int]:
        """Column positions of ``names``; ``ValueError`` naming ``what`` for unknown ones."""
        unknown = [name for name in names if name not in self.names]
        if unknown:
            raise ValueError(
                f"{what}: {unknown} not among the covariates {list(self.names)} of the data"
            )
        return [self.names.index(name) for name in names]

    def columns(self, names: Sequence[str]) -> torch.Tensor:
        """Standardised values of the columns ``names``: ``(N, T_max, len(names))``."""
        return self.values[..., self.index(names)]

    def select(self, index: Sequence[int] | torch.Tensor) -> Covariates:
        """The covariates of the sequences at ``index`` (padding trimmed)."""
        index = torch.as_tensor(index, dtype=torch.long)
        longest = int(self.lengths[index].max())
        return Covariates.from_standardization(
            self.raw[index, :longest], self.names, self.means, self.sds, self.standardized
        )

    def standardize_like(self, reference: Covariates) -> Covariates:
        """These values on ``reference``'s scale: its means and standard deviations.

        New data for a fitted model must be coded as the data it was fitted to. The names of
        ``reference`` must all be present (extra columns are dropped).
        """
        if not isinstance(reference, Covariates):
            raise TypeError(f"reference: expected Covariates, got {describe(reference)}")
        positions = self.index(reference.names, "covariates")
        return Covariates.from_standardization(
            self.raw[..., positions],
            reference.names,
            reference.means,
            reference.sds,
            reference.standardized,
        )

    def same_scale(self, other: Covariates) -> bool:
        """Whether ``other`` has the same names, means and standard deviations."""
        return (
            self.names == other.names
            and torch.equal(self.means, other.means)
            and torch.equal(self.sds, other.sds)
        )

    def standardize_rows(self, rows: Mapping[str, Any] | np.ndarray | torch.Tensor) -> torch.Tensor:
        """Standardise values given on the original scale: ``(M, P)`` float64.

        Parameters
        ----------
        rows : dict or array-like
            ``{name: value or (M,) values}`` (names not given sit at their mean, i.e. 0 after
            standardising), or an ``(M, P)`` / ``(P,)`` array in the order of :attr:`names`.

        Returns
        -------
        torch.Tensor
            ``(M, P)`` on the standardised scale.
        """
        if isinstance(rows, Mapping):
            self.index(list(rows), "covariates")
            columns = {}
            for name, value in rows.items():
                array = to_float_array(f"covariates[{name!r}]", value)
                if array.ndim > 1:
                    raise ValueError(
                        f"covariates[{name!r}]: expected a number or a 1-D array, got shape "
                        f"{array.shape}"
                    )
                columns[name] = np.atleast_1d(array)
            sizes = {array.shape[0] for array in columns.values()} - {1}
            if len(sizes) > 1:
                raise ValueError(f"covariates: expected values of one length, got {sorted(sizes)}")
            count = sizes.pop() if sizes else 1
            table = self.means.numpy()[None].repeat(count, 0)
            for name, array in columns.items():
                table[:, self.names.index(name)] = array
        else:
            table = to_float_array("covariates", rows)
            table = table[None] if table.ndim == 1 else table
            if table.ndim != 2 or table.shape[1] != self.num_covariates:
                raise ValueError(
                    f"covariates: expected (M, {self.num_covariates}) values in the order "
                    f"{list(self.names)}, got shape {table.shape}"
                )
        if not np.isfinite(table).all():
            raise ValueError("covariates: expected finite values, got NaN or inf")
        return (torch.from_numpy(np.ascontiguousarray(table)) - self.means) / self.sds


def covariates_from_table(
    frame: pd.DataFrame,
    sequence: str | None,
    time: str | None,
    gaps: str,
    columns: Sequence[str] | None,
    standardize: bool,
) -> Covariates | None:
    """The covariate ``columns`` of a long table, split and placed as its values are.

    The reading of :meth:`hmm_pyro.Sequences.from_dataframe` (same sequence and time columns,
    same gaps); ``None`` without columns. Errors name the option ``covariates``.
    """
    if columns is None:
        return None
    if isinstance(columns, str) or not isinstance(columns, Sequence) or not columns:
        raise TypeError(f"covariates: expected a non-empty list of column names, got {columns!r}")
    columns = list(columns)
    table = split_long_table(frame, sequence, time, columns, gaps=gaps)
    if table.symbols is not None:
        raise TypeError(f"covariates: columns {columns} hold text; expected numbers")
    pieces = []
    for index, (values, positions, length) in enumerate(table.groups):
        piece = np.full((length, len(columns)), np.nan)
        piece[positions] = to_float_array(f"covariates {columns}", values)
        bad = np.argwhere(np.isnan(piece))
        if bad.size:
            step, column = bad[0]
            raise ValueError(
                f"covariates: no value of {columns[column]!r} in sequence {index} at step "
                f"{step} (an empty cell, or a gap in the time column); covariates must be "
                "observed at every step"
            )
        pieces.append(piece)
    try:
        return Covariates(pieces, names=columns, standardize=standardize)
    except ValueError as error:
        raise ValueError("covariates: " + str(error).split(": ", 1)[-1]) from error
