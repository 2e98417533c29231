"""The shared CLI options: generated from the library, passed on only when the user set them."""

from __future__ import annotations

import argparse
import dataclasses
import inspect

import pytest

import hmm_pyro as hp
from hmm_pyro.cli import build_parser
from hmm_pyro.cli._options import (
    emission_of,
    job_kwargs,
    prior_of,
    runner_kwargs,
    runner_options,
)
from hmm_pyro.runners import RUNNERS
from hmm_pyro.runners import runner_options as library_runner_options


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def command_parser(name: str) -> argparse.ArgumentParser:
    actions = build_parser()._actions
    (commands,) = [action for action in actions if isinstance(action, argparse._SubParsersAction)]
    return commands.choices[name]


def test_one_prior_option_per_prior_field_with_its_doc_and_default():
    helps = {action.dest: action.help for action in command_parser("fit")._actions}
    for field in dataclasses.fields(hp.Prior):
        text = helps[f"prior_{field.name}"]
        assert text.endswith(f"(Prior.{field.name}, default {field.default})"), text
        assert not text.startswith("hyperparameter"), text  # a description from Prior's doc
    assert helps["prior_stickiness"].startswith("kappa >= 0 added to the diagonal")
    args = parse("fit", "x.csv", "-K", "2", "--stickiness", "5", "--prior-B", "[1, 2]")
    assert prior_of(args) == hp.Prior(stickiness=5, B=[1, 2])
    assert prior_of(parse("fit", "x.csv", "-K", "2")) == hp.Prior()


@pytest.mark.parametrize("method", sorted(RUNNERS))
def test_runner_options_read_from_the_source_are_the_runners(method):
    assert runner_options(method) == library_runner_options(method)


@pytest.mark.parametrize(
    ("argv", "method", "expected"),
    [
        (["fit", "x.csv", "-K", "2"], "nuts", {"seed": 0, "progress": True}),
        (
            ["fit", "x.csv", "-K", "2", "--chains", "2", "--steps", "9", "--serial"],
            "nuts",
            {"seed": 0, "progress": True, "chains": 2, "parallel": False},
        ),
        (
            ["fit", "x.csv", "-K", "2", "--chains", "2", "--steps", "9", "--no-progress"],
            "svi",
            {"seed": 0, "progress": False, "steps": 9},
        ),
        (
            ["fit", "x.csv", "-K", "2", "--checkpoint", "c", "--resume", "--batch-size", "5"],
            "svi_stream",
            {"seed": 0, "progress": True, "checkpoint": "c", "resume": True, "batch_size": 5},
        ),
        (["fit", "x.csv", "-K", "2", "--restarts", "3", "--seed", "4"], "supervised", {}),
        (
            ["fit", "x.csv", "-K", "2", "--dense-mass", "--target-accept", "0.9"],
            "nuts",
            {"seed": 0, "progress": True, "dense_mass": True, "target_accept": 0.9},
        ),
        (["fit", "x.csv", "-K", "2", "--dense-mass"], "svi", {"seed": 0, "progress": True}),
    ],
)
def test_runner_options_are_those_set_and_taken_by_the_runner(argv, method, expected):
    assert runner_kwargs(parse(*argv), method) == expected


def test_jobs_get_their_own_arguments_and_the_options_set():
    args = parse("sweep", "x.csv", "-K", "2", "3", "--method", "em", "--restarts", "2")
    assert job_kwargs(args) == {"method": "em", "seed": 0, "progress": True, "restarts": 2}
    args = parse("compare", "x.csv", "-K", "2", "--serial", "--warmup", "7")
    assert job_kwargs(args) == {
        "method": "nuts", "seed": 0, "progress": True, "parallel": False, "warmup": 7,
    }  # fmt: skip


def test_time_gap_choices_are_the_library_s():
    """``--time-gaps`` restates ``Sequences.from_file``'s choices (the parser stays light)."""
    from hmm_pyro._tables import GAP_MODES
    from hmm_pyro.cli._options import GAP_CHOICES

    assert GAP_CHOICES == GAP_MODES
    assert inspect.signature(hp.Sequences.from_file).parameters["gaps"].default in GAP_CHOICES


@pytest.mark.parametrize(
    ("argv", "data", "message"),
    [
        (("--emission", "categorical", "--dim", "2"), None, "--dim: categorical emissions"),
        (("--emission", "categorical"), None, "--symbols: expected the number of symbols"),
        (("--emission", "gaussian", "--symbols", "3"), None, "--symbols: not an option"),
        (("--emission", "mvnormal"), None, "--dim: mvnormal emissions need"),
        # A value that does not fit the data keeps the library's argument name.
        (("--emission", "categorical", "--symbols", "5"), [0, 2, 1], "num_symbols: the data"),
    ],
)
def test_emission_option_errors_name_the_flag(argv, data, message):
    """``OptionError``s (about the option itself) show the flag; other errors keep the name."""
    args = parse("fit", "x.csv", "-K", "2", *argv)
    sequences = None if data is None else hp.Sequences([data], symbols=["x", "y", "z"])
    with pytest.raises(ValueError, match=f"^{message}"):
        emission_of(args, sequences)
