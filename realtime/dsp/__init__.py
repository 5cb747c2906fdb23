"""livestems.realtime.dsp: signal processing the engine and the runtime share: presets (the frame
geometry), the streaming STFT/iSTFT, the PQMF bank and the front ends built from them. numpy
only.

Thread contract: each module states its own.
"""
