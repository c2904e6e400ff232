"""OFA captioning and question answering on ONNX Runtime, without torch at run time.

``build`` writes the graphs from the checkpoint's weights read as NumPy arrays
(``source``), with no torch; ``convert`` adds the embeddings, the manifest and the
optional int8 and fp16 graphs (``export``, the torch exporter, is kept as a
cross-check of the graphs' signatures); ``runtime`` loads and runs them, decoding with the NumPy
greedy and beam search of ``search``, which mirrors the torch engine's token
for token. Importing this package imports neither torch nor onnxruntime.
"""
