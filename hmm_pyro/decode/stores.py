"""Decoding the sequences of a store chunk by chunk: hidden-state posteriors and Viterbi paths.

Memory is bounded by the chunk, not by the number of sequences: :func:`iter_decode` yields one
:class:`DecodedChunk` at a time and :func:`decode_store` writes them to a NetCDF file as they
come.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import h5netcdf
import numpy as np
import torch

from hmm_pyro._io import atomic_path
from hmm_pyro._validation import check_int, describe
from hmm_pyro.fit import Fit
from hmm_pyro.kernels import PAD_STATE
from hmm_pyro.store import as_store

__all__ = ["DecodedChunk", "decode_store", "iter_decode"]


class DecodedChunk(NamedTuple):
    """Hidden-state posteriors of sequences ``start .. stop - 1`` of a store.

    Attributes
    ----------
    start, stop : int
        Row range.
    state_probs : torch.Tensor
        ``(n, T, K)`` smoothed marginals averaged over posterior draws (zero at padding).
    paths : torch.Tensor
        ``(n, T)`` Viterbi paths under the posterior mean, ``-1`` at padding.
    scores : torch.Tensor
        ``(n,)`` ``log p(z*, y)``.
    """

    start: int
    stop: int
    state_probs: torch.Tensor
    paths: torch.Tensor
    scores: torch.Tensor


def iter_decode(
    fit: Fit, store: Any, chunk_size: int = 1000, max_draws: int = 200
) -> Iterator[DecodedChunk]:
    """Decode every sequence of a store, ``chunk_size`` sequences at a time.

    Parameters
    ----------
    fit : Fit
        Any fit of the same model.
    store : SequenceStore, MemoryStore, path or Sequences
        The sequences to decode.
    chunk_size : int
        Sequences per chunk (memory: ``chunk_size * T * K`` per kept draw chunk).
    max_draws : int
        Posterior draws averaged for the state probabilities.

    Yields
    ------
    DecodedChunk
    """
    if not isinstance(fit, Fit):
        raise TypeError(f"fit: expected a hmm_pyro Fit, got {describe(fit)}")
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    opened = isinstance(store, (str, os.PathLike))
    store = as_store(store)
    try:
        store.check_model(fit.hmm)
        for start, chunk in store.iter_chunks(chunk_size):
            probs = fit.state_probs(chunk, max_draws=max_draws)
            paths, scores = fit.viterbi(chunk)
            yield DecodedChunk(start, start + chunk.num_sequences, probs, paths, scores)
    finally:
        if opened:
            store.close()


def decode_store(
    fit: Fit,
    store: Any,
    path: str | os.PathLike[str],
    chunk_size: int = 1000,
    max_draws: int = 200,
) -> Path:
    """Write state probabilities and Viterbi paths of every sequence of a store to NetCDF.

    The file (written atomically, chunk by chunk) holds ``state_probs`` ``(sequence, time,
    state)`` float32 (zero at padding), ``viterbi`` ``(sequence, time)`` int16 (``-1`` at
    padding), ``viterbi_score`` ``(sequence,)`` and ``lengths``; open it with
    ``xarray.open_dataset(path, engine="h5netcdf")``.

    Parameters
    ----------
    fit : Fit
        The fit whose parameters decode.
    store : SequenceStore, MemoryStore, path or Sequences
        The sequences.
    path : str or os.PathLike
        Output file.
    chunk_size, max_draws
        As in :func:`iter_decode`.

    Returns
    -------
    pathlib.Path
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file path, got {describe(path)}")
    opened = isinstance(store, (str, os.PathLike))
    store = as_store(store)
    num_states = fit.hmm.num_states
    rows = min(chunk_size, store.num_sequences)
    try:
        with atomic_path(path) as temporary, h5netcdf.File(temporary, "w") as handle:
            handle.dimensions = {
                "sequence": store.num_sequences,
                "time": store.max_length,
                "state": num_states,
            }
            probs = handle.create_variable(
                "state_probs",
                ("sequence", "time", "state"),
                dtype="f4",
                chunks=(rows, store.max_length, num_states),
                fillvalue=np.float32(0.0),
            )
            paths = handle.create_variable(
                "viterbi",
                ("sequence", "time"),
                dtype="i2",
                chunks=(rows, store.max_length),
                fillvalue=np.int16(PAD_STATE),
            )
            scores = handle.create_variable("viterbi_score", ("sequence",), dtype="f8")
            lengths = handle.create_variable("lengths", ("sequence",), dtype="i8")
            lengths[:] = store.lengths
            for part in iter_decode(fit, store, chunk_size, max_draws):
                width = part.state_probs.shape[-2]
                probs[part.start : part.stop, :width] = part.state_probs.numpy().astype("f4")
                paths[part.start : part.stop, :width] = part.paths.numpy().astype("i2")
                scores[part.start : part.stop] = part.scores.numpy()
            handle.attrs["fit_inference"] = fit.method
    finally:
        if opened:
            store.close()
    return Path(path)
