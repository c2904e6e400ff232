"""OFA captioning and question answering on ONNX Runtime, without torch at run time.

``export`` (torch) writes the graphs, ``convert`` adds the manifest and the
optional int8 graphs; ``runtime`` loads and runs them, decoding with the NumPy
greedy and beam search of ``search``, which mirrors the torch engine's token
for token. Importing this package imports neither torch nor onnxruntime.
"""
