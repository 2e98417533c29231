"""One NUTS chain as a task: its switches reach the sampler and the potential."""

import numpy as np
import pytest

from hmm_pyro.inference import _chain_task
from hmm_pyro.inference._chain_task import ChainTask, run_chain
from hmm_pyro.learning import initial_params


class _Silent:
    def report(self, index, done):
        pass


@pytest.mark.parametrize(
    ("dense_mass", "simplex"), [(False, "stick-breaking"), (True, "isometric log-ratio")]
)
def test_dense_mass_and_simplex_switches(
    workload_hmm, small_data, monkeypatch, dense_mass, simplex
):
    """A short chain (10 + 10 iterations, trees of depth <= 4) with each setting: the sampler
    gets ``dense_mass`` as asked, the potential the coordinates, and the draws are parameters
    (simplex rows), one per kept iteration, with statistics of the kept iterations."""
    seen = {}
    original = _chain_task.NUTS

    def recording(log_density, start, **kwargs):
        seen["dense_mass"] = kwargs["dense_mass"]
        seen["simplex"] = log_density.__self__.simplex
        return original(log_density, start, **kwargs)

    monkeypatch.setattr(_chain_task, "NUTS", recording)
    start = initial_params(workload_hmm, small_data, "auto", seed=1)
    task = ChainTask(
        index=0,
        hmm_config=workload_hmm.to_config(),
        values=small_data.values.numpy(),
        lengths=small_data.lengths.numpy(),
        init={k: v.numpy() for k, v in start.items()},
        warmup=10,
        draws=10,
        seed=3,
        target_accept=0.8,
        max_tree_depth=4,
        dense_mass=dense_mass,
        simplex=simplex,
    )
    result = run_chain(task, _Silent())
    assert seen == {"dense_mass": dense_mass, "simplex": simplex}
    assert result.draws["B"].shape == (10, 3, 5)
    assert all(value.shape == (10,) for value in result.stats.values())
    assert (result.stats["tree_depth"] <= 4).all()
    assert (result.stats["n_steps"] < 2 ** result.stats["tree_depth"]).all()
    for name in ("pi", "A", "B"):
        np.testing.assert_allclose(result.draws[name].sum(-1), 1.0, rtol=0, atol=1e-12)
        assert (result.draws[name] > 0).all()
