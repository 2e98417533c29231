"""Simulate sequences from an HMM with known parameters, in memory or chunk by chunk into a store.

Layer rule: ``simulate`` imports ``store``, ``model`` and the layers below them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from hmm_pyro._random import draw_categorical, make_generator
from hmm_pyro._types import Params
from hmm_pyro._validation import check_int, describe
from hmm_pyro.covariates import Covariates
from hmm_pyro.data import Sequences
from hmm_pyro.kernels import PAD_STATE
from hmm_pyro.model import HMM
from hmm_pyro.store import DEFAULT_CHUNK_SIZE, write_store

__all__ = ["REFERENCE_PARAMS", "simulate", "simulate_store"]

_SIMULATE_CHUNK = 10_000
"""Sequences simulated and written at a time by :func:`simulate_store`."""


REFERENCE_PARAMS = {
    "pi": torch.tensor([1 / 3, 1 / 3, 1 / 3], dtype=torch.float64),
    "A": torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]], dtype=torch.float64),
    "B": torch.tensor(
        [
            [0.70, 0.10, 0.10, 0.05, 0.05],
            [0.05, 0.05, 0.10, 0.10, 0.70],
            [0.10, 0.50, 0.30, 0.05, 0.05],
        ],
        dtype=torch.float64,
    ),
}
"""The project's reference workload: 3 states, 5 symbols, clearly distinct emission rows."""


def simulate(
    hmm: HMM,
    params: Params,
    lengths: int | Sequence[int] | None = None,
    seed: int | None = None,
    covariates: Covariates | None = None,
) -> tuple[Sequences, torch.Tensor]:
    """Draw hidden state paths and observations from ``hmm`` with fixed ``params``.

    Parameters
    ----------
    hmm : HMM
        The model (its emission family generates the observations).
    params : dict of torch.Tensor
        One parameter set (no draw dimensions).
    lengths : int or sequence of int, optional
        Length of each sequence; an int gives one sequence. Default: the lengths of
        ``covariates``.
    seed : int, optional
        Seed for reproducible draws.
    covariates : Covariates, optional
        Covariates of the sequences to simulate (their lengths must be ``lengths``): required
        by a :class:`~hmm_pyro.CovariateHMM`, whose transitions they drive; attached to the
        returned data either way.

    Returns
    -------
    data : Sequences
        The observations (with ``covariates`` attached).
    states : torch.Tensor
        ``(N, T_max)`` int64 hidden states, ``-1`` at padded steps.

    Examples
    --------
    >>> from hmm_pyro import HMM, Categorical, simulate
    >>> hmm = HMM(2, Categorical(num_symbols=3))
    >>> data, states = simulate(hmm, hmm.sample_prior(seed=0), lengths=[5, 3], seed=1)
    >>> data.lengths.tolist(), tuple(states.shape)
    ([5, 3], (2, 5))
    """
    if not isinstance(hmm, HMM):
        raise TypeError(f"hmm: expected a hmm_pyro.HMM, got {describe(hmm)}")
    params = hmm.validate_params(params)
    if len(hmm.batch_shape(params)) != 0:
        raise ValueError(
            "params: expected a single parameter set, "
            f"got draw dimensions {tuple(hmm.batch_shape(params))}"
        )
    if lengths is None and covariates is not None:
        lengths = covariates.lengths.tolist()
    if isinstance(lengths, int) and not isinstance(lengths, bool):
        lengths = [lengths]
    if isinstance(lengths, (str, bytes)) or not isinstance(lengths, Sequence) or not lengths:
        raise TypeError(
            f"lengths: expected an int or a non-empty list of ints, got {describe(lengths)}"
        )
    lengths = [
        check_int(f"lengths[{index}]", length, minimum=1) for index, length in enumerate(lengths)
    ]
    if covariates is not None and covariates.lengths.tolist() != lengths:
        raise ValueError(
            f"covariates: expected sequences of lengths {lengths[:5]}{' ...' * (len(lengths) > 5)}"
            f" (lengths), got {covariates.lengths.tolist()[:5]}"
        )
    generator = make_generator(seed)
    num_sequences, max_length = len(lengths), max(lengths)
    initial, transition = hmm.chain_probabilities(params, covariates)
    rows = torch.arange(num_sequences)
    state = draw_categorical(initial.expand(num_sequences, -1), generator)
    columns = [state]
    for t in range(1, max_length):
        # one matrix for all steps, one per sequence (subjects), or one per sequence and step
        if transition.dim() == 2:
            moves = transition[state]
        elif transition.dim() == 3:
            moves = transition[rows, state]
        else:
            moves = transition[rows, t - 1, state]
        state = draw_categorical(moves, generator)
        columns.append(state)
    states = torch.stack(columns, dim=-1)
    values = hmm.sample_observations(params, states, generator, covariates)
    valid = torch.arange(max_length) < torch.tensor(lengths)[:, None]
    data = Sequences(
        [values[n, : lengths[n]] for n in range(num_sequences)],
        dim=hmm.emission.dim,
        covariates=covariates,
    )
    states = torch.where(valid, states, torch.full_like(states, PAD_STATE))
    return data, states


def simulate_store(
    path: str | os.PathLike[str],
    hmm: HMM,
    params: Params,
    num_sequences: int,
    lengths: int | Sequence[int],
    seed: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    write_chunk: int = _SIMULATE_CHUNK,
) -> Path:
    """Simulate sequences from ``hmm`` chunk by chunk into a store (with the true states).

    At most ``write_chunk`` sequences are in memory at a time. Chunk ``c`` is simulated with
    the ``c``-th child seed of ``seed`` (NumPy ``SeedSequence``): the same seed gives the same
    store for the same ``write_chunk``.

    Parameters
    ----------
    path : str or os.PathLike
        Target file.
    hmm : HMM
        The model; its emission family is recorded.
    params : dict of torch.Tensor
        One parameter set.
    num_sequences : int
        Number of sequences ``N``.
    lengths : int or sequence of int
        One length for every sequence, or ``N`` lengths.
    seed : int, optional
        Master seed (0 when omitted, so that the default is reproducible).
    chunk_size : int
        Sequences per HDF5 chunk.
    write_chunk : int
        Sequences simulated per batch.

    Returns
    -------
    pathlib.Path
    """
    if not isinstance(hmm, HMM):
        raise TypeError(f"hmm: expected a hmm_pyro.HMM, got {describe(hmm)}")
    num_sequences = check_int("num_sequences", num_sequences, minimum=1)
    write_chunk = check_int("write_chunk", write_chunk, minimum=1)
    seed = 0 if seed is None else check_int("seed", seed, minimum=0)
    if isinstance(lengths, (int, np.integer)) and not isinstance(lengths, bool):
        all_lengths = np.full(num_sequences, check_int("lengths", lengths, minimum=1))
    else:
        all_lengths = np.asarray(lengths)
        if all_lengths.shape != (num_sequences,) or not np.issubdtype(
            all_lengths.dtype, np.integer
        ):
            raise ValueError(
                f"lengths: expected an int or {num_sequences} integers, got {describe(lengths)}"
            )
        if (all_lengths < 1).any():
            raise ValueError("lengths: expected lengths >= 1")
    starts = range(0, num_sequences, write_chunk)
    children = np.random.SeedSequence(seed).spawn(len(starts))
    states: list[np.ndarray] = []

    def chunks() -> Iterator[Sequences]:
        for start, child in zip(starts, children, strict=True):
            part = all_lengths[start : start + write_chunk].tolist()
            data, hidden = simulate(hmm, params, part, seed=int(child.generate_state(1)[0]))
            states.append(hidden.numpy())
            yield data

    def state_chunks() -> Iterator[np.ndarray]:
        while states:
            yield states.pop(0)

    return write_store(
        path,
        chunks(),
        max_length=int(all_lengths.max()),
        chunk_size=chunk_size,
        emission=hmm.emission,
        attrs={"simulated": {"seed": seed, "write_chunk": write_chunk}},
        states=state_chunks(),
    )
