"""describe-local: an offline image-to-speech assistant.

A photo in, a spoken description out (caption, known people, text in the
picture), on this machine only. The public entry point is
:class:`describe_local.pipeline.Describer`.
"""

import os

__version__ = "0.1.0"

# Nothing leaves the machine. onnxruntime (under Piper) has collected telemetry
# on Linux since 1.2x and writes a device id into ~/.cache unless this is set
# before it initialises; the Hugging Face libraries must never reach for a hub
# while describing (`models pull` downloads with its own code).
for _name, _value in (("ORT_DISABLE_TELEMETRY", "1"), ("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"),
                      ("HF_HUB_DISABLE_TELEMETRY", "1")):
    os.environ.setdefault(_name, _value)
