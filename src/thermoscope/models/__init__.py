"""Learned models: input contracts, signed releases, ONNX Runtime inference that returns findings,
golden-reference statistics, explanations, and (with the ``train`` extra) torch training.

Modules are imported on their own (``thermoscope.models.runtime``, ``.release`` ...); only the
training and export modules need torch, and nothing here imports it at package import.
"""
