"""Simulate sequences from an HMM with known parameters."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from hmm_pyro._random import draw_categorical, make_generator
from hmm_pyro._validation import check_int, describe
from hmm_pyro.data import Sequences
from hmm_pyro.kernels import PAD_STATE
from hmm_pyro.model import HMM, Params

__all__ = ["simulate"]


def simulate(
    hmm: HMM,
    params: Params,
    lengths: int | Sequence[int],
    seed: int | None = None,
) -> tuple[Sequences, torch.Tensor]:
    """Draw hidden state paths and observations from ``hmm`` with fixed ``params``.

    Parameters
    ----------
    hmm : HMM
        The model (its emission family generates the observations).
    params : dict of torch.Tensor
        One parameter set (no draw dimensions).
    lengths : int or sequence of int
        Length of each sequence; an int gives one sequence.
    seed : int, optional
        Seed for reproducible draws.

    Returns
    -------
    data : Sequences
        The observations.
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
    if isinstance(lengths, int) and not isinstance(lengths, bool):
        lengths = [lengths]
    if isinstance(lengths, (str, bytes)) or not isinstance(lengths, Sequence) or not lengths:
        raise TypeError(
            f"lengths: expected an int or a non-empty list of ints, got {describe(lengths)}"
        )
    lengths = [
        check_int(f"lengths[{index}]", length, minimum=1) for index, length in enumerate(lengths)
    ]
    generator = make_generator(seed)
    num_sequences, max_length = len(lengths), max(lengths)
    state = draw_categorical(params["pi"].expand(num_sequences, -1), generator)
    columns = [state]
    for _ in range(1, max_length):
        state = draw_categorical(params["A"][state], generator)
        columns.append(state)
    states = torch.stack(columns, dim=-1)
    values = hmm.emission.sample(params, states, generator)
    valid = torch.arange(max_length) < torch.tensor(lengths)[:, None]
    data = Sequences([values[n, : lengths[n]] for n in range(num_sequences)], dim=hmm.emission.dim)
    states = torch.where(valid, states, torch.full_like(states, PAD_STATE))
    return data, states
