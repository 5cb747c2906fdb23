"""livestems.realtime.benchmarks: benchmarks of the real-time side (``livestems bench --list``
names every benchmark of the project): what they print are figures, never pass or fail.

Thread contract: each module states its own.
"""
