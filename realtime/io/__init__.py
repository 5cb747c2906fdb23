"""livestems.realtime.io: files: decoding audio, writing stems as sets, atomic writes, and the
generated test song.

Thread contract: each module states its own.
"""
