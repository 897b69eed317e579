"""Errors a user can cause.

Anything raised as :class:`GankitError` is the user's to fix (a bad path, an empty folder,
an option out of range). The CLI prints its message on one line and exits with code 2
(:class:`DivergedError`, a run whose losses or weights stopped being finite: code 3);
everything else is a bug and keeps its traceback.
"""


class GankitError(Exception):
    """A problem with the user's input, reported as one line (CLI exit code 2)."""


class DivergedError(GankitError):
    """Training produced a non-finite loss or weight; no checkpoint was written from that state
    (CLI exit code 3, so scripts can tell a diverged run from a mistake in the command)."""

    exit_code = 3
