"""Ctrl-C on a real ``describe-local describe`` with face detection: one line, exit 130, no traceback.

A terminal sends SIGINT to its whole foreground process group. The moments are measured from
the start of the face detection child: while its Python is still starting (site imports), while
it loads dlib's models, and while photos are described (a request out, or the child idle while
text is read and speech is made). The parent owns the shutdown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.unit.test_child import interruptible

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CHILD = b"describe_local.child"
# Seconds after the face child appears: its interpreter starting, its models loading, describing.
MOMENTS = [0.005, 0.01, 0.02, 0.03, 0.3, 1.5, 3.0]


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` and that run ``describe_local.child``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and CHILD in cmdline:
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def photos(shared_data: Path) -> list[str]:
    found = sorted(str(p) for p in (shared_data / "faces" / "groups").glob("*.jpg"))
    assert len(found) >= 5, "faces/groups has too few photos"
    return found


@pytest.fixture(scope="module")
def faces_installed() -> None:
    from describe_local.errors import ModelNotInstalled
    from describe_local.see.faces.detect import FaceModels

    try:
        FaceModels.load()
    except ModelNotInstalled as exc:
        pytest.skip(f"no face detection child to interrupt: {exc}")


@pytest.mark.parametrize("moment", MOMENTS)
def test_ctrl_c_prints_one_line_and_exits_130(photos: list[str], faces_installed, tmp_path: Path, moment: float):
    env = {**os.environ, "DESCRIBE_LOCAL_KNOWN_FACES": str(tmp_path / "gallery"), "PYTHONUNBUFFERED": "1"}
    env.pop("DESCRIBE_LOCAL_CHILD_LOG_LEVEL", None)
    (tmp_path / "gallery").mkdir()
    # Its own session, so the SIGINT to its group reaches nothing else (not pytest).
    cli = subprocess.Popen(
        [sys.executable, "-m", "describe_local", "describe", "-o", str(tmp_path / "out"), *photos],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT, start_new_session=True,
        preexec_fn=interruptible,
    )
    try:
        deadline = time.monotonic() + 120
        while not (children := _children(cli.pid)):
            assert cli.poll() is None, "the command ended before its face detection child started"
            assert time.monotonic() < deadline, "no face detection child started within 120 s"
            time.sleep(0.002)
        time.sleep(moment)
        assert cli.poll() is None, f"the command ended within {moment} s of starting its child"
        os.killpg(cli.pid, signal.SIGINT)
        _, err = cli.communicate(timeout=120)
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)
            cli.communicate()
    stderr = err.decode(errors="replace")
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr and "Fatal" not in stderr, stderr
    assert cli.returncode == 130, stderr
    assert stderr.splitlines()[-1] == "Stopped." and stderr.count("Stopped.") == 1, stderr
    # The child, in its own process group, does not outlive its parent for long.
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in children):
        assert time.monotonic() < deadline, f"the face detection child {children} outlived the command"
        time.sleep(0.05)
