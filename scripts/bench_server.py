#!/usr/bin/env python3
"""Load test of `describe-local serve` on loopback: 8 clients posting real photos.

Starts the server as its own process (so that its memory is measured alone)
on a free loopback port with a throw-away state folder and gallery, enrols two
people through the API, then has N concurrent clients post photos from
../shared/data until a bounded number of requests has been answered. A client
that gets 503 waits for Retry-After and sends the same photo again (counted).
Any other error fails the run.

Reports throughput, p50/p95 latency of the answered requests, the 503 count,
and the server's peak RSS (its child processes included), with RSS sampled through the run to show whether it
stays flat (after a warm-up round, the last quarter against the first).

    .venv/bin/python scripts/bench_server.py               # 8 clients, 64 requests
    .venv/bin/python scripts/bench_server.py --requests 32 --json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PHOTOS = [
    "faces/photos/knn_test__obama1.jpg",
    "faces/photos/knn_test__obama_and_biden.jpg",
    "faces/photos/knn_test__kit_with_rose.jpg",
    "faces/photos/two_people.jpg",
    "faces/groups/dogs.jpg",
    "ocr/signs/french.jpg",
    "ocr/signs/example3.png",
    "faces/photos/obama-720p.jpg",
]
ENROL = {
    "Barack Obama": ["faces/photos/knn_train__obama__obama.jpg", "faces/photos/knn_train__obama__obama2.jpg"],
    "Joe Biden": ["faces/photos/knn_train__biden__biden.jpg", "faces/photos/knn_train__biden__biden2.jpg"],
}
MAX_RETRY_WAIT_S = 10.0


@dataclass
class Tally:
    """What the clients saw, shared between their threads."""

    latencies_s: list[float] = field(default_factory=list)  # the answered attempt
    end_to_end_s: list[float] = field(default_factory=list)  # from the first try, 503 waits included
    busy: int = 0  # 503 answers
    errors: list[str] = field(default_factory=list)
    sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class RssSampler(threading.Thread):
    """Samples a process's resident memory every ``every_s`` seconds."""

    def __init__(self, pid: int, every_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.every_s = pid, every_s
        self.samples: list[tuple[float, int]] = []  # (time, bytes), the process and its children
        self.own_peak = 0  # the server process alone
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            rss = rss_bytes(self.pid)
            own = _rss_of(self.pid)
            if rss is None or own is None:
                return
            self.own_peak = max(self.own_peak, own)
            self.samples.append((time.monotonic(), rss))
            self.stop.wait(self.every_s)

    def peak(self) -> int:
        return max(rss for _, rss in self.samples)

    def between(self, t0: float, t1: float) -> list[int]:
        return [rss for t, rss in self.samples if t0 <= t <= t1]


def rss_bytes(pid: int) -> int | None:
    """Resident memory of ``pid`` plus its children (the face worker, Tesseract runs)."""
    own = _rss_of(pid)
    if own is None:
        return None
    return own + sum(_rss_of(child) or 0 for child in _children(pid))


def _rss_of(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) * 1024 if match else None


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid``."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
            found.extend(kids)
            todo.extend(kids)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, state: Path, max_queue: int | None) -> tuple[subprocess.Popen, str]:
    """Run `describe-local serve`; return the process and the admin token it printed."""
    env = {
        **os.environ,
        "DESCRIBE_LOCAL_STATE_DIR": str(state / "state"),
        "DESCRIBE_LOCAL_KNOWN_FACES": str(state / "known_faces"),
    }
    if max_queue is not None:
        env["DESCRIBE_LOCAL_MAX_QUEUE"] = str(max_queue)
    proc = subprocess.Popen(
        [sys.executable, "-m", "describe_local", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"Admin token[^:]*: (\S+)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"the server did not print an admin token: {line!r}")
    # Keep reading its output, so that a full pipe never stalls the server.
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, match.group(1)


def wait_ready(base: str, proc: subprocess.Popen, timeout_s: float = 180.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the server exited while loading")
        try:
            health = httpx.get(f"{base}/api/health", timeout=5).json()
        except httpx.HTTPError:
            time.sleep(0.3)
            continue
        if health["status"] == "ready":
            return health
        if health["status"] == "failed":
            raise SystemExit(f"the server failed to load its models: {health.get('error')}")
        time.sleep(0.3)
    raise SystemExit("the server was not ready in time")


def enrol(base: str, token: str) -> None:
    with httpx.Client(base_url=base, timeout=120, headers={"Authorization": f"Bearer {token}"}) as c:
        for name, files in ENROL.items():
            upload = [("photos", (Path(f).name, (DATA / f).read_bytes(), "image/jpeg")) for f in files]
            response = c.post("/api/gallery/people", data={"name": name}, files=upload)
            response.raise_for_status()


def client(base: str, photos: list[tuple[str, bytes]], quota: list[int], tally: Tally, index: int) -> None:
    """Post photos until the shared quota is used up."""
    with httpx.Client(base_url=base, timeout=300) as c:
        k = index
        while True:
            with tally.lock:
                if quota[0] <= 0:
                    return
                quota[0] -= 1
            name, data = photos[k % len(photos)]
            k += 1
            first_try = time.perf_counter()
            while True:
                t0 = time.perf_counter()
                try:
                    response = c.post("/api/describe", files={"photo": (name, data, "image/jpeg")})
                except httpx.HTTPError as exc:
                    with tally.lock:
                        tally.errors.append(f"{name}: {type(exc).__name__}: {exc}")
                    break
                elapsed = time.perf_counter() - t0
                with tally.lock:
                    tally.sent += 1
                if response.status_code == 503:
                    with tally.lock:
                        tally.busy += 1
                    time.sleep(min(MAX_RETRY_WAIT_S, float(response.headers.get("Retry-After", "1"))))
                    continue
                if response.status_code != 200:
                    with tally.lock:
                        tally.errors.append(f"{name}: {response.status_code} {response.text[:200]}")
                    break
                audio = c.get(response.json()["audio_url"])
                with tally.lock:
                    if audio.status_code != 200 or not audio.content:
                        tally.errors.append(f"{name}: audio {audio.status_code}")
                    else:
                        tally.latencies_s.append(elapsed)
                        tally.end_to_end_s.append(time.perf_counter() - first_try)
                break


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=64, help="requests to answer after the warm-up")
    parser.add_argument("--max-queue", type=int, help="the server's max_queue (default: the setting)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object too")
    args = parser.parse_args()
    if not (DATA / "README.md").is_file():
        print(f"real photos not found at {DATA}; nothing to measure", file=sys.stderr)
        return 2

    photos = [(Path(p).name, (DATA / p).read_bytes()) for p in PHOTOS]
    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        t_start = time.perf_counter()
        proc, token = start_server(port, Path(tmp), args.max_queue)
        sampler = RssSampler(proc.pid)
        sampler.start()
        try:
            health = wait_ready(base, proc)
            load_s = time.perf_counter() - t_start
            enrol(base, token)

            def run_round(count: int) -> tuple[Tally, float]:
                tally, quota = Tally(), [count]
                threads = [
                    threading.Thread(target=client, args=(base, photos, quota, tally, i))
                    for i in range(args.clients)
                ]
                t0 = time.perf_counter()
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                return tally, time.perf_counter() - t0

            run_round(args.clients)  # warm-up: one photo per client, not counted
            t_measure = time.monotonic()
            tally, wall_s = run_round(args.requests)
            t_end = time.monotonic()
            final = httpx.get(f"{base}/api/health", timeout=5).json()
        finally:
            sampler.stop.set()
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        sampler.join()

    span = t_end - t_measure
    first = sampler.between(t_measure, t_measure + span / 4)
    last = sampler.between(t_end - span / 4, t_end)
    mb = 1024 * 1024
    rss_first, rss_last = statistics.median(first) / mb, statistics.median(last) / mb
    growth = rss_last - rss_first
    figures = {
        "clients": args.clients,
        "requests": len(tally.latencies_s),
        "attempts": tally.sent,
        "http_503": tally.busy,
        "errors": len(tally.errors),
        "wall_s": round(wall_s, 1),
        "throughput_per_min": round(60 * len(tally.latencies_s) / wall_s, 1),
        "latency_p50_s": round(percentile(tally.latencies_s, 0.50), 2),
        "latency_p95_s": round(percentile(tally.latencies_s, 0.95), 2),
        "end_to_end_p50_s": round(percentile(tally.end_to_end_s, 0.50), 2),
        "end_to_end_p95_s": round(percentile(tally.end_to_end_s, 0.95), 2),
        "server_load_s": round(load_s, 1),
        "server_peak_rss_mb": round(sampler.peak() / mb),
        "server_process_peak_rss_mb": round(sampler.own_peak / mb),
        "rss_first_quarter_mb": round(rss_first),
        "rss_last_quarter_mb": round(rss_last),
        "rss_growth_mb": round(growth, 1),
        "rss_flat": abs(growth) <= max(50.0, 0.05 * rss_first),
        "rss_timeline_mb": [round(statistics.median(sampler.between(t0, t0 + span / 10) or [0]) / mb)
                            for t0 in (t_measure + i * span / 10 for i in range(10))],
        "max_queue": health["queue"]["max"],
        "audio_clips_kept_at_end": final["audio_clips"],
        "models": sorted(k for k, v in health["models"].items() if v.get("loaded")),
    }
    print(f"describe-local serve on loopback, {args.clients} clients, {figures['requests']} answered requests")
    print(f"  models loaded: {', '.join(figures['models'])} (in {figures['server_load_s']} s); "
          f"max_queue {figures['max_queue']}")  # fmt: skip
    print(f"  throughput  {figures['throughput_per_min']} photos/min over {figures['wall_s']} s")
    print(f"  latency     p50 {figures['latency_p50_s']} s, p95 {figures['latency_p95_s']} s (answered attempt); "
          f"with 503 retries p50 {figures['end_to_end_p50_s']} s, p95 {figures['end_to_end_p95_s']} s")  # fmt: skip
    print(f"  503 busy    {figures['http_503']} (each retried after Retry-After); other errors {figures['errors']}")
    print(f"  server RSS  peak {figures['server_peak_rss_mb']} MB with its child processes "
          f"({figures['server_process_peak_rss_mb']} MB the server process alone); "
          f"first quarter {figures['rss_first_quarter_mb']} MB, last quarter {figures['rss_last_quarter_mb']} MB: "
          f"{'flat' if figures['rss_flat'] else 'GROWING'} ({figures['rss_growth_mb']:+} MB)")  # fmt: skip
    print(f"  RSS through the run (MB, tenths): {' '.join(str(v) for v in figures['rss_timeline_mb'])}")
    for error in tally.errors[:10]:
        print(f"  error: {error}", file=sys.stderr)
    if args.json:
        print(json.dumps(figures))
    return 0 if not tally.errors and figures["rss_flat"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
