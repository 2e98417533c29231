"""Constants shared by the compare tests."""

from __future__ import annotations

import hmm_pyro as hp

PRIORS = {
    "flat": hp.Prior(),
    "sticky": hp.Prior(stickiness=10.0),
    "strong": hp.Prior(B=100.0),  # every emission row pulled to uniform: contradicts the data
}
