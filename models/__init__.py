"""livestems.models: the PyTorch model families, data sets, training and evaluation.

Needs the 'train' extra (torch). Uses ``livestems.realtime`` for the one shared STFT definition.
"""
