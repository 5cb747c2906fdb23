"""Errors a user can cause and fix: a bad file, a model that doesn't fit, a missing device.

Thread contract: plain exception types, raised on the main or worker thread, never in the
audio callback (which counts problems instead of raising).

The command line prints such an error's message, one sentence that says what is wrong and
what to do, and exits with status 1, without a traceback. Any other exception is a bug in
livestems and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or machine, told in one sentence."""
