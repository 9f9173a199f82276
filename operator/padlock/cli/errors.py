"""The one exception sub-commands raise for a user-facing failure.

Raised by every `padlock.cli.*` module; `padlock.cli.main` prints it as one line and exits 2.
"""


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 2, no traceback."""
