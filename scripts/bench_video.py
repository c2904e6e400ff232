#!/usr/bin/env python3
"""Benchmark ``describe-local video`` on the clips in ../shared/data/video.

For each clip: shots found, narration cues placed and dropped, total time, real-time factor
(time / clip length) and peak RSS, each clip in a fresh child process so peaks do not mix. Then the
25 s clip concatenated five times over in one file (with PyAV, packets copied): its peak RSS should
match the single clip's (memory flat with length). Runs without a caption model (an empty store).

    .venv/bin/python scripts/bench_video.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
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


def run_one(path: Path) -> dict:
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
            report = describe_video(path, root / "out", describer)
    return {
        "clip": path.name, "length_s": round(report.duration, 2), "shots": len(report.shots),
        "cues": len(report.cues), "dropped": len(report.dropped), "load_s": round(loaded, 2),
        "time_s": round(report.seconds, 2), "rtf": round(report.seconds / max(report.duration, 1e-3), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def child(path: Path) -> dict:
    result = subprocess.run([sys.executable, __file__, "--one", str(path)], capture_output=True, text=True,
                            cwd=ROOT, check=False)
    if result.returncode:
        raise SystemExit(f"{path.name} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=5, help="how many times over the long clip is concatenated")
    args = parser.parse_args()
    if args.one:
        sys.path.insert(0, str(ROOT))
        print(json.dumps(run_one(args.one)))
        return 0
    if not VIDEOS.is_dir():
        print(f"no videos at {VIDEOS}", file=sys.stderr)
        return 1
    rows = [child(p) for p in sorted(VIDEOS.glob("*.mp4"))]
    with tempfile.TemporaryDirectory() as tmp:
        long = Path(tmp) / f"{Path(LONG_CLIP).stem}-x{args.repeat}.mp4"
        concatenate(VIDEOS / LONG_CLIP, long, args.repeat)
        rows.append(child(long))
    print(f"{'clip':34} {'len s':>6} {'shots':>5} {'cues':>4} {'drop':>4} {'load s':>6} {'time s':>6} "
          f"{'RTF':>5} {'peak RSS MB':>11}")
    for r in rows:
        print(f"{r['clip']:34} {r['length_s']:6.1f} {r['shots']:5d} {r['cues']:4d} {r['dropped']:4d} "
              f"{r['load_s']:6.1f} {r['time_s']:6.1f} {r['rtf']:5.2f} {r['peak_rss_mb']:11d}")
    single = next(r for r in rows if r["clip"] == LONG_CLIP)
    print(f"RSS growth, {args.repeat}x the clip vs once: {rows[-1]['peak_rss_mb'] - single['peak_rss_mb']:+d} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
