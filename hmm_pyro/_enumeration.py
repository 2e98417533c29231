"""The classic Pyro model of an HMM: enumerated discrete states under ``pyro.markov``.

:meth:`hmm_pyro.HMM.model` with ``marginalize="enumerate"`` writes it: a categorical site
``z_t`` per step (``infer={"enumerate": "parallel"}``) and an observed site ``y_t`` from the
emission's conditional law at that step, inside a plate over the sequences. With
``TraceEnum_ELBO`` or ``infer_discrete`` (``max_plate_nesting=1``) it defines the same joint
density of parameters and data as the forward algorithm's ``pyro.factor``; the tests use it as
an independent reference for the kernels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyro
import pyro.distributions as dist
import torch
from pyro.ops.indexing import Vindex

from hmm_pyro._types import Params

if TYPE_CHECKING:
    from hmm_pyro.data import Sequences
    from hmm_pyro.model import HMM

__all__ = ["enumerated_likelihood"]


def enumerated_likelihood(hmm: HMM, params: Params, data: Sequences) -> None:
    """Sample the states ``z_t`` and observe ``y_t`` of every sequence, step by step.

    A padded step keeps the state (a one-hot row) and observes nothing that counts: the
    emission's conditional law masks it. Time-varying transitions (one matrix per sequence and
    step) are indexed by the step they leave.
    """
    num = hmm.num_states
    values = torch.where(data.observed, data.values, hmm.emission.fill_value()).to(hmm.dtype)
    observed = data.observed
    valid = data.mask
    initial, transition = hmm.chain_probabilities(params, data.covariates)
    rows = torch.arange(data.num_sequences)
    with pyro.plate("sequences", data.num_sequences, dim=-1):
        state = None
        for t in pyro.markov(range(data.max_length)):
            if state is None:
                probs = initial
            else:
                stay = torch.nn.functional.one_hot(state, num).to(hmm.dtype)
                if transition.dim() == 2:
                    moves = transition[state]
                else:  # one matrix per sequence and step; the one from step t - 1
                    moves = Vindex(transition)[rows, t - 1, state]
                probs = torch.where(valid[:, t, None], moves, stay)
            state = pyro.sample(f"z_{t}", dist.Categorical(probs), infer={"enumerate": "parallel"})
            pyro.sample(
                f"y_{t}",
                hmm.emission.conditional_at(params, state, observed[:, t], data.covariates, t),
                obs=hmm.emission.observation(values[:, t]),
            )
