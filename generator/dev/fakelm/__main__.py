"""``python -m dspy_forge.dev.fakelm``: serve the fake LM (see :mod:`.launcher`)."""

import sys

from dspy_forge.dev.fakelm.launcher import main

if __name__ == "__main__":
    sys.exit(main())
