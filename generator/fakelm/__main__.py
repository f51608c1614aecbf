"""``python -m dspy_forge.fakelm``: serve the fake LM (see :mod:`dspy_forge.fakelm.launcher`)."""

import sys

from dspy_forge.fakelm.launcher import main

if __name__ == "__main__":
    sys.exit(main())
