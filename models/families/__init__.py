"""livestems.models.families: the model families (``lstm``, ``cws``, ``bsrnn``, ``umx``) and
what makes one: configuration, the registry, the whole torch separator (``SeparatorNet``),
checkpoints, costs, and the torch ``TorchHopModel`` the stream processor can run.
"""
