"""Posterior inference runners: NUTS, SVI (also streamed from a store) and MAP.

Layer rule: ``inference`` imports ``learning`` (starts), ``fit`` and the layers below them, and
the private utilities; never ``diagnostics`` (above it: its refits run these runners) or
anything else above.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hmm_pyro.inference.checkpoint import load_checkpoint
    from hmm_pyro.inference.map import fit_map
    from hmm_pyro.inference.nuts import fit_nuts
    from hmm_pyro.inference.stream import fit_svi_stream
    from hmm_pyro.inference.svi import fit_svi

__all__ = ["fit_map", "fit_nuts", "fit_svi", "fit_svi_stream", "load_checkpoint"]

_HOMES = {
    "fit_map": "map",
    "fit_nuts": "nuts",
    "fit_svi": "svi",
    "fit_svi_stream": "stream",
    "load_checkpoint": "checkpoint",
}


def __getattr__(name: str) -> Any:
    """Import a runner on first use (PEP 562).

    A worker process that runs NUTS chains imports :mod:`hmm_pyro.inference._chain_task` alone,
    not the runners, which import ArviZ (about half of a worker's start-up imports).
    """
    if name in _HOMES:
        value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
