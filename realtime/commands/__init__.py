"""livestems.realtime.commands: the ``livestems`` command line: one module per command, over the
library; the library never imports this package.

Thread contract: each module states its own.
"""
