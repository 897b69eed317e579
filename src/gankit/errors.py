"""Errors a user can cause.

Anything raised as :class:`GankitError` is the user's to fix (a bad path, an empty folder,
an option out of range). The CLI prints its message on one line and exits with code 2;
everything else is a bug and keeps its traceback.
"""


class GankitError(Exception):
    """A problem with the user's input, reported as one line (CLI exit code 2)."""
