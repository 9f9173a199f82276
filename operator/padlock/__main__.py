"""`python -m padlock`: the same as the `padlock` console script."""

import sys

from padlock.cli import main

sys.exit(main())
