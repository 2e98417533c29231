"""Decoding: hidden-state posteriors and Viterbi paths of sequences, from any fit.

Layer rule: ``decode`` sits beside ``diagnostics`` and ``inference``: it imports ``fit``,
``learning`` and the layers below them, and the private utilities; never ``inference`` or
``diagnostics`` (siblings) or anything above.
"""

from hmm_pyro.decode.stores import DecodedChunk, decode_store, iter_decode

__all__ = ["DecodedChunk", "decode_store", "iter_decode"]
