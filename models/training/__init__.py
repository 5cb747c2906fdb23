"""livestems.models.training: training: the loop (``livestems train``), its command, and its speed
benchmark.
"""
