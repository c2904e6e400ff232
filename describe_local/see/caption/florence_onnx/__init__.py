"""Florence-2 on ONNX Runtime: export (with torch, at conversion), runtime and search (NumPy only).

``export`` writes three graphs from a ``transformers`` Florence-2 folder: the
vision tower with its projector, the text encoder (which also gives every
decoder layer's cross-attention keys and values), and one cached decoder step.
``runtime`` runs them with the NumPy searches of ``search``, which follow
``transformers``' own greedy and beam search so that the tokens are the same.
"""
