"""describe_local.child with real child processes: answers, errors, deadlines, deaths, idle
exits and clean closing (no process left running, no zombie, no leaked descriptor)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from describe_local.child import (
    IDLE_EXIT_STATUS,
    Answer,
    Child,
    Failed,
    Gone,
    Ready,
    close_all,
    wait_for_any,
)
from describe_local.errors import ConfigError

FACTORY = f"{__name__}:behave"


class Behaviour:
    """The handler the test children run: the request says what to do."""

    def __init__(self, closed: str) -> None:
        self.closed = closed

    def __call__(self, request: tuple[str, object]) -> object:
        what, value = request
        if what == "sleep":
            time.sleep(float(value))
        elif what == "exit":
            os._exit(int(value))
        elif what == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif what == "raise":
            raise ValueError(value)
        elif what == "unpicklable":
            return lambda: None
        return value

    def close(self) -> None:
        if self.closed:
            Path(self.closed).write_text(str(os.getpid()))


def behave(closed: str = "", refuse: bool = False) -> Behaviour:
    """A child's factory: refuses with a user's error, or builds a :class:`Behaviour`."""
    if refuse:
        raise ConfigError("no models here")
    return Behaviour(closed)


def gone(pid: int) -> bool:
    """Whether ``pid`` has ended and been reaped by us (not a zombie, not running)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child any more: reaped
        return not Path(f"/proc/{pid}").exists() or _parent(pid) != os.getpid()
    return False


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, IndexError, ValueError):
        return -1


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def ready_child():
    """A started child that has said Ready; closed afterwards whatever the test did."""
    child = Child.start(FACTORY, name="the test child")
    assert child.receive() == Ready(child.pid)
    yield child
    child.close()


def test_a_child_answers_and_closes_cleanly(tmp_path: Path):
    fds = open_fds()
    closed = tmp_path / "closed"
    child = Child.start(FACTORY, str(closed), name="the test child")
    assert isinstance(child.receive(), Ready) and child.ready
    assert child.ask(("echo", {"a": [1, 2]}), timeout_s=10) == Answer({"a": [1, 2]})
    assert child.ask(("echo", b"x" * 3_000_000)) == Answer(b"x" * 3_000_000)  # bigger than a socket's buffer
    assert child.close() == 0
    assert closed.read_text() == str(child.pid)  # asked to stop, it closed its handler
    assert gone(child.pid) and open_fds() == fds


def test_a_handler_that_raises_is_a_failure_and_the_child_stays_up(ready_child: Child):
    reply = ready_child.ask(("raise", "bad photo"))
    assert isinstance(reply, Failed) and isinstance(reply.error, ValueError)
    assert reply.text == "ValueError: bad photo"
    unpicklable = ready_child.ask(("unpicklable", None))
    assert isinstance(unpicklable, Failed) and "could not be sent" in unpicklable.text
    assert ready_child.ask(("echo", 5)) == Answer(5) and ready_child.poll() is None


def test_a_child_past_its_deadline_is_killed_and_a_new_one_answers(ready_child: Child):
    t0 = time.monotonic()
    reply = ready_child.ask(("sleep", 30), timeout_s=0.3)
    assert time.monotonic() - t0 < 5
    assert reply == Gone(-signal.SIGKILL, timed_out=True) and not reply.idle
    assert gone(ready_child.pid)
    with Replacement() as again:
        assert again.pid != ready_child.pid and again.ask(("echo", "ok"), timeout_s=10) == Answer("ok")


def test_a_stopped_child_is_killed_even_while_a_big_request_is_being_written(ready_child: Child):
    os.kill(ready_child.pid, signal.SIGSTOP)  # it reads nothing: the write blocks on the full socket
    reply = ready_child.ask(("echo", b"x" * 8_000_000), timeout_s=0.3)
    assert reply == Gone(-signal.SIGKILL, timed_out=True)
    assert gone(ready_child.pid)


@pytest.mark.parametrize(("how", "status"), [(("exit", 7), 7), (("sigkill", None), -signal.SIGKILL)])
def test_a_child_that_dies_mid_request_is_gone_with_its_status(ready_child: Child, how, status):
    fds = open_fds()
    assert ready_child.ask(how, timeout_s=10) == Gone(status, timed_out=False)
    assert gone(ready_child.pid) and open_fds() == fds - 1  # its connection was closed
    assert isinstance(ready_child.receive(), Gone)  # and stays gone


def test_a_child_killed_while_idle_is_seen_on_the_next_request(ready_child: Child):
    os.kill(ready_child.pid, signal.SIGKILL)
    assert ready_child.wait(10) == -signal.SIGKILL and ready_child.poll() == -signal.SIGKILL
    assert ready_child.ask(("echo", 1), timeout_s=10) == Gone(-signal.SIGKILL)


def test_a_factory_that_refuses_sends_its_error_and_exits():
    child = Child.start(FACTORY, "", True)
    reply = child.receive()
    assert isinstance(reply, Failed) and isinstance(reply.error, ConfigError) and reply.text == "no models here"
    assert child.close() == 1 and gone(child.pid)


def test_an_idle_child_exits_by_itself():
    child = Child.start(FACTORY, idle_exit_s=0.2)
    try:
        assert isinstance(child.receive(), Ready)
        assert child.wait(10) == IDLE_EXIT_STATUS
        reply = child.ask(("echo", 1))
        assert reply == Gone(IDLE_EXIT_STATUS) and reply.idle
    finally:
        child.close()


def test_wait_for_any_and_close_all_stop_busy_and_idle_children(tmp_path: Path):
    fds = open_fds()
    idle_closed = tmp_path / "idle"
    busy = Child.start(FACTORY, str(tmp_path / "busy"))
    idle = Child.start(FACTORY, str(idle_closed))
    children = [busy, idle]
    try:
        ready: set[int] = set()
        while len(ready) < 2:
            for child in wait_for_any(children, 10):
                assert isinstance(child.receive(), Ready)
                ready.add(child.pid)
        busy.send(("sleep", 30))
        idle.send(("echo", "quick"))
        assert wait_for_any(children, 10) == [idle] and idle.receive() == Answer("quick")
        assert wait_for_any(children, 0.05) == []
    finally:
        t0 = time.monotonic()
        close_all(children, grace_s=5)
    assert time.monotonic() - t0 < 3  # the busy one was killed, not waited for
    assert busy.poll() == -signal.SIGKILL and idle.poll() == 0
    assert idle_closed.exists() and not (tmp_path / "busy").exists()
    assert gone(busy.pid) and gone(idle.pid) and open_fds() == fds


def test_arguments_that_do_not_pickle_leave_no_child():
    fds = open_fds()
    with pytest.raises(Exception, match="pickle"):
        Child.start(FACTORY, lambda: None)
    assert open_fds() == fds


class Replacement:
    """A new child, as a caller starts one after the last was killed; closed on leaving."""

    def __enter__(self) -> Child:
        self.child = Child.start(FACTORY)
        return self.child

    def __exit__(self, *exc: object) -> None:
        pid = self.child.pid
        self.child.close()
        assert gone(pid)


# A parent that starts a child and is stopped with Ctrl-C, as a terminal sends it: to the whole
# foreground process group. It lets the child finish starting (as a stage loading in a thread
# does), closes it, prints one line and exits 130, as the CLI does.
CTRL_C_PARENT = """
import os, signal, sys, time
from describe_local.child import Child
try:
    child = Child.start({factory!r}, name="the test child")
    time.sleep({delay})
    os.killpg(0, signal.SIGINT)
    time.sleep(5)
except KeyboardInterrupt:
    child.receive()
    child.close()
    print("Stopped.", file=sys.stderr)
    sys.exit(130)
"""


def interruptible() -> None:
    """In the new process before it runs: Ctrl-C as a terminal's foreground job has it. A job started
    in the background by a shell (``nohup cmd &``, as CI may be) inherits SIGINT ignored, and Python
    then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("delay", [0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.2])
def test_ctrl_c_to_the_process_group_leaves_the_child_quiet(tmp_path: Path, delay: float):
    """Ctrl-C while the child is still starting Python (its site imports) or loading: the parent
    owns the shutdown, so the child prints no KeyboardInterrupt traceback of its own."""
    import subprocess
    import sys

    script = CTRL_C_PARENT.format(factory=FACTORY, delay=delay)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         start_new_session=True, env=env,  # its own group: the signal reaches no one else
                         preexec_fn=interruptible)
    assert run.returncode == 130, run.stderr
    assert run.stderr.strip() == "Stopped.", run.stderr


def test_a_describe_local_folder_in_the_working_folder_is_not_what_the_child_imports(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    impostor = tmp_path / "describe_local"
    impostor.mkdir()
    (impostor / "__init__.py").write_text("raise SystemExit('the working folder was imported')\n")
    monkeypatch.chdir(tmp_path)
    child = Child.start(FACTORY, name="the test child")
    try:
        assert child.receive() == Ready(child.pid)
        assert child.ask(("echo", "still ours"), timeout_s=10) == Answer("still ours")
    finally:
        child.close()
