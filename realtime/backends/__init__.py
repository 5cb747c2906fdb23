"""livestems.realtime.backends: audio back-ends: PortAudio (and the offline device), JACK's named
ports, the JACK dummy server the benchmarks and tests start, and the devices this machine
offers.

Thread contract: each module states its own.
"""
