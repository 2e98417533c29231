"""Compile the package's numba kernels into numba's cache once, before the test workers start.

A fresh clone has an empty cache (``__pycache__`` beside each kernel's module). Without this
step each process that reaches a kernel before another has cached it compiles it again: both
pytest-xdist workers and the subprocesses that the README, example, study and CLI tests start,
about 100 s of CPU in all (measured: 810 s for the whole suite on a fresh clone, 661 s with a
warm cache). ``tests/conftest.py`` calls :func:`compile_kernels` in the xdist controller, before
the workers start, so that every kernel is compiled once (about 40 s of CPU) and then only
loaded. With a warm cache it costs the imports and a few tiny fits (a few seconds).

The calls below are small fits that reach each kernel signature the suite uses: the fast
potentials (NUTS, MAP) and the forward-backward, EM statistics, Viterbi and lane kernels of
every built-in family with its own numba code, a user-level value and gradient (the parameter
checks, the categorical probability route), and the time-varying kernels of a
``CovariateHMM``. A kernel missed here is compiled where it is
first used, as without this step: correctness does not depend on it.
"""

from __future__ import annotations

import time
import warnings
from types import ModuleType


def compile_kernels() -> float:
    """Run the tiny fits that compile (or load) the kernels; return the CPU seconds spent."""
    began = time.process_time()
    import torch

    import hmm_pyro as hp

    emissions = [
        hp.Categorical(num_symbols=3),
        hp.Poisson(),
        hp.Poisson(dim=2),
        hp.Gaussian(),
        hp.Gaussian(dim=2),
        hp.MultivariateNormal(dim=3),
        hp.Gamma(),
        hp.VonMises(),
    ]
    quiet = {"seed": 0, "progress": False}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # two draws of a tiny fit: label warnings
            for emission in emissions:
                hmm = hp.HMM(2, emission)
                data, _ = hp.simulate(hmm, hmm.sample_prior(seed=0), [12, 9], seed=0)
                fit = hp.fit_nuts(
                    hmm, data, chains=1, warmup=2, draws=2, parallel=False, relabel=False, **quiet
                )
                fit.state_probs()
                fit.viterbi()
                hp.fit_map(hmm, data, restarts=1, **quiet)
                hp.fit_em(hmm, data, restarts=1, max_iter=2, **quiet)
                leaves = {k: v.requires_grad_() for k, v in hmm.sample_prior(seed=0).items()}
                hmm.log_likelihood(leaves, data).sum().backward()  # user level: checks, route
            _covariate_fits(hp, quiet)
    finally:
        torch.set_num_threads(threads)
    return time.process_time() - began


def _covariate_fits(hp: ModuleType, quiet: dict) -> None:
    """The regression kernel (fits) and time-varying kernels (decoding) of a ``CovariateHMM``."""
    import numpy as np

    from hmm_pyro.covariates import Covariates

    hmm = hp.CovariateHMM(2, hp.Gaussian(), ["hour"])
    steps = np.arange(30)
    covariates = Covariates([np.sin(2 * np.pi * steps / 24)], ["hour"])
    data, _ = hp.simulate(hmm, hmm.sample_prior(seed=0), covariates=covariates, seed=0)
    fit = hp.fit_nuts(
        hmm, data, chains=1, warmup=2, draws=2, parallel=False, relabel=False, **quiet
    )
    fit.state_probs()
    fit.viterbi()
    hp.fit_map(hmm, data, restarts=1, **quiet)
