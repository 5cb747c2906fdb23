"""livestems.realtime: everything that runs while the music plays.

The spectral front end (presets, streaming STFT/iSTFT), the stream processor, ring buffers,
the stem mixer, audio files and devices, and the command line. Depends on numpy, scipy,
onnxruntime, sounddevice, soundfile and soxr; never on torch (DESIGN.md, "Layout").
"""
