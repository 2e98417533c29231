"""The runner registry: the runners by name and their options."""

from __future__ import annotations

import inspect

import pytest

from hmm_pyro.inference import fit_map, fit_svi
from hmm_pyro.inference.stream import fit_svi_stream
from hmm_pyro.runners import RUNNERS, TASK_METHODS, check_options, get_runner, runner_options


def test_runner_options_are_the_runners_keywords_with_their_defaults():
    nuts = runner_options("nuts")
    assert "hmm" not in nuts and "data" not in nuts
    assert (nuts["chains"], nuts["warmup"], nuts["init"]) == (4, 500, "auto")
    assert runner_options("supervised")["states"] is inspect.Parameter.empty
    stream = runner_options("svi_stream")
    assert "store" not in stream and stream["block_size"] == 10
    assert get_runner("svi_stream") is RUNNERS["svi_stream"] is fit_svi_stream
    with pytest.raises(ValueError, match="method: expected one of"):
        runner_options("gibbs")


def test_check_options_names_the_option_and_the_allowed_ones():
    check_options("em", {"restarts": 2, "max_iter": 5})
    with pytest.raises(TypeError, match=r"chains: not an option of the em runner"):
        check_options("em", {"chains": 2})
    with pytest.raises(TypeError, match=r"seed: not an option of the svi runner; .*'steps'"):
        check_options("svi", {"seed": 1}, reserved=("seed",))
    for method, data_argument in (("nuts", "data"), ("svi_stream", "store")):
        with pytest.raises(TypeError, match=f"{data_argument}: not an option"):
            check_options(method, {data_argument: None})


def test_map_and_svi_are_separate_runners():
    assert get_runner("map") is fit_map and get_runner("svi") is fit_svi
    assert {"map", "svi"} <= set(TASK_METHODS)
    assert runner_options("map")["optimizer"] == "lbfgs"
    assert runner_options("svi")["guide"] == "normal"
    assert "optimizer" not in runner_options("svi") and "guide" not in runner_options("map")
