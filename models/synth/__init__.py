"""livestems.models.synth: synthetic multitrack songs: procedural ones from a seeded composer, and
real compositions from free MIDI files, rendered stem by stem with FluidSynth.
"""
