"""livestems.models.layers: building blocks of the networks: the torch twins of the STFT, the PQMF
bank and the front ends, masks, batch norm over frames, and streamable time convolutions.
"""
