"""`python -m sandbox dev|stripe|smtp|seed`, run from the checkout's root."""

import sys

from sandbox.cli import main

sys.exit(main())
