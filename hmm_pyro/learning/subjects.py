"""No pooling: each subject of a multilevel model fitted on its own, by EM.

The estimates beside which a multilevel fit's subject-level posteriors show their shrinkage
(:func:`hmm_pyro.plots.plot_shrinkage`): each subject's sequences fitted by a plain
:class:`~hmm_pyro.HMM` with the group-level prior, started from given (group-level) parameters
so that the subjects' states keep the group's labels.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from hmm_pyro._types import Params, SequencesLike
from hmm_pyro._validation import check_int, describe
from hmm_pyro.learning.em_steps import run_em
from hmm_pyro.model import HMM
from hmm_pyro.multilevel import MultilevelHMM

__all__ = ["fit_subjects_separately"]


def fit_subjects_separately(
    hmm: MultilevelHMM,
    data: SequencesLike,
    start: Mapping[str, torch.Tensor],
    max_iter: int = 200,
) -> Params:
    """Each subject's MAP estimate under the plain HMM with the group-level prior, by EM.

    Parameters
    ----------
    hmm : MultilevelHMM
        The multilevel model (its subjects, emission family and group-level prior).
    data : Sequences or array-like
        Its data.
    start : dict of torch.Tensor
        Group-level ``pi``, ``A`` and emission parameters every subject's EM starts from (e.g.
        a fit's posterior mean): the states keep these labels unless a subject's data pull
        them apart.
    max_iter : int
        EM updates per subject.

    Returns
    -------
    dict of torch.Tensor
        ``pi``, ``A`` and the emission parameters, each ``(S, *shape)``, subjects in
        :attr:`MultilevelHMM.subject_names` order.
    """
    if not isinstance(hmm, MultilevelHMM):
        raise TypeError(f"hmm: expected a hmm_pyro.MultilevelHMM, got {describe(hmm)}")
    max_iter = check_int("max_iter", max_iter, minimum=1)
    data = hmm.prepare_data(data)
    plain = HMM(hmm.num_states, hmm.emission, hmm.prior, hmm.dtype)
    names = ("pi", "A", *hmm.emission.param_names)
    first = plain.validate_params({name: start[name] for name in names})
    estimates: dict[str, list[torch.Tensor]] = {name: [] for name in names}
    for subject in range(hmm.num_subjects):
        index = torch.nonzero(hmm.subject_index == subject).flatten()
        own = plain.prepare_data(data.select(index))
        run = run_em(plain, own, first, max_iter=max_iter)
        for name in names:
            estimates[name].append(run.params[name].to(hmm.dtype))
    return {name: torch.stack(values) for name, values in estimates.items()}
