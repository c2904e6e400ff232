"""The cloud original's speed table: 0, 1 and 4+ people, every stage, sequential and parallel.

"Describe For Me" on AWS published the time of one description of a photo with no people,
one person and six people, with its Step Functions branches run one after another and in
parallel. We time the same kinds of photo from the shared data (warm: after one run that
is not counted) through the whole pipeline, MP3 included, and take the median over repeats.
``scripts/bench_pipeline.py`` prints the same table.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from describe_local.pipeline import Describer
    from describe_local.settings import Settings


@dataclass(frozen=True)
class SpeedCase:
    label: str
    photo: str  # relative to the shared data folder
    aws_sequential_ms: int
    aws_parallel_ms: int


# From the original's write-up: the photo's kind and the AWS times in milliseconds.
CASES = (
    SpeedCase("0 people", "captions/images/000000000802.jpg", 1869, 1702),
    SpeedCase("1 person", "faces/photos/knn_test__obama1.jpg", 4277, 2197),
    SpeedCase("6 people", "faces/groups/2008_002079.jpg", 6603, 3904),
)
# Who the gallery knows while the table is timed (so that faces are matched, as in real use).
GALLERY = {
    "Barack Obama": ["knn_train__obama__obama.jpg", "knn_train__obama__obama2.jpg"],
    "Joe Biden": ["knn_train__biden__biden.jpg", "knn_train__biden__biden2.jpg"],
    "Rose Leslie": ["knn_train__rose_leslie__img1.jpg", "knn_train__rose_leslie__img2.jpg"],
}
STAGES = ("decode", "caption", "faces", "text", "compose", "translate", "speech", "encode", "total")
MODES = ("sequential", "parallel")


def default_data() -> Path:
    """The shared data beside a checkout: ``../shared/data`` from the project root."""
    from describe_local.settings import project_root

    return project_root().parent / "shared" / "data"


def case_for(photo: Path, data: Path) -> SpeedCase:
    """The case a photo of the table stands for."""
    for case in CASES:
        if Path(photo) == data / case.photo:
            return case
    raise KeyError(photo)


def enrol(settings: Settings, data: Path) -> None:
    """Fill ``settings.known_faces`` with :data:`GALLERY`'s people."""
    from describe_local.gallery import open_gallery

    gallery = open_gallery(settings)
    for name, files in GALLERY.items():
        gallery.add(name, [data / "faces" / "photos" / f for f in files])


@dataclass
class CaseTiming:
    """One photo in one mode: each timed run's stage times, their medians, and what was said."""

    runs: list[dict[str, float]]
    said: str
    median: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.median = medians(self.runs)


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    """The median of each stage over runs (0 for a stage that did not run)."""
    return {s: float(statistics.median(r.get(s, 0.0) for r in runs)) for s in STAGES} if runs else {}


def time_case(describer: Describer, photo: Path, *, sequential: bool, repeats: int) -> CaseTiming:
    """Describe ``photo`` once to warm up, then ``repeats`` times; the stage times of the timed runs."""
    from describe_local.results import DescribeOptions

    options = DescribeOptions(sequential=sequential)
    first = describer.describe(photo, options)
    runs = [describer.describe(photo, options).timings_ms for _ in range(repeats)]
    return CaseTiming(runs=[dict(r) for r in runs], said=first.text)


def own_peak_rss_mb() -> float:
    """Peak RSS of this process alone. (RUSAGE_CHILDREN would count each child's
    copy of this process at fork time, before it execs, so the tree is sampled instead.)"""
    import resource

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
        return sum(_stat(pid)[21] for pid in tree_pids()) * os.sysconf("SC_PAGE_SIZE") / 1e6  # pages


def _stat(pid: int) -> list[int]:
    """The numeric fields of ``/proc/PID/stat`` after the command's name (zeros when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return [0] * 52
    return [int(f) if f.lstrip("-").isdigit() else 0 for f in fields]


def tree_pids() -> set[int]:
    """This process and all its descendants."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parents[int(entry.name)] = _stat(int(entry.name))[1]
    tree, frontier = {os.getpid()}, [os.getpid()]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    return tree


class OthersCpu:
    """The share of the machine's CPU that other processes used while the block ran: timings taken
    on a busy machine are longer than on an idle one, and the report says so."""

    def __enter__(self) -> OthersCpu:
        self.share: float | None = None
        self._start = (time.monotonic(), _busy_jiffies(), _tree_jiffies())
        return self

    def __exit__(self, *exc: object) -> None:
        wall, busy, ours = time.monotonic(), _busy_jiffies(), _tree_jiffies()
        capacity = (wall - self._start[0]) * os.sysconf("SC_CLK_TCK") * (os.cpu_count() or 1)
        if capacity > 0 and busy:
            self.share = max(0.0, min(1.0, ((busy - self._start[1]) - (ours - self._start[2])) / capacity))


def _busy_jiffies() -> int:
    """CPU time spent by every process on the machine (user, nice, system, irq, softirq, steal)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return 0
    return sum(fields[i] for i in (0, 1, 2, 5, 6, 7) if i < len(fields))


def _tree_jiffies() -> int:
    """CPU time of this process tree: each live process's own, and its waited-for children's."""
    return sum(sum(_stat(pid)[11:15]) for pid in tree_pids())


def speed_table(records: list[dict[str, Any]], data: Path) -> list[dict[str, Any]]:
    """The table's rows from the speed task's records: one per photo and mode, with the AWS figure."""
    rows = []
    for record in records:
        case = case_for(Path(record["path"]), data)
        for mode in MODES:
            timing = record.get(mode)
            aws = case.aws_sequential_ms if mode == "sequential" else case.aws_parallel_ms
            row: dict[str, Any] = {"case": case.label, "photo": case.photo, "mode": mode, "aws_ms": aws}
            if timing is None:
                row["error"] = "; ".join(record.get("errors", {}).values()) or "not timed"
            else:
                row.update(median=medians(timing["runs"]), runs=timing["runs"], said=timing["said"],
                           speedup=aws / max(1e-9, medians(timing["runs"])["total"]))
            rows.append(row)
    return rows
