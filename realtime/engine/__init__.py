"""livestems.realtime.engine: the engine: the stream processor, the rings between the audio
callback and the worker, the stem mixer, the file source, telemetry and the latency report.

Thread contract: each module states its own.
"""
