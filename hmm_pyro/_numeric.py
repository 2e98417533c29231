"""Numbers from array-likes: refuse what is not real numbers, convert to float64 with NaN.

Shared by :class:`hmm_pyro.Sequences` (observations) and :class:`hmm_pyro.Covariates`.

Private utility: imports NumPy, pandas, torch and :mod:`hmm_pyro._validation` only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from hmm_pyro._validation import describe

__all__ = ["check_numeric", "to_float_array"]

_NUMERIC_KINDS = "biuf"
"""NumPy dtype kinds accepted as observations: bool, signed/unsigned integer, float."""


def check_numeric(name: str, value: Any) -> None:
    """Raise ``TypeError`` for values that NumPy would cast to float but are not numbers.

    Strings (``"1"``), bytes, complex numbers (the imaginary part would be dropped), dates and
    time spans are rejected; object arrays may hold numbers and ``None`` (missing).
    """
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name}: expected numeric values, got {describe(value)}")
    if isinstance(value, torch.Tensor):
        if value.is_complex():
            raise TypeError(
                f"{name}: expected numeric values (real numbers), got {describe(value)}"
            )
        return
    if isinstance(value, pd.DataFrame):
        columns = [value[column] for column in value.columns]
    elif isinstance(value, pd.Series):
        columns = [value]
    else:
        columns = []
    for column in columns:
        if not (
            pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype)
        ) or pd.api.types.is_complex_dtype(column.dtype):
            if column.dtype == object and all(
                item is None or isinstance(item, (int, float, np.integer, np.floating))
                for item in column
            ):
                continue
            raise TypeError(f"{name}: expected numeric columns, got dtype {column.dtype}")
    if columns:
        return
    try:
        kind = np.asarray(value).dtype.kind
    except (TypeError, ValueError):
        return  # ragged or otherwise not an array: the float conversion reports it
    if kind == "O":
        for item in np.asarray(value, dtype=object).flat:
            if isinstance(item, (str, bytes, complex, np.complexfloating)):
                raise TypeError(f"{name}: expected numeric values, got {describe(item)}")
    elif kind not in _NUMERIC_KINDS:
        raise TypeError(f"{name}: expected numeric values (real numbers), got {describe(value)}")


def to_float_array(name: str, value: Any) -> np.ndarray:
    """Convert one array-like to float64 with NaN at masked / missing entries."""
    check_numeric(name, value)
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        if isinstance(value, np.ma.MaskedArray):
            value = value.astype(np.float64).filled(np.nan)
        if isinstance(value, (pd.Series, pd.DataFrame)):
            value = value.to_numpy(dtype=np.float64, na_value=np.nan)
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name}: expected numeric values, got {describe(value)}") from error
    if np.isinf(array).any():
        raise ValueError(f"{name}: expected finite values or NaN for missing, got inf")
    return array
