"""``python -m hmm_pyro``: the command-line interface."""

import sys

from hmm_pyro.cli import main

sys.exit(main())
