"""Posterior inference runners: NUTS, SVI (also streamed from a store) and MAP.

Layer rule: ``inference`` imports ``learning`` (starts), ``fit`` and the layers below them, and
the private utilities; never ``diagnostics`` (above it: its refits run these runners) or
anything else above.
"""

from hmm_pyro.inference.checkpoint import load_checkpoint
from hmm_pyro.inference.map import fit_map
from hmm_pyro.inference.nuts import fit_nuts
from hmm_pyro.inference.stream import fit_svi_stream
from hmm_pyro.inference.svi import fit_svi

__all__ = ["fit_map", "fit_nuts", "fit_svi", "fit_svi_stream", "load_checkpoint"]
