"""A worker process of a local collection run: ``python -m describe_local.collection.worker FD``.

It talks to the driver (``local.py``) over the socket ``FD``: it receives a
:class:`~describe_local.collection.spec.TaskSpec`, builds the task once (its models load),
says ``("ready", pid)`` (or ``("failed", error)``), then answers each ``(index, path)`` with
``("done", index, record)`` until it receives ``None`` or the driver goes away.

Not ``multiprocessing``'s spawn: it re-runs the caller's main module in the child, which
breaks a script (or ``python -m describe_local``) that has no ``__main__`` guard.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import sys
from multiprocessing.connection import Connection

from describe_local.collection.work import close_task, do_photo

log = logging.getLogger(__name__)


def serve(conn: Connection) -> int:
    """Build the task sent over ``conn`` and describe photos until told to stop."""
    try:
        spec = conn.recv()
        task = spec.build()
    except EOFError:
        return 0
    except Exception as exc:  # sent back whole when it pickles: the driver raises it as it is
        log.debug("the task could not be built", exc_info=True)
        with contextlib.suppress(OSError):
            conn.send(("failed", exc if _pickles(exc) else f"{type(exc).__name__}: {exc}"))
        return 1
    try:
        conn.send(("ready", os.getpid()))
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):  # the driver stopped: so do we
                return 0
            if message is None:
                return 0
            index, path = message
            conn.send(("done", index, do_photo(task, path)))
    except (BrokenPipeError, ConnectionResetError):
        return 0
    finally:
        close_task(task)


def _pickles(exc: BaseException) -> bool:
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return False
    return True


def main(argv: list[str]) -> int:
    # Ctrl-C reaches the whole process group: the driver decides what stops, not each worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # stdout is the user's (JSON lines): anything a library prints goes to stderr instead.
    os.dup2(2, 1)
    level = int(os.environ.get("DESCRIBE_LOCAL_WORKER_LOG_LEVEL", logging.WARNING))
    logging.basicConfig(level=level, format="%(levelname)s %(name)s (worker): %(message)s")
    conn = Connection(int(argv[1]))
    try:
        return serve(conn)
    finally:
        conn.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
