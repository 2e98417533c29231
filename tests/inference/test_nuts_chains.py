"""NUTS with chain_dir: finished chains saved atomically and reused on a rerun."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from hmm_pyro import fit_nuts

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {"chains": 2, "warmup": 30, "draws": 20, "parallel": False, "progress": False}


def test_saved_chains_are_reused_and_give_the_uninterrupted_result(
    workload_hmm, small_data, tmp_path
):
    reference = fit_nuts(workload_hmm, small_data, seed=4, **SETTINGS)
    first = fit_nuts(workload_hmm, small_data, seed=4, chain_dir=tmp_path, **SETTINGS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain_0.npz", "chain_1.npz"]
    assert first.attrs["reused_chains"] == []
    # As if the run had been stopped before chain 1 finished: only chain 1 runs again.
    (tmp_path / "chain_1.npz").unlink()
    rerun = fit_nuts(workload_hmm, small_data, seed=None, chain_dir=tmp_path, **SETTINGS)
    assert rerun.attrs["reused_chains"] == [0] and rerun.attrs["seed"] == 4
    again = fit_nuts(workload_hmm, small_data, seed=4, chain_dir=tmp_path, **SETTINGS)
    assert again.attrs["reused_chains"] == [0, 1]
    for fit in (first, rerun, again):
        for name in workload_hmm.param_names:
            assert torch.equal(fit.draws()[name], reference.draws()[name])
        assert (fit.idata.sample_stats.lp.values == reference.idata.sample_stats.lp.values).all()


def test_chains_from_other_settings_are_refused(workload_hmm, small_data, tmp_path):
    # 5 draws are too few to relabel reliably (Stephens and ECR may disagree): kept as sampled
    settings = {**SETTINGS, "chains": 1, "warmup": 10, "draws": 5, "relabel": False}
    fit_nuts(workload_hmm, small_data, seed=1, chain_dir=tmp_path, **settings)
    with pytest.raises(ValueError, match=r"chain_dir: .* other settings"):
        fit_nuts(workload_hmm, small_data, seed=1, chain_dir=tmp_path, **{**settings, "draws": 6})
    with pytest.raises(ValueError, match=r"chain_dir: .* other settings"):  # the mass matrix
        fit_nuts(workload_hmm, small_data, seed=1, chain_dir=tmp_path, **settings, dense_mass=True)
    (tmp_path / "chain_0.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a saved chain"):
        fit_nuts(workload_hmm, small_data, seed=1, chain_dir=tmp_path, **settings)
    with pytest.raises(TypeError, match="chain_dir"):
        fit_nuts(workload_hmm, small_data, chain_dir=3, **settings)


_CHILD = textwrap.dedent(
    """
    import sys, time
    from hmm_pyro import HMM, Categorical, fit_nuts, simulate
    from hmm_pyro._parallel import ProgressReporter
    from hmm_pyro.simulate import REFERENCE_PARAMS

    def report(self, task, done):
        print(task, done, flush=True)
        if (task, done) == (1, 20):  # chain 1 is 20 iterations in: wait here to be killed
            time.sleep(120)

    ProgressReporter.report = report
    hmm = HMM(num_states=3, emission=Categorical(num_symbols=5))
    data, _ = simulate(hmm, REFERENCE_PARAMS, [120, 80, 100], seed=7)
    fit_nuts(hmm, data, seed=4, chain_dir=sys.argv[1], chains=2, warmup=30, draws=20,
             parallel=False, progress=False)
    """
)
_RUN_ATTRS = {"chain_seconds", "sampling_time", "reused_chains", "created_at"}
"""Attributes that describe the run rather than the draws: they differ after a resume."""


@pytest.mark.slow
def test_sigkill_mid_chain_then_rerun_equals_the_uninterrupted_run(
    workload_hmm, small_data, tmp_path
):
    """A run killed with SIGKILL while chain 1 samples, rerun with the same folder.

    Bitwise equal to the uninterrupted run: every group's values (posterior, sample_stats,
    log_likelihood, log_prior, prior, observed_data, constant_data) and every attribute that
    describes the draws (seeds, starts, settings). Not equal: the attributes that describe the
    run (:data:`_RUN_ATTRS`: chain 0's run time is the killed run's, ``reused_chains`` is
    ``[0]``, the wall time and the creation time are the rerun's). Chain 1 is rerun from its
    first iteration (a chain is saved only when it finishes); with its own seed it draws the
    same values again.
    """
    folder = tmp_path / "chains"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as child:
        killed = False
        for line in child.stdout:
            if line.split() == ["1", "20"]:
                child.send_signal(signal.SIGKILL)
                killed = True
                break
        child.stdout.read()
        error = child.stderr.read()
        assert child.wait(timeout=60) == -signal.SIGKILL
    assert killed, error
    assert sorted(p.name for p in folder.iterdir()) == ["chain_0.npz"]  # nothing half-written
    resumed = fit_nuts(workload_hmm, small_data, seed=None, chain_dir=folder, **SETTINGS)
    reference = fit_nuts(workload_hmm, small_data, seed=4, **SETTINGS)
    assert resumed.attrs["reused_chains"] == [0] and resumed.attrs["seed"] == 4
    assert sorted(p.name for p in folder.iterdir()) == ["chain_0.npz", "chain_1.npz"]
    assert resumed.idata.groups() == reference.idata.groups()
    for group in reference.idata.groups():
        mine, theirs = resumed.idata[group], reference.idata[group]
        assert sorted(mine.data_vars) == sorted(theirs.data_vars), group
        for name in theirs.data_vars:
            assert np.array_equal(
                mine[name].values, theirs[name].values, equal_nan=mine[name].dtype.kind == "f"
            ), (group, name)
        described = {key for key in theirs.attrs if key not in _RUN_ATTRS}
        assert {key: mine.attrs.get(key) for key in described} == {
            key: theirs.attrs[key] for key in described
        }, group
    assert resumed.attrs["chain_seconds"] != reference.attrs["chain_seconds"]


def test_chains_of_other_data_an_older_format_or_with_pickles_are_refused(
    workload_hmm, small_data, tmp_path
):
    from hmm_pyro import Sequences
    from tests.file_mutations import TRAP_FILE, Trap

    # prior-draw starts: a data-driven start would differ with the data too
    settings = {**SETTINGS, "chains": 1, "warmup": 10, "draws": 5, "init": "prior"}
    fit_nuts(workload_hmm, small_data, seed=1, chain_dir=tmp_path, **settings)
    other = Sequences(small_data.to_list()[:2])
    with pytest.raises(ValueError, match=r"chain_0\.npz' holds a chain .*\(another data set: "):
        fit_nuts(workload_hmm, other, seed=1, chain_dir=tmp_path, **settings)
    path = tmp_path / "chain_0.npz"
    np.savez(path, signature=np.asarray("{}"), seconds=np.asarray(1.0), draw__pi=np.ones((5, 3)))
    with pytest.raises(ValueError, match=r"not a saved chain .*written by an older hmm_pyro"):
        fit_nuts(workload_hmm, small_data, seed=1, chain_dir=tmp_path, **settings)
    TRAP_FILE.unlink(missing_ok=True)
    np.savez(path, signature=np.array([Trap()], dtype=object))
    with pytest.raises(ValueError, match="Python objects"):
        fit_nuts(workload_hmm, small_data, seed=1, chain_dir=tmp_path, **settings)
    assert not TRAP_FILE.exists()
