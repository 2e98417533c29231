"""Named prior settings for ``compare`` and ``sweep``: ``--prior NAME[:KEY=VALUE,...]``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hmm_pyro.cli._options import PRIOR_KEYS, one_line, prior_of

if TYPE_CHECKING:
    from hmm_pyro.priors import Prior

__all__ = ["add_prior_specs", "parse_prior_spec", "prior_settings"]


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets."""
    parts, depth, current = [], 0, []
    for char in text:
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
            if depth < 0:
                raise ValueError("unbalanced ']'")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise ValueError("unbalanced '['")
    parts.append("".join(current))
    return parts


def parse_prior_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Parse ``NAME[:KEY=VALUE,...]`` into a name and Prior keyword arguments.

    Parameters
    ----------
    spec : str
        For example ``"sticky:stickiness=10"`` or ``"strong:B=[[9,1],[1,9]],stickiness=0"``.

    Returns
    -------
    name : str
        The setting's name.
    changes : dict
        Prior fields to set (numbers or nested lists).

    Raises
    ------
    ValueError
        Naming the offending part of the spec.

    Examples
    --------
    >>> parse_prior_spec("sticky:stickiness=10,B=0.5")
    ('sticky', {'stickiness': 10, 'B': 0.5})
    """
    name, _, body = spec.partition(":")
    name = name.strip()
    if not name or not all(char.isalnum() or char in "-_." for char in name):
        raise ValueError(
            f"--prior {spec!r}: expected NAME[:KEY=VALUE,...] with a name of letters, digits, "
            "'-', '_' or '.'"
        )
    changes: dict[str, Any] = {}
    if not body.strip():
        if ":" in spec:
            raise ValueError(f"--prior {spec!r}: expected KEY=VALUE pairs after ':'")
        return name, changes
    try:
        items = _split_top_level(body)
    except ValueError as error:
        raise ValueError(f"--prior {spec!r}: {error}") from None
    for item in items:
        key, equals, text = item.partition("=")
        key = key.strip()
        if not equals or not key:
            raise ValueError(f"--prior {spec!r}: expected KEY=VALUE, got {item!r}")
        if key not in PRIOR_KEYS:
            raise ValueError(
                f"--prior {spec!r}: unknown key {key!r}; expected one of {', '.join(PRIOR_KEYS)}"
            )
        if key in changes:
            raise ValueError(f"--prior {spec!r}: key {key!r} given twice")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError(
                f"--prior {spec!r}: {key}={text!r} is not a number or a JSON array"
            ) from None
        if isinstance(value, bool) or not isinstance(value, (int, float, list)):
            raise ValueError(f"--prior {spec!r}: {key}={text!r} is not a number or a JSON array")
        changes[key] = value
    return name, changes


def add_prior_specs(parser: argparse.ArgumentParser, default: str) -> None:
    """The repeatable ``--prior SPEC`` option; ``default`` says what applies without one."""
    parser.add_argument(
        "--prior",
        action="append",
        metavar="SPEC",
        help="prior setting NAME[:KEY=VALUE[,KEY=VALUE...]] (repeat for several settings). KEY "
        f"is a Prior field: {', '.join(PRIOR_KEYS)}. VALUE is a number or a JSON array, e.g. "
        "B=[[5,1],[1,5]] (commas inside brackets belong to the array). Unset keys come from "
        "the model prior options (--prior-B, --stickiness, ...). A bare NAME uses those "
        f"options unchanged. Default: {default}.",
    )


def prior_settings(args: argparse.Namespace, default: Sequence[str]) -> dict[str, Prior]:
    """``{name: Prior}`` from the repeated ``--prior NAME[:KEY=VALUE,...]`` options."""
    priors = {}
    for spec in args.prior or default:
        name, changes = parse_prior_spec(spec)
        if name in priors:
            raise ValueError(f"--prior: the name {name!r} is used twice")
        try:
            priors[name] = prior_of(args, **changes)
        except (ValueError, TypeError) as error:
            raise ValueError(f"--prior {spec!r}: {one_line(error)}") from None
    return priors
