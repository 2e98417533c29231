"""Long-format tables (one row per step) split into sequences: ids, time order, gaps, text values.

:meth:`hmm_pyro.Sequences.from_dataframe` is the public route; this module does the table work
that does not depend on how values become tensors:

- rows are grouped by the sequence column (or form one sequence without one);
- a time column orders the steps; integer times also place them: the time step is the
  greatest common divisor of the differences between consecutive times (over all sequences),
  and a difference of several steps is a gap whose steps are missing observations
  (``gaps="missing"``), refused (``"error"``) or ignored (``"ignore"``: the rows are only
  ordered);
- a value column of text becomes named symbols, coded ``0 .. V-1`` in the order of the
  alphabet (given, or the sorted distinct values).

Private utility: imports NumPy, pandas and the other private utilities only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hmm_pyro._archive import check_memory
from hmm_pyro._validation import check_choice, describe

__all__ = ["GAP_MODES", "LongTable", "check_symbols", "split_long_table"]

GAP_MODES = ("missing", "error", "ignore")
"""What a time column's gaps become: missing observations, an error, or nothing (order only)."""

_EXACT_INTEGERS = 2**53
"""Largest time magnitude held exactly by a float64 (times beyond it cannot be compared)."""


@dataclass(frozen=True)
class LongTable:
    """A long-format table split into sequences.

    Attributes
    ----------
    groups : list of (pandas.DataFrame, numpy.ndarray, int)
        Per sequence: its value columns (rows in time order; text already coded), the position
        of each row among the sequence's steps, and the number of steps.
    symbols : tuple of str or None
        Names of the symbols when the values were text.
    missing_steps : int
        Steps inserted as missing observations at gaps of the time column.
    gaps : int
        Number of gaps (differences of more than one time step).
    step : int or None
        The time step (``None`` when the time column was not used to place steps).
    example : str
        The first gap, e.g. ``"sequence 0 from 0 to 5"`` (empty without gaps).
    """

    groups: list[tuple[pd.DataFrame, np.ndarray, int]]
    symbols: tuple[str, ...] | None
    missing_steps: int
    gaps: int
    step: int | None
    example: str


def check_symbols(name: str, symbols: Sequence[str]) -> tuple[str, ...]:
    """Return ``symbols`` as a tuple of at least two distinct non-empty strings, or raise.

    Parameters
    ----------
    name : str
        Argument name, for the message.
    symbols : sequence of str
        Names of the symbols, in code order.

    Returns
    -------
    tuple of str
    """
    if isinstance(symbols, (str, bytes)) or not isinstance(symbols, Sequence):
        raise TypeError(f"{name}: expected a list of symbol names, got {describe(symbols)}")
    names = tuple(symbols)
    if not all(isinstance(item, str) and item != "" for item in names):
        raise TypeError(f"{name}: expected non-empty strings, got {describe(list(names))}")
    if len(set(names)) != len(names):
        repeated = sorted({item for item in names if names.count(item) > 1})
        raise ValueError(f"{name}: expected distinct names, {repeated} repeat")
    if len(names) < 2:
        raise ValueError(f"{name}: expected at least 2 symbols, got {list(names)}")
    return names


def _is_text(column: pd.Series) -> bool:
    """True for a column of strings (missing entries allowed), not one of numbers."""
    if pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
        return False
    present = column.dropna()
    return len(present) > 0 and all(isinstance(item, str) for item in present)


def _encode(
    frame: pd.DataFrame, columns: list[str], symbols: Sequence[str] | None
) -> tuple[pd.DataFrame, tuple[str, ...] | None]:
    """Code a text value column as symbols ``0 .. V-1``; other tables pass unchanged."""
    text = [column for column in columns if _is_text(frame[column])]
    if symbols is not None:
        names = check_symbols("symbols", symbols)
        if len(columns) != 1 or not text:
            if len(columns) == 1 and frame[columns[0]].isna().all():
                return frame, names
            raise ValueError(
                f"symbols: given, but column(s) {columns} do not hold text values; named "
                "symbols are read from one column of text"
            )
    elif not text:
        return frame, None
    if len(columns) != 1:
        raise ValueError(
            f"frame: column(s) {text} hold text; text values (named symbols) need a single "
            f"value column, got {columns}"
        )
    column = frame[columns[0]]
    if symbols is None:
        names = tuple(sorted(set(column.dropna())))
        if len(names) < 2:
            raise ValueError(
                f"frame: column {columns[0]!r} holds one text value, {names[0]!r}; named "
                "symbols need at least 2 (pass symbols=[...] to name the others)"
            )
    codes = {name: code for code, name in enumerate(names)}
    unknown = sorted(set(column.dropna()) - set(codes))
    if unknown:
        raise ValueError(
            f"frame: column {columns[0]!r} holds {unknown[:5]}, not among the symbols "
            f"{list(names)[:10]}{' ...' if len(names) > 10 else ''}"
        )
    coded = frame.copy()
    coded[columns[0]] = column.map(codes).astype(np.float64)
    return coded, names


def _integer_times(times: pd.Series, time: str) -> np.ndarray:
    """The time column as int64, or ``ValueError`` when it does not hold whole numbers."""
    advice = "pass gaps='ignore' to only order the rows by it"
    if not pd.api.types.is_numeric_dtype(times.dtype) or pd.api.types.is_bool_dtype(times.dtype):
        example = times.dropna().iloc[0] if times.notna().any() else None
        raise ValueError(
            f"frame: column {time!r} must hold whole numbers to find gaps, got "
            f"{describe(example)}; {advice}"
        )
    values = times.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values != np.round(values)) | (np.abs(values) > _EXACT_INTEGERS)
    if bad.any():
        raise ValueError(
            f"frame: column {time!r} must hold whole numbers to find gaps, got "
            f"{values[bad][0]}; {advice}"
        )
    return values.astype(np.int64)


def _check_size(count: int, length: int, width: int) -> None:
    """Refuse ``count`` padded sequences that would not fit in memory (float64, held twice)."""
    check_memory(2 * 8 * count * length * width, "frame")


def split_long_table(
    frame: pd.DataFrame,
    sequence: str | None,
    time: str | None,
    value: str | Sequence[str],
    gaps: str = "missing",
    symbols: Sequence[str] | None = None,
) -> LongTable:
    """Split a long-format table into sequences (see the module notes).

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per step.
    sequence : str or None
        Sequence id column; ``None``: the whole table is one sequence.
    time : str or None
        Column ordering (and, with integer times, placing) the steps; ``None`` keeps row order.
    value : str or sequence of str
        Value column(s).
    gaps : {"missing", "error", "ignore"}
        What a gap of the time column becomes.
    symbols : sequence of str, optional
        The alphabet of a text value column (codes follow its order); default: the sorted
        distinct values.

    Returns
    -------
    LongTable
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame: expected a pandas DataFrame, got {describe(frame)}")
    check_choice("gaps", gaps, GAP_MODES)
    columns = [value] if isinstance(value, str) else list(value)
    needed = [*([sequence] if sequence is not None else []), *columns]
    needed += [time] if time is not None else []
    missing = [column for column in needed if column not in frame.columns]
    if missing:
        raise ValueError(
            f"frame: expected columns {needed}, missing {missing}; got {list(frame.columns)}"
        )
    if frame.empty:
        raise ValueError("frame: expected at least one row, got an empty table")
    if sequence is not None and frame[sequence].isna().any():  # groupby would drop these rows
        raise ValueError(f"frame: column {sequence!r} has rows without a sequence id")
    counts = [len(frame)] if sequence is None else frame.groupby(sequence, sort=False).size()
    _check_size(len(counts), int(max(counts)), len(columns))  # before any per-sequence work
    frame, names = _encode(frame, columns, symbols)
    if sequence is None:
        parts = [("", frame)]
    else:
        parts = list(frame.groupby(sequence, sort=False))
    place = time is not None and gaps != "ignore"
    ordered, all_times, differences = [], [], []
    for ident, group in parts:
        if time is not None:
            if group[time].duplicated().any():
                raise ValueError(f"frame: column {time!r} repeats a time within a sequence")
            group = group.sort_values(time, kind="stable")
        ordered.append((ident, group))
        if place:
            times = _integer_times(group[time], time)
            all_times.append(times)
            differences.append(np.diff(times))
    step = None
    total_gaps = missing_steps = 0
    example = ""
    if place:
        joined = np.concatenate(differences)
        step = int(np.gcd.reduce(joined)) if joined.size else 1
        for (ident, _), diff, times in zip(ordered, differences, all_times, strict=True):
            jumps = np.flatnonzero(diff > step)
            if jumps.size and not example:
                where = f"sequence {ident!r} " if sequence is not None else ""
                example = f"{where}from {times[jumps[0]]} to {times[jumps[0] + 1]}"
            total_gaps += int(jumps.size)
            missing_steps += int((diff[jumps] // step - 1).sum())
        if total_gaps and gaps == "error":
            raise ValueError(
                f"frame: column {time!r} skips steps ({total_gaps} gap(s), e.g. {example}, with "
                f"time step {step}); pass gaps='missing' to make them missing observations"
            )
    lengths = [
        len(group) if not place else int((times[-1] - times[0]) // step) + 1
        for (_, group), times in zip(ordered, all_times or [None] * len(ordered), strict=True)
    ]
    _check_size(len(lengths), max(lengths), len(columns))  # gaps lengthen the sequences
    groups = []
    for index, (_, group) in enumerate(ordered):
        if place:
            positions = (all_times[index] - all_times[index][0]) // step
        else:
            positions = np.arange(len(group))
        groups.append((group[columns], positions, lengths[index]))
    return LongTable(groups, names, missing_steps, total_gaps, step, example)
