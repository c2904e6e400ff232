"""Our own OFA inference engine (captions and visual question answering).

OFA was never merged into ``transformers``; this package runs the released
checkpoints directly. See :class:`describe_local.see.caption.ofa.engine.OFA`.

The names below load on first use, so that the torch-free modules of this
package (``options``, ``tokenizer``) can be imported without torch (the ONNX
runtime does).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"OFA": "engine", "TaskSettings": "engine", "pick_device": "engine", "SearchOptions": "options"}

__all__ = ["OFA", "SearchOptions", "TaskSettings", "pick_device"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
