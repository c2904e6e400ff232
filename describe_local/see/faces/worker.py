"""The face stage's child process: dlib finds and encodes faces outside this process's GIL.

Measured with ``scripts/measure_overlap.py``: dlib's HOG detector releases the
GIL, but its face encoder holds it for its whole call (about 0.1 s a face), so
in a thread it would stall the caption stage's Python. :class:`FaceWorker`
runs both in a long-lived child instead.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

import numpy as np

from describe_local.errors import DescribeLocalError, FaceWorkerError
from describe_local.see.faces.detect import ENCODING_SIZE, Box, FaceModels, detect_faces, encode_faces

log = logging.getLogger(__name__)

# A FaceWorker child with no photo for this long exits; the next photo starts a
# new one (about half a second to load the models).
WORKER_IDLE_EXIT_S = 600.0
IDLE_EXIT_STATUS = 3


class FaceWorker:
    """Detects and encodes faces in a child process that holds its own face models.

    dlib's HOG detector releases the GIL but its face encoder does not: while
    it encodes (about 0.1 s a face) no other Python thread of this process can
    run, so the caption and text stages would stall behind it. In a child
    process the encoder only competes for a core.

    The child is ``python -m describe_local.see.faces.worker``, fed over its
    stdin/stdout pipes: a JSON header line plus the raw pixels in, one JSON
    line of boxes and encodings out. (Not ``multiprocessing``: its ``spawn``
    re-imports the caller's main module, which breaks scripts without a
    ``__main__`` guard, and ``fork`` can hang a process that runs torch
    threads.) A child that dies is replaced on the next photo, and a child
    left idle for ``idle_exit_s`` exits, so that a recogniser nobody closed
    does not hold on to a process and its models.
    """

    def __init__(self, idle_exit_s: float = WORKER_IDLE_EXIT_S) -> None:
        self.idle_exit_s = idle_exit_s
        self._lock = threading.Lock()  # one request at a time on the pipes
        self._killed_hung = False  # set by the watchdog when it killed a child that did not answer
        self._process: subprocess.Popen[bytes] | None = None
        self._start()

    @property
    def pid(self) -> int | None:
        """The child's process id, while it runs."""
        return self._process.pid if self._process is not None else None

    def _start(self) -> None:
        package_root = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        process = subprocess.Popen(
            [sys.executable, "-m", "describe_local.see.faces.worker", str(self.idle_exit_s)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert process.stdout is not None
        reply = _read_reply(process.stdout)  # the models load now: fail at load time, not on a photo
        if reply.get("ready") is not True:
            process.kill()
            process.wait()
            detail = reply.get("error") or f"it exited with status {process.returncode}"
            raise FaceWorkerError(f"the face detection process could not start: {detail}")
        self._process = process

    def find_faces(
        self, image: np.ndarray, upsample: int, timeout_s: float | None = None
    ) -> tuple[list[Box], np.ndarray]:
        """:func:`detect_faces` then :func:`encode_faces` on an RGB uint8 array, in the child.

        A child that does not answer within ``timeout_s`` (hung, or stopped with
        SIGSTOP) is killed, :class:`FaceWorkerError` is raised, and a new child
        takes the next photo.
        """
        image = np.ascontiguousarray(image, dtype=np.uint8)
        header = json.dumps({"shape": list(image.shape), "upsample": upsample}).encode() + b"\n"
        with self._lock:
            self._killed_hung = False
            reply = self._request(header, image, timeout_s)
            if not reply and not self._killed_hung and self._exited_idle():
                # It timed out just as this photo was sent: a new child takes it.
                reply = self._request(header, image, timeout_s)
            if "boxes" not in reply:
                if self._process is not None and self._process.poll() is None and reply.get("error"):
                    raise FaceWorkerError(f"face detection failed: {reply['error']}")  # the child is still fine
                self._stop()
                if self._killed_hung:
                    raise FaceWorkerError(f"face detection did not answer within {timeout_s:g} s; "
                                          "it was stopped and restarts on the next photo")
                raise FaceWorkerError("the face detection process stopped unexpectedly; it restarts on the next photo")
        encodings = np.array(reply["encodings"], dtype=np.float64).reshape(-1, ENCODING_SIZE)
        return [Box(*b) for b in reply["boxes"]], encodings

    def _exited_idle(self) -> bool:
        process = self._process
        if process is None:
            return False
        try:
            return process.wait(timeout=1) == IDLE_EXIT_STATUS
        except subprocess.TimeoutExpired:
            return False

    def _request(self, header: bytes, image: np.ndarray, timeout_s: float | None) -> dict[str, Any]:
        """Send one photo to the child (started or restarted as needed); ``{}`` if it died
        or was killed for not answering within ``timeout_s``."""
        if self._process is None or self._process.poll() is not None:
            if self._process is not None:
                status = self._process.returncode
                if status == IDLE_EXIT_STATUS:
                    log.info("starting the face detection process again (it stopped when idle)")
                else:
                    log.warning("the face detection process stopped (status %s); starting it again", status)
            self._stop()
            self._start()
        process = self._process
        assert process is not None and process.stdin is not None and process.stdout is not None
        # A watchdog rather than a read timeout: a stopped child blocks the write of a
        # large photo into its full pipe just as surely as the read of its reply.
        watchdog = threading.Timer(timeout_s, self._kill_hung, args=(process, timeout_s)) if timeout_s else None
        if watchdog is not None:
            watchdog.daemon = True
            watchdog.start()
        try:
            process.stdin.write(header)
            process.stdin.write(memoryview(image).cast("B"))
            process.stdin.flush()
            return _read_reply(process.stdout)
        except OSError:
            return {}
        finally:
            if watchdog is not None:
                watchdog.cancel()

    def _kill_hung(self, process: subprocess.Popen[bytes], timeout_s: float) -> None:
        if process.poll() is None:
            log.warning("the face detection process did not answer within %g s; stopping it", timeout_s)
            self._killed_hung = True
            process.kill()

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            if process.stdin is not None:
                process.stdin.close()  # end of input: the child exits
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def close(self) -> None:
        with self._lock:
            self._stop()

    def __del__(self) -> None:
        # Forgotten without close(): closing our end of its stdin lets the child exit.
        process = getattr(self, "_process", None)
        if process is not None and process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()


def _read_reply(stream: IO[bytes]) -> dict[str, Any]:
    line = stream.readline()
    if not line:
        return {}
    try:
        reply = json.loads(line)
    except ValueError:
        return {"error": f"garbled reply {line[:80]!r}"}
    return reply if isinstance(reply, dict) else {}


def _serve_worker(idle_exit_s: float) -> int:
    """The child's side of :class:`FaceWorker`: answer requests until stdin closes."""
    # The pipe to the parent is a copy of stdout; fd 1 itself goes to stderr so
    # that nothing printed by a library can corrupt the replies.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    # Ctrl-C in a terminal reaches the whole process group: leave it to the
    # parent, which then closes our stdin and we exit quietly.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requests = sys.stdin.buffer

    def reply(message: dict[str, Any]) -> None:
        replies.write(json.dumps(message).encode() + b"\n")
        replies.flush()

    try:
        models = FaceModels.load()
    except DescribeLocalError as exc:
        reply({"error": str(exc)})
        return 1
    reply({"ready": True})
    while True:
        # An idle child exits (the parent starts a new one for the next photo), so that
        # recognisers nobody closed do not keep a process each for long.
        ready, _, _ = select.select([requests], [], [], idle_exit_s)
        if not ready:
            return IDLE_EXIT_STATUS
        header = requests.readline()
        if not header:
            return 0
        try:
            request = json.loads(header)
            shape = tuple(int(n) for n in request["shape"])
            size = int(np.prod(shape))
            data = requests.read(size)
            if len(data) != size:
                return 0  # the parent went away mid-request
            image = np.frombuffer(data, dtype=np.uint8).reshape(shape)
            boxes = detect_faces(models, image, int(request["upsample"]))
            encodings = encode_faces(models, image, boxes)
            reply({"boxes": [list(b) for b in boxes], "encodings": encodings.tolist()})
        except Exception as exc:  # report it and stay up for the next photo
            log.exception("face worker request failed")
            reply({"error": f"{type(exc).__name__}: {exc}"})
    return 0


if __name__ == "__main__":
    raise SystemExit(_serve_worker(float(sys.argv[1]) if len(sys.argv) > 1 else WORKER_IDLE_EXIT_S))
