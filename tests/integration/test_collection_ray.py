"""``describe --ray`` on a real Ray cluster that the test starts on loopback (2 CPUs) and stops
by its processes' ids afterwards: the same text per photo as one process, every photo exactly
once when an actor is killed mid-run, and an interrupted run finished by ``--resume``.

Skipped when Ray is not installed (``pip install 'describe-local[ray]'``; ``scripts/setup``
installs it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.integration.test_collection_local import (
    COMMON,
    ROOT,
    baseline,
    cli,
    collection_env,
    collection_root,
    folders,
    json_lines,
    some_photos,
    start_cli,
    wait_for_lines,
)

__all__ = ["collection_root"]  # a fixture, shared with test_collection_local.py

pytest.importorskip("ray.data", reason="Ray is not installed: pip install 'describe-local[ray]'")

RAY = Path(sys.executable).with_name("ray")


class Cluster(NamedTuple):
    address: str
    temp_dir: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cluster_pids(temp_dir: str) -> set[int]:
    """The processes of the cluster kept in ``temp_dir``: those whose command line names it
    (the GCS, the raylet and their helpers) and everything they started (the workers)."""
    parents: dict[int, int] = {}
    named: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            pid = int(entry.name)
            parents[pid] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if temp_dir.encode() in (entry / "cmdline").read_bytes():
                named.add(pid)
    found = named - {os.getpid()}
    for _ in range(10):  # bounded: a process tree is not deeper than this here
        more = {pid for pid, parent in parents.items() if parent in found} - found
        if not more:
            break
        found |= more
    return found - {os.getpid()}


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its parent is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def command_line(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    return ""


@pytest.fixture(scope="module")
def ray_cluster(collection_root: Path):
    """A Ray head on 127.0.0.1 with 2 CPUs; yields its address and folder; stopped by pid afterwards."""
    temp_dir = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths have a length limit
    port = free_port()
    env = collection_env(collection_root)
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # else Ray trades 127.0.0.1 for the network address
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    started = subprocess.run(
        [str(RAY), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
         "--num-gpus=0", "--include-dashboard=false", f"--temp-dir={temp_dir}", "--disable-usage-stats",
         f"--dashboard-agent-listen-port={free_port()}",
         f"--node-manager-port={free_port()}", f"--object-manager-port={free_port()}"],
        capture_output=True, text=True, env=env, timeout=180,
    )
    try:
        assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
        yield Cluster(f"127.0.0.1:{port}", temp_dir)
    finally:
        stop_cluster(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def stop_cluster(temp_dir: str) -> None:
    pids = cluster_pids(temp_dir)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5  # some of its processes wait out SIGTERM: then SIGKILL
    while time.monotonic() < deadline and any(running(pid) for pid in pids):
        time.sleep(0.2)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def test_ray_describes_each_photo_as_one_process_does(ray_cluster: Cluster, collection_root: Path, shared_data: Path,
                                                      tmp_path: Path):
    expected = baseline(collection_root, shared_data)
    output = tmp_path / "out.jsonl"
    started = time.monotonic()
    done = cli("describe", *folders(shared_data), *COMMON, "--ray", ray_cluster.address, "--jsonl", str(output),
               env=collection_env(collection_root))
    assert done.returncode == 0, done.stderr[-3000:]
    records = json_lines(done.stdout)
    assert [r["path"] for r in records] == list(expected)
    assert {r["path"]: r["text"] for r in records} == expected
    assert sorted(r["path"] for r in json_lines(output.read_text())) == sorted(expected)
    print(f"--ray: 77 photos in {time.monotonic() - started:.0f} s")


def test_a_killed_actor_loses_no_photo_and_duplicates_none(ray_cluster: Cluster, collection_root: Path,
                                                           shared_data: Path, tmp_path: Path):
    expected = baseline(collection_root, shared_data)
    photos = some_photos(shared_data, "captions/images", 16)
    wanted = {p: expected[p] for p in photos}
    output = tmp_path / "out.jsonl"
    run = start_cli("describe", *photos, *COMMON, "--ray", ray_cluster.address, "--jsonl", str(output),
                    env=collection_env(collection_root))
    try:
        assert wait_for_lines(output, 4, run) >= 4, "the run ended or stalled before an actor could be killed"
        actors = sorted(pid for pid in cluster_pids(ray_cluster.temp_dir) if "PhotoActor" in command_line(pid))
        assert actors, "no actor process found"
        os.kill(actors[0], signal.SIGKILL)
        stdout, stderr = run.communicate(timeout=600)
    finally:
        run.kill()
    assert run.returncode == 0, stderr[-3000:]
    records = json_lines(stdout)
    assert [r["path"] for r in records] == list(wanted)  # every photo once, in order
    assert {r["path"]: r["text"] for r in records} == wanted
    on_disk = [r["path"] for r in json_lines(output.read_text())]
    assert sorted(on_disk) == sorted(wanted)  # the file too: no photo twice
    assert not running(actors[0]) or "PhotoActor" not in command_line(actors[0])


def test_resume_after_an_interrupted_ray_run(ray_cluster: Cluster, collection_root: Path, shared_data: Path,
                                             tmp_path: Path):
    expected = baseline(collection_root, shared_data)
    photos = some_photos(shared_data, "faces/photos", 12)
    wanted = {p: expected[p] for p in photos}
    env = collection_env(collection_root)
    output = tmp_path / "out.jsonl"
    args = ("describe", *photos, *COMMON, "--ray", ray_cluster.address, "--jsonl", str(output))
    first = start_cli(*args, env=env)
    try:
        assert wait_for_lines(output, 4, first) >= 4
        assert first.poll() is None, "the run ended before it could be interrupted"
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.communicate()
    kept = json_lines(output.read_bytes().decode().rsplit("\n", 1)[0])
    assert 4 <= len(kept) < len(wanted)

    second = cli(*args, "--resume", env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert {r["path"] for r in json_lines(second.stdout)}.isdisjoint(r["path"] for r in kept)
    on_disk = json_lines(output.read_text())
    assert sorted(r["path"] for r in on_disk) == sorted(wanted)
    assert {r["path"]: r["text"] for r in on_disk} == wanted


def test_a_machine_without_a_model_is_named_with_what_it_lacks(ray_cluster: Cluster):
    import ray

    from describe_local.collection.ray_pool import check_nodes, connect
    from describe_local.errors import ModelsMissingOnNodes

    connect(ray, ray_cluster.address)
    try:
        check_nodes(ray, [str(ROOT)])  # there: no complaint
        with pytest.raises(ModelsMissingOnNodes) as caught:
            check_nodes(ray, ["/no/such/models/ofa-tiny"])
    finally:
        ray.shutdown()
    message = str(caught.value)
    assert socket.gethostname() in message and "127.0.0.1" in message and "/no/such/models/ofa-tiny" in message

