"""Children started as a shell starts them: SIGINT at its default and unblocked.

A child inherits its parent's ignored signals and signal mask across exec. A test that sends a
child Ctrl-C must not depend on what the test process (pytest, with the libraries earlier tests
loaded into it) happens to have ignored or blocked: in a full run of the suite two such children
once never saw their SIGINT, though each passed alone.
"""

from __future__ import annotations

import signal


def as_from_a_shell() -> None:
    """``preexec_fn`` for ``subprocess.Popen``: SIGINT as a freshly started shell command has it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
