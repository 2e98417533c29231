"""``hmm_pyro.kernels._inputs``: the plain-Python broadcast rule against torch's."""

from __future__ import annotations

import random

import pytest
import torch

from hmm_pyro.kernels._inputs import broadcast_shapes


def test_broadcast_shapes_agrees_with_torch_on_random_shapes():
    """3,000 random lists of 1-4 shapes of rank 0-3 with sizes 0-3 (zero-size, singleton and
    clashing dimensions): the same result as ``torch.broadcast_shapes``, or an error where
    torch raises one. Detects any rule difference that the sizes 0, 1 or a clash exercise."""
    rng = random.Random(0)
    clashes = 0
    for _ in range(3000):
        shapes = [
            tuple(rng.choice([0, 1, 2, 3]) for _ in range(rng.randint(0, 3)))
            for _ in range(rng.randint(1, 4))
        ]
        try:
            expected = tuple(torch.broadcast_shapes(*shapes))
        except RuntimeError:
            clashes += 1
            with pytest.raises(RuntimeError):
                broadcast_shapes(*shapes)
            continue
        assert broadcast_shapes(*shapes) == expected
    assert 300 < clashes < 2700  # both outcomes were exercised
