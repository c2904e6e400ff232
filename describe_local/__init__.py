"""describe-local: an offline image-to-speech assistant.

A photo in, a spoken description out (caption, known people, text in the
picture), on this machine only. The public entry point is
:class:`describe_local.pipeline.Describer`.
"""

__version__ = "0.1.0"
