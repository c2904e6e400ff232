#!/usr/bin/env python3
"""Benchmark describing a collection: images per minute over the 77 photos of ``captions`` and
``faces/photos``, for one process, ``--jobs 2`` and a local Ray cluster with 2 CPUs; peak RSS
per worker.

    .venv/bin/python scripts/bench_collection.py [--no-audio] [--beam N] [--skip-ray]

Each mode runs the command as a user does (a fresh process, an empty gallery, a tiny random
OFA model of OFA-tiny's size: ``make_tiny_models.py --only ofa-tiny --full-vocab``, the real
model's cost with random weights), MP3s into a scratch folder. It prints, per mode, the rate
with the models' loading counted in (77 photos over the command's whole run) and the steady
rate (from the first record to the last), the peak RSS (``VmHWM`` in ``/proc/PID/status``)
of each worker process and of each face child, and the load average around the run (the
machine may be shared). The Ray cluster is started here on 127.0.0.1 before its run and
stopped by its processes' ids after; its start is not counted.

Targets on a 2-core machine: ``--jobs 2`` at least 1.4x one process; Ray at least 0.9x ``--jobs 2``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SAMPLE_S = 0.5


@dataclass
class Run:
    name: str
    seconds: float = 0.0
    first: float = 0.0  # seconds from the start to the first record
    last: float = 0.0
    records: int = 0
    peaks: dict[str, dict[int, int]] = field(default_factory=dict)  # role -> pid -> peak kB
    cpu: dict[int, float] = field(default_factory=dict)  # pid -> CPU seconds used during the run
    load: tuple[float, float] = (0.0, 0.0)
    started: float = 0.0

    def per_min(self) -> float:
        return self.records / self.seconds * 60 if self.seconds else 0.0

    def steady_per_min(self) -> float:
        span = self.last - self.first
        return (self.records - 1) / span * 60 if self.records > 1 and span > 0 else 0.0

    def cpu_per_photo(self) -> float:
        return sum(self.cpu.values()) / self.records if self.records else 0.0


def processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                found[int(entry.name)] = (parent, (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
    return found


def peak_kb(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def role(command: str, pid: int, driver: int) -> str | None:
    if "describe_local.see.faces.worker" in command:
        return "face child"
    if "describe_local.collection.worker" in command:
        return "worker"
    if "PhotoActor" in command:
        return "Ray actor"
    if pid == driver:
        return "driver"
    return None


def sample(run: Run, driver: int, roots: dict[int, float], stop: threading.Event, jsonl: Path | None) -> None:
    """Until ``stop``: each worker's peak RSS (VmHWM only grows: the last reading is the peak), the
    CPU time of every process of the run (``roots``: processes there before it, with their CPU
    time then), and when each photo was done (lines of ``jsonl``, written as photos finish)."""
    while not stop.is_set():
        table = processes()
        tree = set(roots) | {driver}
        for _ in range(8):
            tree |= {pid for pid, (parent, _) in table.items() if parent in tree}
        for pid in tree & set(table):
            kind = role(table[pid][1], pid, driver)
            if kind is not None:
                run.peaks.setdefault(kind, {})[pid] = max(run.peaks.get(kind, {}).get(pid, 0), peak_kb(pid))
            used = cpu_seconds(pid) - roots.get(pid, 0.0)
            run.cpu[pid] = max(run.cpu.get(pid, 0.0), used)
        if jsonl is not None and jsonl.exists():
            done = jsonl.read_bytes().count(b"\n")
            if done > run.records:
                now = time.monotonic() - run.started
                run.first = run.first or now
                run.last = now
                run.records = done
        stop.wait(SAMPLE_S / 5 if jsonl is not None else SAMPLE_S)


def describe(name: str, extra: list[str], env: dict[str, str], out: Path, roots: set[int]) -> Run:
    """One run of the command. With workers, photos finish out of order: their times are taken
    from a ``--jsonl`` file (written as each finishes); in one process, from stdout."""
    photos = [str(DATA / "captions" / "images"), str(DATA / "faces" / "photos")]
    jsonl = out.with_suffix(".jsonl") if extra and ("--jobs" in extra or "--ray" in extra) else None
    command = [sys.executable, "-m", "describe_local", "describe", *photos, "--json", "--quiet", "-o", str(out),
               *extra, *(["--jsonl", str(jsonl)] if jsonl else [])]
    run = Run(name)
    before = os.getloadavg()[0]
    started = run.started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    stop = threading.Event()
    sampler = threading.Thread(target=sample, args=(run, process.pid, {pid: cpu_seconds(pid) for pid in roots},
                                                    stop, jsonl), daemon=True)
    sampler.start()
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("{") and jsonl is None:
            now = time.monotonic() - started
            run.first = run.first or now
            run.last = now
            run.records += 1
    errors = process.stderr.read() if process.stderr else ""
    process.wait()
    run.seconds = time.monotonic() - started
    stop.set()
    sampler.join()
    if jsonl is not None:
        run.records = jsonl.read_bytes().count(b"\n")
    run.load = (before, os.getloadavg()[0])
    if process.returncode != 0:
        raise SystemExit(f"{name} failed ({process.returncode}):\n{errors[-3000:]}")
    return run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_ray(env: dict[str, str]) -> tuple[str, str]:
    """A Ray head on 127.0.0.1 with 2 CPUs; its address and temp folder."""
    temp_dir = tempfile.mkdtemp(prefix="rb", dir="/tmp")
    port = free_port()
    ray = Path(sys.executable).with_name("ray")
    subprocess.run([str(ray), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
                    "--num-gpus=0", "--include-dashboard=false", f"--temp-dir={temp_dir}", "--disable-usage-stats",
                    f"--dashboard-agent-listen-port={free_port()}"],
                   check=True, capture_output=True, timeout=180,
                   # the second variable keeps Ray on 127.0.0.1 instead of the network address
                   env={**env, "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"})
    return f"127.0.0.1:{port}", temp_dir


def cluster_pids(temp_dir: str) -> set[int]:
    table = processes()
    found = {pid for pid, (_, command) in table.items() if temp_dir in command} - {os.getpid()}
    for _ in range(10):
        found |= {pid for pid, (parent, _) in table.items() if parent in found}
    return found - {os.getpid()}


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its parent is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def stop_ray(temp_dir: str) -> None:
    pids = cluster_pids(temp_dir)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(running(pid) for pid in pids):
            time.sleep(0.2)


def report(run: Run, base: Run | None = None) -> None:
    ratio = f"  ({run.per_min() / base.per_min():.2f}x {base.name})" if base else ""
    print(f"{run.name:>14}: {run.per_min():6.1f} images/min with loading, {run.steady_per_min():6.1f} steady "
          f"({run.records} photos, {run.seconds:.0f} s, first after {run.first:.0f} s; load {run.load[0]:.1f} -> "
          f"{run.load[1]:.1f}){ratio}; CPU {run.cpu_per_photo():.2f} s a photo, all its processes")
    for kind, peaks in sorted(run.peaks.items()):
        values = ", ".join(f"{kb / 1024:.0f}" for kb in sorted(peaks.values(), reverse=True))
        print(f"{'':>16}peak RSS {kind}: {values} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-audio", action="store_true", help="text only (default: MP3s too, as a user gets)")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()
    if not (DATA / "captions" / "images").is_dir():
        raise SystemExit(f"the photos are not at {DATA}")
    sys.path.insert(0, str(ROOT / "scripts"))
    import make_tiny_models

    with tempfile.TemporaryDirectory(prefix="bench-collection-") as scratch:
        root = Path(scratch)
        (root / "models").mkdir()
        (root / "gallery").mkdir()
        make_tiny_models.write_ofa(root / "models" / "ofa-tiny", "ofa-tiny", seed=0, full_vocab=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DESCRIBE_LOCAL_")}
        env.update(DESCRIBE_LOCAL_MODELS_DIR=str(root / "models"), DESCRIBE_LOCAL_KNOWN_FACES=str(root / "gallery"))
        common = ["--beam", str(args.beam)] + (["--no-audio"] if args.no_audio else [])
        print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} before the runs; "
              f"beam {args.beam}, audio {'off' if args.no_audio else 'on'}")
        one = describe("one process", common, env, root / "out-1", set())
        report(one)
        two = describe("--jobs 2", [*common, "--jobs", "2"], env, root / "out-2", set())
        report(two, one)
        if not args.skip_ray:
            address, temp_dir = start_ray(env)
            try:
                ray_run = describe("Ray, 2 CPUs", [*common, "--ray", address], env, root / "out-r",
                                   cluster_pids(temp_dir))
                report(ray_run, two)
                # Again on the same cluster: Ray Data's own helper actors are there by now.
                ray_run = describe("Ray, again", [*common, "--ray", address], env, root / "out-r2",
                                   cluster_pids(temp_dir))
            finally:
                stop_ray(temp_dir)
                shutil.rmtree(temp_dir, ignore_errors=True)
            report(ray_run, two)
        print(f"targets: --jobs 2 >= 1.4x one process: {two.per_min() / one.per_min():.2f}x"
              + ("" if args.skip_ray else f"; Ray >= 0.9x --jobs 2: {ray_run.per_min() / two.per_min():.2f}x"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
