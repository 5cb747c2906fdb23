"""livestems.export: ONNX export, graph checks, torch-versus-onnxruntime parity, model cards.

Needs the 'train' extra (torch, onnx).
"""
