"""Shared fixtures: seeded random sources and factories of small random HMMs.

Nothing here catches exceptions or relaxes warnings: a failure inside a fixture fails the test.

Under pytest-xdist (``make test`` runs ``-n 2 --dist loadgroup``) every worker runs with one
torch intra-op thread and one numba thread, and passes ``OMP_NUM_THREADS=1`` to the processes
it starts (CLI and example subprocesses, Dask workers): the workers already fill the cores, and
small HMM tensors are slower with two threads competing for them. For the same reason it sets
``HMM_PYRO_CORES=1``: parallel defaults (NUTS chains, comparisons) stay in the process. Tests
that share an expensive module-scoped fixture carry an ``xdist_group`` mark so that one worker
computes it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import distributed
import numba
import numpy as np
import pytest
import torch

import hmm_pyro as hp
from tests.helpers import make_emission, random_params, random_simplex


def pytest_configure(config: pytest.Config) -> None:
    """One torch/numba/OpenMP thread per xdist worker (a serial run keeps the defaults)."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return
    torch.set_num_threads(1)
    numba.set_num_threads(1)  # numba's setting is per thread: this is the thread running tests
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(name, "1")  # inherited by subprocesses and Dask workers
    # The workers fill the cores: defaults run chains here, not in a worker pool of their own
    # (each CLI or example subprocess would otherwise start two workers, ~3 s of CPU each).
    # Tests of the pool set it back (tests/test_pool.py).
    os.environ.setdefault("HMM_PYRO_CORES", "1")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """In the xdist controller, before the workers start: compile the numba kernels once.

    See :mod:`tests.numba_warmup` (on a fresh clone the workers and the subprocesses of the
    suite would otherwise compile the same kernels several times). Serial runs compile each
    kernel where it is first used, as before.
    """
    config = session.config
    if not config.pluginmanager.has_plugin("dsession"):  # no workers: not an xdist controller
        return
    from tests.numba_warmup import compile_kernels

    seconds = compile_kernels()
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"numba kernels compiled or loaded from the cache: {seconds:.1f} s CPU")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tag ``xdist_group`` tests for ``--dist loadgroup`` (a shim for pytest 9.2).

    pytest-xdist 3.8 groups a test by appending ``@<group>`` to its node id in the worker, by
    assigning ``item._nodeid``. pytest 9.2 derives ``item.nodeid`` from the structured
    ``item._id`` instead, so that assignment is lost and every grouped test is scheduled on its
    own (each worker then rebuilds the module fixtures). This hook, run after xdist's, sets the
    suffix through ``item._id``; it does nothing outside xdist workers running ``loadgroup``,
    or where xdist's own suffix took effect.
    """
    if not getattr(config.option, "loadgroup", False):  # set by xdist in its workers only
        return
    from _pytest.nodeid import NodeId

    for item in items:
        names = {
            str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
            for mark in item.iter_markers("xdist_group")
        }
        suffix = "@" + "_".join(sorted(names))
        if names and not item.nodeid.endswith(suffix):
            item._id = NodeId.parse(item.nodeid + suffix)


@pytest.fixture
def rng() -> np.random.Generator:
    """A freshly seeded numpy generator (same stream in every test)."""
    return np.random.default_rng(20240601)


@pytest.fixture
def generator() -> torch.Generator:
    """A freshly seeded torch CPU generator."""
    return torch.Generator().manual_seed(1234)


@pytest.fixture
def make_hmm(
    rng: np.random.Generator,
) -> Callable[..., tuple[hp.HMM, dict[str, torch.Tensor]]]:
    """Factory ``make_hmm(family, num_states=2, batch=(), prior=None) -> (hmm, params)``."""

    def factory(
        family: str,
        num_states: int = 2,
        batch: tuple[int, ...] = (),
        prior: hp.Prior | None = None,
    ) -> tuple[hp.HMM, dict[str, torch.Tensor]]:
        hmm = hp.HMM(num_states, make_emission(family), prior=prior)
        return hmm, random_params(hmm, rng, batch)

    return factory


@pytest.fixture
def make_kernel_inputs(
    rng: np.random.Generator,
) -> Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Factory of random normalised ``(log_pi, log_A, log_lik)`` float64 kernel inputs.

    ``make_kernel_inputs(num_states, num_steps, batch=(), param_batch=())``: ``log_lik`` has
    shape ``(*batch, T, K)``; ``log_pi``/``log_A`` have leading ``param_batch`` dimensions.
    """

    def factory(
        num_states: int,
        num_steps: int,
        batch: tuple[int, ...] = (),
        param_batch: tuple[int, ...] = (),
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        log_pi = np.log(random_simplex(rng, (*param_batch, num_states)))
        log_A = np.log(random_simplex(rng, (*param_batch, num_states, num_states)))
        log_lik = rng.normal(-1.0, 1.5, size=(*batch, num_steps, num_states))
        return tuple(torch.as_tensor(x, dtype=torch.float64) for x in (log_pi, log_A, log_lik))

    return factory


@pytest.fixture(scope="module")
def client():
    """A Dask client on a 2-worker LocalCluster (single-threaded workers), one per module."""
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as connected,
    ):
        yield connected
