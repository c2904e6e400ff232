"""What the running server holds: settings, the loaded describer, tokens, queue and audio."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from describe_local.errors import first_line
from describe_local.server.audio_store import AudioStore
from describe_local.server.auth import AttemptLimiter, Gate, TokenStore
from describe_local.server.jobs import JobQueue
from describe_local.server.live import LiveStore
from describe_local.server.signing import UrlSigner
from describe_local.settings import Settings

if TYPE_CHECKING:
    from describe_local.gallery import Gallery
    from describe_local.pipeline import Describer

log = logging.getLogger(__name__)


@dataclass
class ServerState:
    """Everything a request handler needs; one per app."""

    settings: Settings
    gate: Gate
    jobs: JobQueue
    audio: AudioStore
    live: LiveStore
    signer: UrlSigner = field(default_factory=UrlSigner)
    describer: Describer | None = None
    load_error: str | None = None
    owns_describer: bool = False  # loaded here, so closed here
    gallery: Gallery | None = None  # made on first use by the gallery API
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    started: float = field(default_factory=time.time)

    @classmethod
    def create(
        cls, settings: Settings, describer: Describer | None = None, clock: Callable[[], float] = time.time
    ) -> ServerState:
        """The state of a new app; ``clock`` (Unix seconds) dates signed URLs and audio expiry."""
        return cls(
            settings=settings,
            gate=Gate(TokenStore.open(settings.state_dir), AttemptLimiter(settings.token_failures_per_minute)),
            jobs=JobQueue(max_pending=settings.max_queue, timeout_s=settings.request_timeout_s),
            audio=AudioStore(ttl_s=settings.audio_ttl_s, clock=clock),
            live=LiveStore(ttl_s=settings.audio_ttl_s, clock=clock),
            signer=UrlSigner(clock=clock),
            describer=describer,
        )

    @property
    def status(self) -> str:
        """``ready``, ``loading`` or ``failed``."""
        if self.describer is not None:
            return "ready"
        return "failed" if self.load_error else "loading"

    def load_in_background(self) -> threading.Thread:
        """Load the models in a thread, so that the server answers (``loading``) meanwhile."""

        def load() -> None:
            from describe_local.pipeline import Describer

            t0 = time.perf_counter()
            try:
                self.describer = Describer.load(self.settings, progress=lambda msg: log.info("%s", msg))
                self.owns_describer = True
            except Exception as exc:  # reported by /api/health and every describe request
                log.exception("loading the models failed")
                self.load_error = first_line(exc)
                return
            log.info("models loaded in %.1f s; ready", time.perf_counter() - t0)

        thread = threading.Thread(target=load, name="load-models", daemon=True)
        thread.start()
        return thread

    def models(self) -> dict[str, dict[str, Any]]:
        """Which models are loaded, for the health endpoint (no names of people)."""
        if self.describer is None:
            return {}
        return {stage: status.to_json() for stage, status in self.describer.status().items()}

    def close(self) -> None:
        self.jobs.close()
        if self.owns_describer and self.describer is not None:
            self.describer.close()
