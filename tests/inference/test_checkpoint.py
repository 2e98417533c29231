"""Checkpoints of fit_map and fit_svi: an interrupted run, resumed, ends bitwise where an
uninterrupted one does.

Checkpoints are data only: a pickle (a format-1 checkpoint, or a malicious file) is refused and
never unpickled; a checkpoint of other data, another model or another version is refused in
one line that says which.
"""

import os
import pickle
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

from hmm_pyro import fit_map, fit_svi
from hmm_pyro.inference.checkpoint import load_checkpoint
from hmm_pyro.store import MemoryStore

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {"optimizer": "adam", "steps": 400, "restarts": 1, "tol": 0.0}
"""fit_map with Adam: Pyro's SVI with AutoDelta, checkpointed step by step."""
STRAIGHT = pytest.mark.xdist_group("checkpoint_straight")
"""The tests that compare with :func:`straight`: one pytest-xdist worker computes it."""


def _stop_at(restart, step):
    def callback(r, s, loss):
        if (r, s) == (restart, step):
            raise KeyboardInterrupt

    return callback


def _assert_same(first, second, hmm):
    for name in hmm.param_names:
        assert torch.equal(first.draws()[name], second.draws()[name]), name
    np.testing.assert_array_equal(
        first.idata.sample_stats.loss.values, second.idata.sample_stats.loss.values
    )


@pytest.fixture(scope="module")
def tiny(workload_hmm, true_params):
    from hmm_pyro import simulate

    data, _ = simulate(workload_hmm, true_params, [60, 40], seed=7)
    return data


@pytest.fixture(scope="module")
def straight(workload_hmm, tiny):
    """400 Adam steps without interruption."""
    return fit_map(workload_hmm, tiny, seed=3, progress=False, **SETTINGS)


@STRAIGHT
def test_stop_at_step_200_of_400_and_resume_gives_the_same_parameters(
    workload_hmm, tiny, straight, tmp_path
):
    path = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):
        fit_map(
            workload_hmm,
            tiny,
            seed=3,
            progress=False,
            checkpoint=path,
            checkpoint_every=64,
            callback=_stop_at(0, 200),
            **SETTINGS,
        )
    saved = load_checkpoint(path)
    assert saved["current"]["step"] == 200 and len(saved["current"]["losses"]) == 200
    assert {"params", "optim", "torch_rng"} <= set(saved["current"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.ckpt"]  # no temporary left
    steps = []
    resumed = fit_map(
        workload_hmm,
        tiny,
        seed=None,  # taken from the checkpoint
        progress=False,
        checkpoint=path,
        resume=True,
        callback=lambda r, s, loss: steps.append(s),
        **SETTINGS,
    )
    assert steps[0] == 201 and steps[-1] == 400
    assert resumed.attrs["resumed_from"] == {"restart": 0, "step": 200}
    _assert_same(straight, resumed, workload_hmm)
    # The finished run's checkpoint holds everything: resuming again runs no step.
    again = fit_map(
        workload_hmm,
        tiny,
        seed=3,
        progress=False,
        checkpoint=path,
        resume=True,
        callback=_stop_at(0, 1),
        **SETTINGS,
    )
    _assert_same(straight, again, workload_hmm)


@pytest.mark.parametrize(
    ("runner", "option", "stop"),
    [
        (fit_svi, {"guide": "normal", "tol": 0.0, "num_draws": 30}, (1, 70)),
        (fit_map, {"optimizer": "lbfgs"}, (1, 15)),
        (fit_map, {"optimizer": "adam", "tol": 0.0}, (1, 33)),
    ],
    ids=["svi-normal", "map-lbfgs", "map-adam"],
)
def test_resume_in_a_later_restart(workload_hmm, tiny, tmp_path, runner, option, stop):
    settings = {"steps": 150, "restarts": 2, "seed": 5, "progress": False, **option}
    straight = runner(workload_hmm, tiny, **settings)
    path = tmp_path / "run.ckpt"
    with pytest.raises(KeyboardInterrupt):
        runner(workload_hmm, tiny, checkpoint=path, callback=_stop_at(*stop), **settings)
    resumed = runner(workload_hmm, tiny, checkpoint=path, resume=True, **settings)
    # L-BFGS restarts are checkpointed when they finish: restart 1 reruns from its start.
    step = 0 if option.get("optimizer") == "lbfgs" else stop[1]
    assert resumed.attrs["resumed_from"] == {"restart": 1, "step": step}
    _assert_same(straight, resumed, workload_hmm)


def test_resume_refuses_other_settings_and_bad_arguments(workload_hmm, tiny, tmp_path):
    path = tmp_path / "run.ckpt"
    fit_map(workload_hmm, tiny, steps=20, restarts=1, seed=1, progress=False, checkpoint=path)
    with pytest.raises(ValueError, match="checkpoint: was written by a run with other settings"):
        fit_map(workload_hmm, tiny, steps=30, restarts=1, seed=1, checkpoint=path, resume=True)
    with pytest.raises(ValueError, match="runner: checkpoint 'fit_map', now 'fit_svi'"):
        fit_svi(workload_hmm, tiny, steps=20, restarts=1, seed=1, checkpoint=path, resume=True)
    for runner in (fit_map, fit_svi):
        with pytest.raises(ValueError, match="resume: needs a checkpoint"):
            runner(workload_hmm, tiny, steps=5, resume=True)
    with pytest.raises(TypeError, match="checkpoint"):
        fit_map(workload_hmm, tiny, steps=5, checkpoint=3)
    with pytest.raises(ValueError, match="checkpoint_every"):
        fit_map(workload_hmm, tiny, steps=5, checkpoint=path, checkpoint_every=0)
    (tmp_path / "junk.ckpt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="checkpoint: cannot read"):
        fit_map(workload_hmm, tiny, steps=5, checkpoint=tmp_path / "junk.ckpt", resume=True)
    # resume=True without an existing file starts afresh.
    fresh = fit_map(
        workload_hmm, tiny, steps=20, seed=1, progress=False, checkpoint=tmp_path / "new.ckpt"
    )
    assert fresh.attrs["resumed_from"] is None


_CHILD = textwrap.dedent(
    """
    import sys
    from hmm_pyro import HMM, Categorical, fit_map, simulate
    from hmm_pyro.simulate import REFERENCE_PARAMS

    hmm = HMM(num_states=3, emission=Categorical(num_symbols=5))
    data, _ = simulate(hmm, REFERENCE_PARAMS, [60, 40], seed=7)

    def report(restart, step, loss):
        print(step, flush=True)

    fit_map(hmm, data, seed=3, progress=False, checkpoint=sys.argv[1], checkpoint_every=50,
            callback=report, optimizer="adam", steps=400, restarts=1, tol=0.0)
    """
)


@pytest.mark.slow
@STRAIGHT
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL])
def test_a_real_signal_then_resume_gives_the_same_parameters(
    workload_hmm, tiny, straight, tmp_path, signum
):
    path = tmp_path / "run.ckpt"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    signalled, error = None, ""
    with subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as child:
        for line in child.stdout:
            if int(line) >= 150:
                child.send_signal(signum)
                signalled = int(line)
                break
        child.stdout.read()
        error = child.stderr.read()
        assert child.wait(timeout=60) != 0
    assert signalled is not None, error
    saved = load_checkpoint(path)["current"]["step"]
    if signum == signal.SIGINT:
        assert "KeyboardInterrupt" in error
        assert saved >= signalled  # saved at the interruption, not only every 50 steps
    else:
        assert saved % 50 == 0 and saved <= signalled + 50
    resumed = fit_map(
        workload_hmm, tiny, seed=3, progress=False, checkpoint=path, resume=True, **SETTINGS
    )
    assert resumed.attrs["resumed_from"]["step"] == saved
    _assert_same(straight, resumed, workload_hmm)


class _CreatesAFile:
    """Unpickling this creates ``path``: the payload of a malicious checkpoint."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_a_malicious_pickle_checkpoint_is_refused_and_runs_nothing(workload_hmm, tiny, tmp_path):
    created = tmp_path / "created_by_the_checkpoint"
    torch_file, pickle_file = tmp_path / "torch.ckpt", tmp_path / "pickle.ckpt"
    # Shaped like a format-1 checkpoint (a torch.save pickle), with the payload inside.
    payload = {"format": "hmm_pyro.svi_checkpoint", "version": 1, "current": _CreatesAFile(created)}
    torch.save(payload, torch_file)
    pickle_file.write_bytes(pickle.dumps(payload))
    for path, word in ((torch_file, "it holds a pickle"), (pickle_file, "it is a pickle")):
        with pytest.raises(ValueError, match=f"checkpoint: cannot read '.*{path.name}': {word}"):
            load_checkpoint(path)
        with pytest.raises(ValueError, match=word):  # seed=None: the seed is read from the file
            fit_map(workload_hmm, tiny, steps=5, checkpoint=path, resume=True, progress=False)
        with pytest.raises(ValueError, match=word):
            fit_map(workload_hmm, tiny, steps=5, seed=1, checkpoint=path, resume=True)
    assert not created.exists()
    pickle.loads(pickle_file.read_bytes())  # what loading it used to do
    assert created.exists()


def test_a_checkpoint_of_other_data_another_model_or_version_is_refused_in_one_line(
    workload_hmm, tiny, tmp_path
):
    from hmm_pyro import HMM, Categorical, Prior, Sequences

    path = tmp_path / "run.ckpt"
    settings = {"steps": 20, "restarts": 1, "seed": 1, "progress": False, "checkpoint": path}
    fit_map(workload_hmm, tiny, **settings)
    other_data = Sequences(tiny.to_list()[:1])
    other_model = HMM(3, Categorical(num_symbols=5), prior=Prior(B=2.0))
    for hmm, data, which in (
        (workload_hmm, other_data, r"another data set: data: checkpoint '\w+', now '\w+'"),
        (other_model, tiny, "another model: model: checkpoint"),
        (other_model, other_data, "another data set and another model"),
    ):
        with pytest.raises(ValueError, match=which) as error:
            fit_map(hmm, data, resume=True, **settings)
        assert "\n" not in str(error.value) and str(path) in str(error.value)
    with mock.patch("hmm_pyro.inference.checkpoint._CHECKPOINT_VERSION", 3):
        with pytest.raises(ValueError, match="format version 2, this hmm_pyro reads version 3"):
            fit_map(workload_hmm, tiny, resume=True, **settings)
    with mock.patch("hmm_pyro._archive.__version__", "0.0.1"):
        with pytest.raises(ValueError, match=r"written by hmm_pyro '\d[\d.]*', this is hmm_pyro"):
            fit_map(workload_hmm, tiny, resume=True, **settings)
    saved = load_checkpoint(path)
    assert saved["version"] == 2 and saved["signature"]["data"] == MemoryStore(tiny).fingerprint
