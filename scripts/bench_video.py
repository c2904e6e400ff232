#!/usr/bin/env python3
"""Benchmark ``describe-local video`` on the clips in ../shared/data/video.

For each clip: shots found, narration cues placed in pauses, held (spoken with the video paused)
and dropped, total time, real-time factor (time / clip length; and CPU seconds / clip length,
which other load on the machine moves less: this process and the describer's helper processes,
whose model loading counts too) and peak RSS, each clip in a fresh child process so peaks do not
mix; once as ``describe-local video`` runs by default and once with ``--extended``. Then the 25 s
clip concatenated five times over in one file (with PyAV, packets copied): its peak RSS should
match the single clip's (memory flat with length). Runs without a caption model (an empty store).

``--baseline DIR`` also runs each clip with the ``describe_local`` package found in DIR (e.g. an
earlier commit: ``git archive COMMIT describe_local | tar -x -C DIR``), alternating with this one,
so that both are measured under the same load.

    .venv/bin/python scripts/bench_video.py [--repeat 5] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "data" / "video"
LONG_CLIP = "issue-195-aspect-ratio.mp4"


def concatenate(source: Path, target: Path, times: int) -> None:
    """``source`` played ``times`` times over in one MP4 (packets copied, timestamps shifted)."""
    import av

    with av.open(str(source)) as src, av.open(str(target), "w", format="mp4") as dst:
        streams = [s for s in src.streams if s.type in ("video", "audio")]
        out = {s.index: dst.add_stream_from_template(s) for s in streams}
        ends = {s.index: 0 for s in streams}
        starts: dict[int, int] = {}
        for packet in src.demux(*streams):
            if packet.dts is not None:
                starts.setdefault(packet.stream.index, packet.dts)  # audio may start before 0 (priming)
                last = max(packet.dts, packet.pts or 0) + (packet.duration or 0)
                ends[packet.stream.index] = max(ends[packet.stream.index], last)
        length = max(float((ends[i] - starts.get(i, 0)) * src.streams[i].time_base) for i in ends)
        for k in range(times):
            again = av.open(str(source))  # read afresh: a seek may not land every stream at its start
            for packet in again.demux(*[again.streams[s.index] for s in streams]):
                if packet.dts is None:
                    continue
                shift = round(k * length / packet.stream.time_base)
                packet.pts += shift
                packet.dts += shift
                packet.stream = out[packet.stream.index]
                dst.mux(packet)
            again.close()


def _cpu() -> float:
    """CPU seconds used by this process and its ended children (the describer's helper processes)."""
    import resource

    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def run_one(path: Path, extended: bool) -> dict:
    """Describe ``path`` in this process; the figures as a dict."""
    import resource
    import time

    from describe_local.pipeline import Describer
    from describe_local.settings import Settings
    from describe_local.video.describe import describe_video

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "models").mkdir()
        (root / "faces").mkdir()
        (root / "out").mkdir()
        settings = Settings.load(environ={}, models_dir=root / "models", known_faces=root / "faces",
                                 output_dir=root / "out", state_dir=root / "state")
        t0 = time.perf_counter()
        with Describer.load(settings) as describer:
            loaded = time.perf_counter() - t0
            cpu0 = _cpu()
            report = describe_video(path, root / "out", describer, **({"extended": True} if extended else {}))
    cpu = _cpu() - cpu0  # after the describer closed: its helper processes (faces) have ended and count
    held = sum(bool(getattr(cue, "hold", 0)) for cue in report.cues)
    return {
        "clip": path.name, "length_s": round(report.duration, 2), "shots": len(report.shots),
        "cues": len(report.cues) - held, "held": held, "dropped": len(report.dropped), "load_s": round(loaded, 2),
        "time_s": round(report.seconds, 2), "rtf": round(report.seconds / max(report.duration, 1e-3), 3),
        "cpu_rtf": round(cpu / max(report.duration, 1e-3), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def child(path: Path, package: Path = ROOT, extended: bool = False, label: str = "now") -> dict:
    command = [sys.executable, __file__, "--one", str(path), "--package", str(package)]
    result = subprocess.run(command + (["--extended"] if extended else []), capture_output=True, text=True,
                            cwd=package, check=False)
    if result.returncode:
        raise SystemExit(f"{path.name} failed:\n{result.stderr}")
    row = json.loads(result.stdout.strip().splitlines()[-1])
    row["run"] = label + (" --extended" if extended else "")
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--package", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--extended", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=5, help="how many times over the long clip is concatenated")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="a folder holding another describe_local package, measured alongside")
    args = parser.parse_args()
    if args.one:
        sys.path.insert(0, str(args.package))
        print(json.dumps(run_one(args.one, args.extended)))
        return 0
    if not VIDEOS.is_dir():
        print(f"no videos at {VIDEOS}", file=sys.stderr)
        return 1
    rows = []
    for clip in sorted(VIDEOS.glob("*.mp4")):
        if args.baseline:
            rows.append(child(clip, args.baseline.resolve(), label="baseline"))
        rows.append(child(clip))
        rows.append(child(clip, extended=True))
    with tempfile.TemporaryDirectory() as tmp:
        long = Path(tmp) / f"{Path(LONG_CLIP).stem}-x{args.repeat}.mp4"
        concatenate(VIDEOS / LONG_CLIP, long, args.repeat)
        rows.append(child(long))
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'clip':34} {'run':15} {'len s':>6} {'shots':>5} {'cues':>4} {'held':>4} {'drop':>4} {'load s':>6} "
          f"{'time s':>6} {'RTF':>5} {'CPU RTF':>7} {'peak RSS MB':>11}")
    for r in rows:
        print(f"{r['clip']:34} {r['run']:15} {r['length_s']:6.1f} {r['shots']:5d} {r['cues']:4d} {r['held']:4d} "
              f"{r['dropped']:4d} {r['load_s']:6.1f} {r['time_s']:6.1f} {r['rtf']:5.2f} {r['cpu_rtf']:7.2f} "
              f"{r['peak_rss_mb']:11d}")
    single = next(r for r in rows if r["clip"] == LONG_CLIP and r["run"] == "now")
    print(f"RSS growth, {args.repeat}x the clip vs once: {rows[-1]['peak_rss_mb'] - single['peak_rss_mb']:+d} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
