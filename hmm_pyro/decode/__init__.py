"""Decoding with a fit: state paths and probabilities per step, in memory or from a store.

Layer rule: ``decode`` sits beside ``inference``, independent of it and below ``diagnostics``:
it imports ``learning``, ``fit`` and the layers below them, and the private utilities;
``runners``, ``compare``, ``sweep``, ``plots`` and the CLI may import it, nothing below them.
"""

from hmm_pyro.decode.stores import DecodedChunk, decode_store, iter_decode
from hmm_pyro.decode.table import decode_table

__all__ = ["DecodedChunk", "decode_store", "decode_table", "iter_decode"]
