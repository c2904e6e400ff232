"""Benchmark the whole pipeline as the original's table did: 0, 1 and 4+ people.

Prints, for each photo, the median warm time of every stage in parallel and
sequential mode, the two totals next to the AWS figures, and the peak RSS of
this process (and of its Tesseract children). Run it through ``scripts/bench``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from describe_local.pipeline import DescribeOptions, Describer  # noqa: E402
from describe_local.see.faces.gallery import Gallery  # noqa: E402
from describe_local.settings import Settings  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
# (label, photo, AWS sequential ms, AWS parallel ms) from the original's write-up.
CASES = [
    ("0 people", DATA / "captions/images/000000000802.jpg", 1869, 1702),
    ("1 person", DATA / "faces/photos/knn_test__obama1.jpg", 4277, 2197),
    ("6 people", DATA / "faces/groups/2008_002079.jpg", 6603, 3904),
]
GALLERY = {
    "Barack Obama": ["knn_train__obama__obama.jpg", "knn_train__obama__obama2.jpg"],
    "Joe Biden": ["knn_train__biden__biden.jpg", "knn_train__biden__biden2.jpg"],
    "Rose Leslie": ["knn_train__rose_leslie__img1.jpg", "knn_train__rose_leslie__img2.jpg"],
}
STAGES = ("decode", "caption", "faces", "text", "compose", "translate", "speech", "encode", "total")


def own_peak_rss_mb() -> float:
    """Peak RSS of this process alone. (RUSAGE_CHILDREN would count each child's
    copy of this process at fork time, before it execs, so the tree is sampled instead.)"""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class TreeRss:
    """Samples the RSS of this process plus all its descendants, and keeps the peak."""

    def __init__(self, interval_s: float = 0.02) -> None:
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval_s,), daemon=True)

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self.peak_mb = max(self.peak_mb, self.sample_mb())

    @staticmethod
    def sample_mb() -> float:
        parents: dict[int, int] = {}
        rss: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
            rss[int(entry.name)] = int(fields[21])  # pages
        tree, frontier = {os.getpid()}, [os.getpid()]
        while frontier:
            pid = frontier.pop()
            for child, parent in parents.items():
                if parent == pid and child not in tree:
                    tree.add(child)
                    frontier.append(child)
        return sum(rss.get(pid, 0) for pid in tree) * os.sysconf("SC_PAGE_SIZE") / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--caption-model", help="caption model name or folder (default: the setting)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per photo and mode (median)")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"needs the real photos in {DATA}", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory() as tmp, TreeRss() as tree:
        settings = Settings.load(known_faces=Path(tmp) / "known_faces", caption_model=args.caption_model)
        gallery = Gallery.open(settings.known_faces, settings)
        for name, files in GALLERY.items():
            gallery.add(name, [DATA / "faces/photos" / f for f in files])
        with Describer.load(settings) as describer:
            caption_note = describer.unavailable.get("caption")
            print(f"caption model: {settings.caption_model}" + (f" ({caption_note})" if caption_note else ""))
            print(f"timed runs per photo and mode: {args.repeat} (median), after one warm-up run\n")
            header = f"{'photo':10} {'mode':10} " + " ".join(f"{s:>9}" for s in STAGES) + "   AWS ms"
            print(header)
            print("-" * len(header))
            for label, photo, aws_seq, aws_par in CASES:
                for sequential, aws in ((True, aws_seq), (False, aws_par)):
                    options = DescribeOptions(sequential=sequential)
                    first = describer.describe(photo, options)  # warm-up
                    runs = [describer.describe(photo, options) for _ in range(args.repeat)]
                    med = {s: statistics.median(r.timings_ms.get(s, 0.0) for r in runs) for s in STAGES}
                    mode = "sequential" if sequential else "parallel"
                    print(f"{label:10} {mode:10} " + " ".join(f"{med[s]:9.0f}" for s in STAGES) + f"   {aws:6d}")
                print(f"{'':10} said: {first.text[:110]}")
    print(f"\npeak RSS: {tree.peak_mb:.0f} MB for the whole process tree (sampled every 20 ms; "
          f"faces and Tesseract run in child processes), {own_peak_rss_mb():.0f} MB this process alone")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
