"""One table of a fit's decoding: observations, Viterbi path and state probabilities per step."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from hmm_pyro._types import SequencesLike
from hmm_pyro._validation import describe
from hmm_pyro.fit import Fit

__all__ = ["decode_table"]


def decode_table(
    fit: Fit, data: SequencesLike | None = None, max_draws: int | None = None
) -> tuple[pd.DataFrame, torch.Tensor]:
    """Decode sequences with a fit into one long-format table, a row per step.

    Parameters
    ----------
    fit : Fit
        The fit (relabel it first if its chains disagree on labels).
    data : Sequences or array-like, optional
        Sequences to decode (default: the fitted data).
    max_draws : int, optional
        Posterior draws averaged for the state probabilities (default: that of
        :meth:`Fit.state_probs`).

    Returns
    -------
    table : pandas.DataFrame
        Columns ``sequence``, ``time``, the observations (``value``, or ``value_0`` ...
        ``value_{D-1}``; the symbols' names when the model names them), ``viterbi`` (the
        most probable path under the posterior mean, :meth:`Fit.viterbi`) and
        ``p_state_0`` ... ``p_state_{K-1}`` (smoothed state probabilities averaged over draws,
        :meth:`Fit.state_probs`); one row per step of every sequence, padding left out.
    scores : torch.Tensor
        ``(N,)`` log joint probability of each sequence and its Viterbi path.

    Raises
    ------
    TypeError
        If ``fit`` is not a :class:`Fit`.

    Examples
    --------
    >>> table, scores = decode_table(fit)  # doctest: +SKIP
    >>> table.to_csv("decoded.csv", index=False)  # doctest: +SKIP
    """
    if not isinstance(fit, Fit):
        raise TypeError(f"fit: expected a hmm_pyro.Fit, got {describe(fit)}")
    data = fit.data if data is None else fit.hmm.prepare_data(data)
    paths, scores = fit.viterbi(data)
    options = {} if max_draws is None else {"max_draws": max_draws}
    probs = fit.state_probs(data, **options).numpy()
    values = data.values.numpy()
    names = fit.hmm.emission.symbol_names
    frames = []
    for n in range(data.num_sequences):
        length = int(data.lengths[n])
        frame = pd.DataFrame({"sequence": n, "time": np.arange(length)})
        if names is not None:
            codes = values[n, :length, 0]
            frame["value"] = [None if np.isnan(c) else names[int(c)] for c in codes]
        elif data.dim == 1:
            frame["value"] = values[n, :length, 0]
        else:
            for d in range(data.dim):
                frame[f"value_{d}"] = values[n, :length, d]
        frame["viterbi"] = paths[n, :length].numpy()
        for k in range(fit.hmm.num_states):
            frame[f"p_state_{k}"] = probs[n, :length, k]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True), scores
