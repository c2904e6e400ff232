"""Our own OFA inference engine (captions and visual question answering).

OFA was never merged into ``transformers``; this package runs the released
checkpoints directly. See :class:`describe_local.see.caption.ofa.engine.OFA`.
"""

from describe_local.see.caption.ofa.engine import OFA, TaskSettings, pick_device
from describe_local.see.caption.ofa.generate import SearchOptions

__all__ = ["OFA", "SearchOptions", "TaskSettings", "pick_device"]
