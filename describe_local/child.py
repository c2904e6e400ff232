"""Work in a long-lived Python child process that is killed and replaced when it does not answer.

A :class:`Child` loads something once (models) and then answers requests, one at a time,
over a socket pair::

    child = Child.start("package.module:factory", arg, name="the face detection process")
    child.receive()                         # Ready, or Failed / Gone when it could not load
    reply = child.ask(request, timeout_s=4)  # Answer(value), Failed(error) or Gone(status, timed_out)
    child.close()

In the child, ``factory(*args)`` builds a handler once; each request is answered with
``handler(request)``; a handler that raises is answered with :class:`Failed` and the child
stays up; the handler's ``close()``, if it has one, runs when the child stops. Failures come
back as values, never raised: each caller words them for its user.

Not ``multiprocessing``'s processes: its ``spawn`` re-runs the caller's main module in the
child, which breaks a script (or ``python -m describe_local``) without a ``__main__`` guard,
and ``fork`` can hang a process that runs torch threads. The child is
``python -m describe_local.child package.module:factory FD``, so ``ps`` names what it runs.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, Pipe, wait
from pathlib import Path
from typing import Any

from describe_local.errors import DescribeLocalError

log = logging.getLogger(__name__)

IDLE_EXIT_STATUS = 3  # a child left without a request for idle_exit_s exits with this status
STOP_GRACE_S = 5.0  # how long a child asked to stop may take to close what it holds before it is killed
LOG_LEVEL_VARIABLE = "DESCRIBE_LOCAL_CHILD_LOG_LEVEL"  # the parent's log level, for the child's
PACKAGE_PARENT = str(Path(__file__).resolve().parents[1])


@dataclass(frozen=True)
class Ready:
    """The child built its handler (its models loaded) and waits for requests."""

    pid: int


@dataclass(frozen=True)
class Answer:
    """What the handler returned for a request."""

    value: Any


@dataclass(frozen=True)
class Failed:
    """The child is up, but building its handler or answering a request raised ``error``
    (the exception itself where it pickles, else its ``"Type: message"``)."""

    error: BaseException | str

    @property
    def text(self) -> str:
        """One message: the error's own for :class:`DescribeLocalError`, else with its type."""
        if isinstance(self.error, str | DescribeLocalError):
            return str(self.error)
        return f"{type(self.error).__name__}: {self.error}"


@dataclass(frozen=True)
class Gone:
    """The child has ended and been reaped. ``status`` is its exit status (``-N``: killed by
    signal N); ``timed_out`` says it was killed for not answering within its deadline."""

    status: int | None
    timed_out: bool = False

    @property
    def idle(self) -> bool:
        """It exited by itself after ``idle_exit_s`` without a request."""
        return self.status == IDLE_EXIT_STATUS and not self.timed_out


Reply = Ready | Answer | Failed | Gone


class Child:
    """One child process serving requests over a socket pair; see the module's docstring.

    Meant for one thread at a time (callers hold their own lock), plus the watchdog thread
    that :meth:`send` arms. A child forgotten without :meth:`close` exits once its end of
    the connection is garbage-collected (it reads end of input).
    """

    def __init__(self, process: subprocess.Popen[bytes], conn: Connection, name: str) -> None:
        self.name = name  # for the log: "the face detection process"
        self.ready = False  # it said Ready
        self._refused = False  # it said Failed instead of Ready: it is exiting by itself
        self._process = process
        self._conn: Connection | None = conn  # None once reaped
        self._lock = threading.Lock()  # the watchdog against an answer arriving
        self._busy = False  # a request is out and not answered
        self._timed_out = False  # the watchdog killed it
        self._watchdog: threading.Timer | None = None

    @classmethod
    def start(
        cls,
        factory: str,
        *args: Any,
        name: str = "a child process",
        env: Mapping[str, str] | None = None,
        idle_exit_s: float | None = None,
    ) -> Child:
        """Start ``python -m describe_local.child factory FD`` and hand it ``args`` (pickled).

        Returns at once; its handler builds meanwhile, and :meth:`receive` gives
        :class:`Ready` (or :class:`Failed` / :class:`Gone`) when it is done. ``env`` adds to
        this process's environment; a child given ``idle_exit_s`` exits with
        :data:`IDLE_EXIT_STATUS` after that long without a request.
        """
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_PARENT, environment.get("PYTHONPATH")) if p)
        environment[LOG_LEVEL_VARIABLE] = str(logging.getLogger().getEffectiveLevel())
        environment.update(env or {})
        ours, theirs = Pipe(duplex=True)
        try:
            # Its own process group: Ctrl-C in a terminal goes to the foreground group, and the
            # parent owns shutdown. In the parent's group a child interrupted while Python was
            # still starting (before main() could ignore SIGINT) printed a KeyboardInterrupt
            # traceback; left behind, a child still ends when its connection does.
            # -P: not the working folder first on the path (python -m's default), where a folder
            # named describe_local would be imported instead of this package.
            process = subprocess.Popen(
                [sys.executable, "-P", "-m", "describe_local.child", factory, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=environment, process_group=0,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()  # the child holds its own copy: its death now shows as the end of ours
        child = cls(process, ours, name)
        try:
            child._post((args, idle_exit_s))
        except BaseException:  # args that do not pickle: no child is left behind
            child.close()
            raise
        return child

    @property
    def pid(self) -> int:
        return self._process.pid

    def poll(self) -> int | None:
        """Its exit status if it has ended (it is then reaped), else ``None``."""
        return self._process.poll()

    def wait(self, timeout: float | None = None) -> int:
        """Wait up to ``timeout`` seconds for it to end; its exit status (as :meth:`subprocess.Popen.wait`,
        which raises :class:`subprocess.TimeoutExpired`)."""
        return self._process.wait(timeout=timeout)

    def send(self, request: Any, timeout_s: float | None = None) -> None:
        """Hand the child ``request``. Past ``timeout_s`` without an answer it is killed, and
        :meth:`receive` gives ``Gone(timed_out=True)``; a child already gone shows there too."""
        with self._lock:
            self._busy = True
        if timeout_s is not None:
            # A watchdog rather than a read timeout: a stopped child blocks the write of a
            # large request into its full socket just as surely as the read of its answer.
            self._watchdog = threading.Timer(timeout_s, self._kill_late, args=(timeout_s,))
            self._watchdog.daemon = True
            self._watchdog.start()
        self._post(request)

    def receive(self) -> Reply:
        """Block until the child's next message: :class:`Ready` once after start, then an
        :class:`Answer` or :class:`Failed` per request; :class:`Gone` once it has ended
        (it is reaped then, and its connection closed)."""
        if self._conn is None:
            return self._gone()
        try:
            kind, value = self._conn.recv()
        except (EOFError, OSError):
            return self._gone()
        except Exception as exc:  # an answer this process cannot unpickle; the stream is intact
            kind, value = "failed", f"unreadable answer: {type(exc).__name__}: {exc}"
        if kind == "ready":
            self.ready = True
            return Ready(value)
        self._refused = not self.ready
        self._disarm()
        return Answer(value) if kind == "answer" else Failed(value)

    def ask(self, request: Any, timeout_s: float | None = None) -> Answer | Failed | Gone:
        """:meth:`send` then :meth:`receive` its reply (waiting for :class:`Ready` first)."""
        self.send(request, timeout_s)
        while isinstance(reply := self.receive(), Ready):
            pass
        return reply

    def kill(self) -> None:
        """SIGKILL it (its end shows as :class:`Gone` to :meth:`receive`)."""
        with contextlib.suppress(OSError):
            self._process.kill()

    def stop(self) -> None:
        """Ask an idle, ready child to finish (its handler closes); kill one that is busy or loading."""
        if self._conn is None or self._refused:
            return
        if self._busy or not self.ready:
            self.kill()
        else:
            self._post(None)

    def close(self, grace_s: float = STOP_GRACE_S) -> int | None:
        """:meth:`stop` it, wait ``grace_s`` for it to end (then kill it), reap it, close the
        connection. Returns its exit status."""
        self.stop()
        return self._reap(grace_s)

    def _post(self, message: Any) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(OSError):  # it has died: receive() says so
            self._conn.send(message)

    def _kill_late(self, timeout_s: float) -> None:
        with self._lock:
            if not self._busy or self._process.poll() is not None:
                return
            log.warning("%s (pid %d) did not answer within %g s; stopping it", self.name, self.pid, timeout_s)
            self._timed_out = True
            self.kill()

    def _disarm(self) -> None:
        with self._lock:
            self._busy = False
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _gone(self) -> Gone:
        return Gone(self._reap(STOP_GRACE_S), self._timed_out)

    def _reap(self, grace_s: float) -> int | None:
        self._disarm()
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()
        try:
            return self._process.wait(timeout=max(0.0, grace_s))
        except subprocess.TimeoutExpired:
            self.kill()
            return self._process.wait()


def wait_for_any(children: Sequence[Child], timeout_s: float | None) -> list[Child]:
    """Those of ``children`` with a message (or their end) to :meth:`Child.receive`, waiting
    up to ``timeout_s`` for one; empty when none came."""
    by_conn = {child._conn: child for child in children if child._conn is not None}
    return [by_conn[conn] for conn in wait(list(by_conn), timeout_s)]


def close_all(children: Iterable[Child], grace_s: float = STOP_GRACE_S) -> None:
    """Close ``children`` together: all are stopped first, then all share one ``grace_s``."""
    children = list(children)
    for child in children:
        child.stop()
    deadline = time.monotonic() + grace_s
    for child in children:
        child._reap(max(0.1, deadline - time.monotonic()))


# -- the child's side ---------------------------------------------------------------------------


def serve(conn: Connection, factory: str) -> int:
    """Build the handler from ``factory`` and the arguments sent first, then answer requests
    until ``None``, the end of the connection, or ``idle_exit_s`` without one. Its exit status."""
    try:
        args, idle_exit_s = conn.recv()
        module_name, _, name = factory.partition(":")
        handler = getattr(importlib.import_module(module_name), name)(*args)
    except EOFError:  # the parent went away before we started
        return 0
    except Exception as exc:
        log.debug("%s could not start", factory, exc_info=True)
        with contextlib.suppress(OSError):
            conn.send(("failed", _portable(exc)))
        return 1
    try:
        conn.send(("ready", os.getpid()))
        while True:
            # An idle child exits (its parent starts a new one when needed), so that a parent
            # that forgot to close it does not hold a process and its models for long.
            if idle_exit_s is not None and not conn.poll(idle_exit_s):
                return IDLE_EXIT_STATUS
            try:
                request = conn.recv()
            except (EOFError, OSError):  # the parent stopped: so do we
                return 0
            if request is None:
                return 0
            _answer(conn, handler, request)
    except (BrokenPipeError, ConnectionResetError):
        return 0
    finally:
        close = getattr(handler, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()


def _answer(conn: Connection, handler: Any, request: Any) -> None:
    try:
        message = ("answer", handler(request))
    except Exception as exc:  # report it and stay up for the next request
        log.exception("a request failed")
        message = ("failed", _portable(exc))
    try:
        conn.send(message)
    except (BrokenPipeError, ConnectionResetError):
        raise
    except Exception as exc:  # it did not pickle: nothing was written, so the stream is intact
        conn.send(("failed", f"the answer could not be sent: {type(exc).__name__}: {exc}"))


def _portable(exc: Exception) -> Exception | str:
    """``exc`` itself when it survives pickling (the parent can raise it as it is), else its text."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return f"{type(exc).__name__}: {exc}"
    return exc


def main(argv: Sequence[str]) -> int:
    """``python -m describe_local.child package.module:factory FD``."""
    # The parent decides what stops, not each child: a SIGINT sent to this child's own group
    # (``kill -INT -PGID``) is ignored too.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # stdout is not ours (the CLI's JSON lines): anything a library prints goes to stderr.
    os.dup2(2, 1)
    level = int(os.environ.get(LOG_LEVEL_VARIABLE, logging.WARNING))
    logging.basicConfig(level=level, format="%(levelname)s %(name)s (worker): %(message)s")
    conn = Connection(int(argv[2]))
    try:
        return serve(conn, argv[1])
    finally:
        conn.close()


if __name__ == "__main__":
    # Run the imported module, not this __main__ copy, so there is one set of its classes.
    from describe_local.child import main as _main

    sys.exit(_main(sys.argv))
