"""Type aliases shared across the package (annotations only: no behaviour).

Layer rule: a private utility; it imports nothing from ``hmm_pyro`` at run time (the
``TYPE_CHECKING`` import below is for type checkers and is excluded from the import contracts).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import torch

if TYPE_CHECKING:
    import pandas as pd

    from hmm_pyro.data import Sequences

__all__ = ["Params", "SequencesLike"]

Params = dict[str, torch.Tensor]
"""Parameters by name (``pi``, ``A`` and the emission's), trailing shapes as
:meth:`hmm_pyro.HMM.param_shapes`; leading dimensions are draws."""

SequencesLike = Union[
    "Sequences",
    "pd.DataFrame",
    np.ndarray,
    torch.Tensor,
    Sequence[Any],
    str,
    "os.PathLike[str]",
]
"""What :class:`hmm_pyro.Sequences` accepts: a ``Sequences``, ragged lists, arrays or tensors
``(N, T)`` / ``(N, T, D)``, a long-format ``DataFrame``, or a path to a CSV/NPY/NPZ file."""
