"""Live text: camera frames read as they come, each new line spoken once, with aiming guidance.

:mod:`.tracker` remembers the lines heard, :mod:`.aiming` says which way to move the phone from
where text was seen, :mod:`.page` says whether a page is wholly in view (document capture),
:mod:`.session` puts them together per listener. :func:`read_frame` runs one frame through a
:class:`~describe_local.pipeline.Describer`'s text stage. The server's route is
:mod:`describe_local.server.live_text_api`.
"""

from __future__ import annotations

from describe_local.live_text.aiming import SENTENCES, Aim, SeenLine
from describe_local.live_text.frames import read_frame
from describe_local.live_text.page import PageView, page_view
from describe_local.live_text.session import FrameAnswer, LiveTextSession, LiveTextSessions

__all__ = ["SENTENCES", "Aim", "FrameAnswer", "LiveTextSession", "LiveTextSessions", "PageView", "SeenLine",
           "page_view", "read_frame"]
