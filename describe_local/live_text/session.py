"""One listener's live text: what each frame adds to what they have heard, and when to guide them.

A :class:`LiveTextSession` gets the lines the text stage read in each frame (and, while a page
is being captured, whether the page is in view) and answers with the lines to speak now and
at most one piece of guidance. Guidance is held back while lines are being spoken (estimated
from their length) and comes at most every :data:`GUIDE_EVERY_S` (the same again only after
:data:`SAME_AGAIN_S`); "No text" only after
:data:`NO_TEXT_AFTER_S` of frames without any, and then at most every :data:`NO_TEXT_EVERY_S`.

:class:`LiveTextSessions` keeps the sessions of all clients, bounded in number and idle time,
and lets each have one frame in flight.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from describe_local.errors import FrameInFlight
from describe_local.live_text.aiming import Aim, SeenLine, aim, whole
from describe_local.live_text.page import PageView
from describe_local.live_text.tracker import LineTracker

GUIDE_EVERY_S = 2.5
SAME_AGAIN_S = 8.0  # the same guidance again only after this long: it was heard, the listener is moving
NO_TEXT_AFTER_S = 3.0
NO_TEXT_EVERY_S = 6.0
CHARS_PER_S = 15.0  # a screen reader at its default rate, about 180 words a minute
MAX_SESSIONS = 64
MAX_IN_FLIGHT_PER_CLIENT = 2  # frames of one address being read at once (two tabs, not a flood)
IDLE_S = 120.0  # a session not heard from this long is forgotten


@dataclass(frozen=True)
class FrameAnswer:
    """What a frame adds: ``lines`` wholly in view (reading order), ``new`` the ones to speak now,
    ``guidance`` at most one (``None``: say nothing), ``page`` while a page is being captured."""

    lines: list[SeenLine]
    new: list[str]
    guidance: Aim | None
    page: PageView | None = None
    language: str | None = None  # of the text read, ISO 639-1, where the text stage could tell


@dataclass
class LiveTextSession:
    """The state of one listener's live text (see the module's docstring)."""

    clock: Callable[[], float] = time.monotonic
    tracker: LineTracker = field(init=False)
    _last_text: float = field(init=False)
    _last_guided: float = -math.inf
    _last_no_text: float = -math.inf
    _last_aim: Aim | None = None
    _speaking_until: float = -math.inf

    def __post_init__(self) -> None:
        self.tracker = LineTracker(clock=self.clock)
        self._last_text = self.clock()

    def answer(self, lines: list[SeenLine], width: int, height: int, page: PageView | None = None) -> FrameAnswer:
        """The answer to a frame of ``width`` x ``height`` in which the text stage read ``lines``."""
        now = self.clock()
        in_view = [line for line in lines if whole(line, width, height)]
        self.tracker.seen([line.text for line in lines if line not in in_view])
        new = self.tracker.new_lines([line.text for line in in_view])
        if lines:
            self._last_text = now
        if new:
            self._speaking_until = now + sum(len(text) for text in new) / CHARS_PER_S
            return FrameAnswer(in_view, new, None, page)
        wanted = page.aim if page is not None and not page.ready else aim(lines, width, height)
        if wanted is None and not lines and now - self._last_text >= NO_TEXT_AFTER_S:
            wanted = Aim.NO_TEXT
        if (wanted is None or now < self._speaking_until or now - self._last_guided < GUIDE_EVERY_S
                or (wanted is self._last_aim and now - self._last_guided < SAME_AGAIN_S)
                or (wanted is Aim.NO_TEXT and now - self._last_no_text < NO_TEXT_EVERY_S)):
            return FrameAnswer(in_view, [], None, page)
        self._last_guided, self._last_aim = now, wanted
        if wanted is Aim.NO_TEXT:
            self._last_no_text = now
        return FrameAnswer(in_view, [], wanted, page)


class LiveTextSessions:
    """Every client's session, by a key the server makes (client address and the page's session id)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_sessions: int = MAX_SESSIONS,
                 idle_s: float = IDLE_S) -> None:
        self.clock, self.max_sessions, self.idle_s = clock, max_sessions, idle_s
        self._sessions: OrderedDict[str, tuple[LiveTextSession, float]] = OrderedDict()
        self._in_flight: dict[str, str] = {}  # session key -> client address
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def frame(self, client: str, session_id: str) -> Iterator[LiveTextSession]:
        """The session ``session_id`` of ``client`` (its address) for one frame. Raises
        :class:`FrameInFlight` while that session's last frame is being read, or while the client
        has :data:`MAX_IN_FLIGHT_PER_CLIENT` frames being read: one client cannot fill the queue."""
        key = f"{client} {session_id}"
        with self._lock:
            busy = sum(1 for owner in self._in_flight.values() if owner == client)
            if key in self._in_flight or busy >= MAX_IN_FLIGHT_PER_CLIENT:
                raise FrameInFlight("a frame is still being read; send the next when its answer comes")
            session = self._session(key)
            self._in_flight[key] = client
        try:
            yield session
        finally:
            with self._lock:
                self._in_flight.pop(key, None)

    def __len__(self) -> int:
        return len(self._sessions)

    def _session(self, key: str) -> LiveTextSession:
        now = self.clock()
        for old, (_, seen) in list(self._sessions.items()):
            if now - seen > self.idle_s and old not in self._in_flight:
                del self._sessions[old]
        session = self._sessions.pop(key, (LiveTextSession(clock=self.clock), now))[0]
        self._sessions[key] = (session, now)
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return session
