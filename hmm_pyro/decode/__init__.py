"""Decoding with a fit: the most probable state paths and the state probabilities, per step.

Layer rule: ``decode`` sits beside ``diagnostics`` and ``inference``, independent of both: it
imports ``learning``, ``fit`` and the layers below them, and the private utilities;
``runners``, ``compare``, ``sweep``, ``plots`` and the CLI may import it, nothing below them.
"""

from hmm_pyro.decode.table import decode_table

__all__ = ["decode_table"]
