"""Permutations of state labels and how they act on HMM parameters.

A permutation is an integer array ``perm`` of length ``K`` (with any leading draw dimensions):
``perm[j]`` is the old label that becomes new label ``j``. It acts as

    pi'[j] = pi[perm[j]],   A'[i, j] = A[perm[i], perm[j]],   B'[j] = B[perm[j]],
    gamma'_t[j] = gamma_t[perm[j]],

i.e. ``A' = P A P^T`` with the permutation matrix ``P[j, perm[j]] = 1``. Every axis named
``"state"`` or ``"state_to"`` in :meth:`hmm_pyro.HMM.param_dims` is permuted.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import xarray as xr

from hmm_pyro.model import HMM

__all__ = [
    "STATE_DIMS",
    "compose",
    "identity",
    "invert",
    "permutation_matrix",
    "permute_axis",
    "permute_dataset",
    "permute_params",
]

STATE_DIMS = ("state", "state_to")


def identity(num_states: int, batch: tuple[int, ...] = ()) -> np.ndarray:
    """Identity permutations ``(*batch, K)``."""
    return np.broadcast_to(np.arange(num_states), (*batch, num_states)).copy()


def invert(perms: np.ndarray) -> np.ndarray:
    """Inverse permutations: ``compose(perms, invert(perms))`` is the identity."""
    return np.argsort(np.asarray(perms), axis=-1)


def compose(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The permutation that applies ``first`` and then ``second``: ``first[second]``."""
    first, second = np.broadcast_arrays(np.asarray(first), np.asarray(second))
    return np.take_along_axis(first, second, axis=-1)


def permutation_matrix(perm: np.ndarray) -> np.ndarray:
    """``P`` with ``P[j, perm[j]] = 1``, so that permuted ``A`` is ``P @ A @ P.T``."""
    perm = np.asarray(perm)
    num = perm.shape[-1]
    return np.eye(num)[perm]


def permute_axis(values: np.ndarray, perms: np.ndarray, axis: int) -> np.ndarray:
    """Permute one state axis of ``values`` by per-draw ``perms``.

    Parameters
    ----------
    values : numpy.ndarray
        ``(*batch, ...)`` with a state axis at ``axis`` (non-negative, after the batch axes).
    perms : numpy.ndarray
        ``(*batch, K)`` permutations (``batch`` broadcasts against the leading axes).
    axis : int
        Position of the state axis in ``values``.

    Returns
    -------
    numpy.ndarray
        ``out[..., j, ...] = values[..., perms[j], ...]`` on that axis.
    """
    values = np.asarray(values)
    perms = np.asarray(perms)
    batch_dims = perms.ndim - 1
    if not batch_dims <= axis < values.ndim:
        raise ValueError(
            f"axis: expected a state axis after the {batch_dims} batch axes, got {axis}"
        )
    shape = [1] * values.ndim
    shape[:batch_dims] = perms.shape[:-1]
    shape[axis] = perms.shape[-1]
    index = perms.reshape(shape)
    return np.take_along_axis(values, index, axis=axis)


def permute_params(
    hmm: HMM, params: Mapping[str, np.ndarray | torch.Tensor], perms: np.ndarray
) -> dict[str, np.ndarray]:
    """Relabel parameter draws: every state axis of every parameter is permuted.

    Parameters
    ----------
    hmm : HMM
        The model (its ``param_dims`` name the state axes).
    params : dict
        Parameters with leading draw dimensions ``(*batch, *param_shape)``.
    perms : numpy.ndarray
        ``(*batch, K)`` permutations.

    Returns
    -------
    dict of numpy.ndarray
    """
    perms = np.asarray(perms)
    batch_dims = perms.ndim - 1
    dims = hmm.param_dims()
    result = {}
    for name, value in params.items():
        array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
        array = np.asarray(array)
        for offset, dim in enumerate(dims.get(name, ())):
            if dim in STATE_DIMS:
                array = permute_axis(array, perms, batch_dims + offset)
        result[name] = array
    return result


def permute_dataset(dataset: xr.Dataset, perms: np.ndarray) -> xr.Dataset:
    """Relabel every variable of a ``(chain, draw, ...)`` dataset along its state dimensions.

    Parameters
    ----------
    dataset : xarray.Dataset
        E.g. ``idata.posterior``; variables without a state dimension are kept as they are.
    perms : numpy.ndarray
        ``(chain, draw, K)`` permutations.

    Returns
    -------
    xarray.Dataset
        A new dataset with the same coordinates and attributes.
    """
    perms = np.asarray(perms)
    updated = {}
    for name, variable in dataset.data_vars.items():
        state_dims = [dim for dim in variable.dims if dim in STATE_DIMS]
        if not state_dims:
            continue
        ordered = variable.transpose("chain", "draw", ...)
        values = ordered.values
        for dim in state_dims:
            values = permute_axis(values, perms, ordered.dims.index(dim))
        updated[name] = ordered.copy(data=values).transpose(*variable.dims)
    return dataset.assign(updated)
