"""livestems.realtime: everything that runs while the music plays. Never imports torch.

Sub-packages, along the data path (README.md, "Tour of the folders"): ``dsp`` (presets, STFT,
PQMF, front ends), ``engine`` (processor, rings, mixer, telemetry), ``backends`` (PortAudio,
JACK), ``runtime`` (model files, onnxruntime, offline separation, the API's ``Separator``),
``io`` (audio files, stem sets), ``commands`` (the command line, over the library) and
``benchmarks``. The top-level ``import livestems`` is ``api/`` (see its docstring).
Depends on numpy, scipy, onnxruntime, sounddevice, soundfile and soxr (DESIGN.md, "Layout").
"""
