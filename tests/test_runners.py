"""The runner registry: the runners by name and their options."""

from __future__ import annotations

import inspect

import pytest

from hmm_pyro.inference.stream import fit_svi_stream
from hmm_pyro.runners import RUNNERS, get_runner, runner_options


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
