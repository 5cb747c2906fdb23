"""livestems.realtime.runtime: the model runtime: model files (metadata, onnxruntime), the catalog
of bundled and user models, offline separation, and the Python API's ``Separator``.

Thread contract: each module states its own.
"""
