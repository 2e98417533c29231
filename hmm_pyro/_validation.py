"""Small argument validators: each raises a ``ValueError``/``TypeError`` naming the argument.

Messages follow one pattern: ``"<name>: expected <what>, got <actual>"`` so that a user sees
which argument is wrong, what was expected and what arrived.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "check_bool",
    "check_choice",
    "check_int",
    "check_positive",
    "describe",
    "find_stack_level",
    "warn",
]


def describe(value: object) -> str:
    """Return a short description of ``value`` for an error message."""
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_choice(name: str, value: object, choices: Iterable[object]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    options = tuple(choices)
    if value not in options:
        raise ValueError(f"{name}: expected one of {options}, got {describe(value)}")


def check_bool(name: str, value: object, allow_none: bool = False) -> bool | None:
    """Return ``value`` as ``bool``; raise ``TypeError`` unless it is a boolean.

    Parameters
    ----------
    name : str
        Argument name, for the message.
    value : object
        A Python or NumPy boolean (or ``None`` when ``allow_none``).
    allow_none : bool
        Accept ``None`` (returned unchanged: "choose automatically").

    Returns
    -------
    bool or None
    """
    if value is None and allow_none:
        return None
    if not isinstance(value, (bool, np.bool_)):
        expected = "True, False or None" if allow_none else "True or False"
        raise TypeError(f"{name}: expected {expected}, got {describe(value)}")
    return bool(value)


def check_int(name: str, value: object, minimum: int | None = None) -> int:
    """Return ``value`` as ``int``; raise unless it is an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {describe(value)}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return int(value)


def check_positive(name: str, value: object, allow_zero: bool = False) -> float:
    """Return ``value`` as ``float``; raise unless it is a finite positive number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a number, got {describe(value)}")
    number = float(value)
    if not np.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: expected a finite number {bound}, got {number}")
    return number


_PACKAGE_DIR = str(Path(__file__).resolve().parent)


def find_stack_level() -> int:
    """Return the ``stacklevel`` that points a warning at the first frame outside hmm_pyro."""
    frame = inspect.currentframe()
    level = 0
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    return max(level, 1)


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """Issue a warning attributed to the user's line of code."""
    warnings.warn(message, category, stacklevel=find_stack_level())
