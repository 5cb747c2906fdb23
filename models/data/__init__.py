"""livestems.models.data: training data: multitrack data sets, excerpts drawn and augmented
reproducibly, and batches drawn as spectra.
"""
