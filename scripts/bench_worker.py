#!/usr/bin/env python3
"""Where one collection worker's megabytes go: the worker process of ``describe --jobs N`` and
its face child, photo after photo.

One worker (``run_local`` with one job, as each of ``--jobs N``'s workers runs) describes the
same photos in each configuration, with speech (as a user gets it) unless ``--no-audio``. A
thread samples the worker and its children every few ms (``/proc/PID/status``), and after each
photo the worker's resident set is read, split into anonymous memory (its own) and file pages
(mapped model files, shared with every other process that maps them). Printed per configuration:

* the tree's peak: the largest sum of the resident sets at one sample (worker + face child +
  Tesseract ...), and the largest sum of the high-water marks of those alive (an upper bound);
* each process's high-water mark (``VmHWM``);
* the worker's resident set after photo 1 and after the last, and so its growth between them;
* the worker's largest peak over one photo (its ``VmHWM`` is reset after each).

The worker is given the cores (``--share``) and options one of ``describe --jobs N``'s workers
gets (by default a worker of ``--jobs 2`` on this machine).

``--without COMMIT`` also measures the working tree with that commit's changes undone (the
fairest "before" while others change other files); ``--env NAME=VALUE`` the working tree with a
variable set. Configurations alternate run by run, so that the machine's load falls on each alike.

    .venv/bin/python scripts/bench_worker.py --caption-model /tmp/bench/ofa-tiny --photos 20
    .venv/bin/python scripts/bench_worker.py --caption-model /tmp/bench/ofa-tiny --without COMMIT
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_memory import Config, children_of, command_name, configurations, status_kb

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"
DATA = ROOT.parent / "shared" / "data"
SAMPLE_S = 0.003


def default_photos(count: int) -> list[Path]:
    """``count`` photos: the faces photos first (people, text), then the COCO captions photos."""
    folders = [DATA / "faces" / "photos", DATA / "captions" / "images"]
    photos = [p for folder in folders if folder.is_dir() for p in sorted(folder.iterdir())
              if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    return photos[:count]


class TreeSampler(threading.Thread):
    """Samples the resident sets of this process's descendants until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.peak_kb = 0  # the largest sum of resident sets at one sample
        self.hwm_alive_kb = 0  # the largest sum of the VmHWM of the processes alive at one sample
        self.hwm: dict[str, int] = {}  # process name -> its largest VmHWM

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.is_set():
            total = alive = 0
            for pid in children_of(me):
                total += status_kb(pid, "VmRSS")
                high = status_kb(pid, "VmHWM")
                alive += high
                if high:
                    name = command_name(pid)
                    self.hwm[name] = max(self.hwm.get(name, 0), high)
            self.peak_kb = max(self.peak_kb, total)
            self.hwm_alive_kb = max(self.hwm_alive_kb, alive)
            time.sleep(SAMPLE_S)


def worker_pid() -> int | None:
    return next((pid for pid in children_of(os.getpid()) if "collection.worker" in command_name(pid)), None)


def reset_hwm(pid: int) -> None:
    """Make ``pid``'s VmHWM start again from its present resident set (Linux: clear_refs 5)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
    except OSError:
        pass


def inner(photos: list[Path], caption_model: str | None, audio: bool, sequential: bool, share: int) -> None:
    """In a fresh driver process: one worker describes ``photos``; one JSON line of figures."""
    from describe_local.collection.local import run_local
    from describe_local.collection.spec import TaskSpec
    from describe_local.settings import Settings

    settings = Settings.load(**({"caption_model": caption_model} if caption_model else {}))
    # As the CLI's describe gives it; ``with_threads`` as for one of ``--jobs N``'s workers (``run_local``
    # applies it again for its one job: the threads and options already set stay).
    spec = TaskSpec("describe_local.collection.tasks:describe_photos", settings,
                    {"audio": audio, "sequential": sequential}).with_threads(share)
    sampler = TreeSampler()
    sampler.start()
    after: list[dict[str, float]] = []
    failures = 0
    started = time.perf_counter()
    for _index, record in run_local([(i, str(p)) for i, p in enumerate(photos)], spec, 1):
        failures += bool(record.get("errors", {}).get("describe") or record.get("errors", {}).get("worker"))
        pid = worker_pid()
        if pid is not None:
            figures = {field: status_kb(pid, field) / 1024 for field in ("VmRSS", "RssAnon", "RssFile", "VmHWM")}
            figures["photo"] = photos[_index].name
            after.append(figures)
            reset_hwm(pid)  # the next photo's VmHWM is its own peak
    wall = time.perf_counter() - started
    sampler.stop.set()
    sampler.join()
    print(json.dumps({"after": after, "peak_mb": sampler.peak_kb / 1024, "hwm_alive_mb": sampler.hwm_alive_kb / 1024,
                      "hwm_mb": {k: v / 1024 for k, v in sampler.hwm.items()}, "wall_s": wall,
                      "failures": failures}))


def measure(config: Config, args: argparse.Namespace) -> dict:
    command = [str(PYTHON), __file__, "--inner", "--photos", str(args.photos), "--share", str(args.share)]
    if args.caption_model:
        command += ["--caption-model", args.caption_model]
    if args.no_audio:
        command.append("--no-audio")
    if args.sequential or config.label.endswith("--sequential"):
        command.append("--sequential")
    before = os.times()
    # Not run from the checkout: a worker is ``python -m describe_local.child`` in the driver's folder, and
    # ``-m`` puts that folder first on the path, where the checkout's package would win over the config's.
    with tempfile.TemporaryDirectory(prefix="bench-worker-run-") as folder:
        done = subprocess.run(command, env=config.environment(), capture_output=True, text=True, cwd=folder)
    after = os.times()
    if done.returncode:
        sys.stderr.write(done.stderr[-3000:])
        raise SystemExit(f"the run of {config.label} failed")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    # the driver, the worker and its children, all waited for: user + system CPU seconds
    figures["cpu_s"] = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=20, help="how many photos the worker describes (default 20)")
    parser.add_argument("--caption-model", help="a caption model name or folder (default: the settings')")
    parser.add_argument("--no-audio", action="store_true", help="without speech (default: with, as a user gets it)")
    parser.add_argument("--runs", type=int, default=1, help="runs per configuration (median shown)")
    parser.add_argument("--without", action="append", default=[], metavar="COMMIT",
                        help="also measure the working tree with this commit's changes undone (repeatable)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="also measure the working tree with this variable set (repeatable, one config)")
    parser.add_argument("--per-photo", action="store_true", help="also each photo's worker peak and resident set")
    parser.add_argument("--share", type=int, default=max(1, (os.cpu_count() or 1) // 2),
                        help="the worker's cores, as run_local gives each of --jobs N (default: this machine's "
                             "cores / 2, a worker of --jobs 2)")
    parser.add_argument("--sequential", action="store_true",
                        help="the photo's stages one after another (DescribeOptions.sequential) in every configuration")
    parser.add_argument("--also-sequential", action="store_true",
                        help="also measure the working tree with the stages one after another")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    photos = default_photos(args.photos)
    if args.inner:
        inner(photos, args.caption_model, not args.no_audio, args.sequential, args.share)
        return 0
    if len(photos) < args.photos:
        raise SystemExit(f"only {len(photos)} photos under {DATA}")
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        configs = configurations(args, Path(tmp))
        if args.also_sequential:
            configs.append(Config("now --sequential"))
        results: dict[str, list[dict]] = {c.label: [] for c in configs}
        for _ in range(args.runs):
            for config in configs:
                results[config.label].append(measure(config, args))
    load = os.getloadavg()
    sound = "no audio" if args.no_audio else "with audio"
    print(f"one collection worker with {args.share} core(s), {args.photos} photos ({sound}, caption "
          f"{args.caption_model or 'from the settings'}), {args.runs} runs each, median; load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} cores")
    print(f"{'':40}" + "".join(f"{c.label[:22]:>24}" for c in configs))

    def line(what: str, value) -> None:
        print(f"{what:40}" + "".join(f"{statistics.median(value(r) for r in results[c.label]):>24.0f}"
                                     for c in configs))

    line("tree peak, sampled sum (MB)", lambda r: r["peak_mb"])
    line("tree peak, VmHWM of those alive (MB)", lambda r: r["hwm_alive_mb"])
    names = sorted({n for runs in results.values() for r in runs for n in r["hwm_mb"]})
    for name in names:
        line(f"  VmHWM {name}", lambda r, n=name: r["hwm_mb"].get(n, 0.0))
    for field in ("VmRSS", "RssAnon", "RssFile"):
        line(f"worker {field} after photo 1 (MB)", lambda r, f=field: r["after"][0][f])
        line(f"worker {field} after photo {args.photos} (MB)", lambda r, f=field: r["after"][-1][f])
    line("worker VmRSS growth, photo 1 -> last", lambda r: r["after"][-1]["VmRSS"] - r["after"][0]["VmRSS"])
    line("worker's largest peak over a photo (MB)", lambda r: max(a["VmHWM"] for a in r["after"][1:]))
    line("wall time (s)", lambda r: r["wall_s"])
    line("CPU time, user + system (s)", lambda r: r["cpu_s"])
    line("photos failed", lambda r: r["failures"])
    if args.per_photo:
        for config in configs:
            print(f"{config.label}, per photo (first run): worker VmHWM during it / VmRSS after it (MB)")
            for a in results[config.label][0]["after"]:
                print(f"  {a['photo'][:40]:42}{a['VmHWM']:6.0f} {a['VmRSS']:6.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
