"""livestems.gui.widgets: the window's widgets: faders, meters, spectrograms, stem strips, the
transport and the settings dialog. Qt only; no engine.
"""
