"""The cloud original's speed table: 0, 1 and 4 people, every stage, sequential and parallel.

"Describe For Me" on AWS published the time of one whole description (caption, faces, text,
then speech to MP3) of a photo with no people, one person and four people, with its Step
Functions branches run one after another and in parallel. We time photos of the same kinds from
the shared data (warm: after one run that is not counted) through the whole pipeline, MP3
included, and take the median over repeats. The cloud published totals only, each with a
caption in it: a row whose caption (or faces, or text) stage did not run is not compared with
it (:func:`verdict`). ``scripts/bench_pipeline.py`` prints the same table.
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
    label: str  # our photo: how many people its ground truth holds
    photo: str  # relative to the shared data folder
    cloud_label: str  # the published row it is set beside
    aws_sequential_ms: int
    aws_parallel_ms: int


# The published rows (people in the photo, AWS times in milliseconds) and our photo for each. The
# shared data has no photo of exactly four people with ground truth; the nearest above four has
# six faces, so our time there is if anything longer than a four-person photo's would be.
CASES = (
    SpeedCase("0 people", "captions/images/000000000802.jpg", "0 people", 1869, 1702),
    SpeedCase("1 person", "faces/photos/knn_test__obama1.jpg", "1 person", 4277, 2197),
    SpeedCase("6 people", "faces/groups/2008_002079.jpg", "4 people", 6603, 3904),
)
# The stages every published total includes: a caption, faces, text (then speech and the MP3).
CLOUD_STAGES = ("caption", "faces", "text")
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
    """One photo in one mode: each timed run's stage times, their medians, what was said, and each
    analysis stage's state over the timed runs (``"ok"``, else how one run ended: ``"off"``...)."""

    runs: list[dict[str, float]]
    said: str
    ran: dict[str, str] = field(default_factory=dict)
    median: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.median = medians(self.runs)


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    """The median of each stage over runs (0 for a stage that did not run)."""
    return {s: float(statistics.median(r.get(s, 0.0) for r in runs)) for s in STAGES} if runs else {}


def time_case(describer: Describer, photo: Path, *, sequential: bool, repeats: int) -> CaseTiming:
    """Describe ``photo`` once to warm up, then ``repeats`` times; the stage times of the timed runs."""
    from describe_local.results import DescribeOptions, Status

    options = DescribeOptions(sequential=sequential)
    first = describer.describe(photo, options)
    timed = [describer.describe(photo, options) for _ in range(repeats)]
    ran = {}
    for stage in CLOUD_STAGES:
        states = [d.stages[stage].status if stage in d.stages else Status.OFF for d in timed]
        ran[stage] = next((state for state in states if state is not Status.OK), Status.OK).value
    return CaseTiming(runs=[dict(d.timings_ms) for d in timed], said=first.text, ran=ran)


@dataclass(frozen=True)
class Verdict:
    """Whether a row can be set against the cloud's total, and the words that say so."""

    comparable: bool
    text: str
    speedup: float | None = None  # the cloud's ms / ours, only when comparable


def verdict(ran: dict[str, str], total_ms: float, aws_ms: int) -> Verdict:
    """Ours against the cloud's published total, like for like or not at all: the cloud published
    totals only, and each includes a caption, faces and text, so a row where one of those did not
    run (no caption model, a stage that failed or timed out) is not compared. ``ran``: each stage's
    state; an older record without it counts as unknown."""
    from describe_local.results import Status

    if not ran:
        return Verdict(False, "cannot compare: which stages ran was not recorded")
    states = {stage: Status(ran.get(stage, Status.OFF)) for stage in CLOUD_STAGES}
    missing = [stage for stage, state in states.items() if state is not Status.OK]
    if states["caption"] is Status.OFF:
        return Verdict(False, "cannot compare: no caption model ran; the cloud's totals include a caption")
    if missing:
        how = ", ".join(f"{stage} {states[stage].value.replace('_', ' ')}" for stage in missing)
        return Verdict(False, f"cannot compare: {how}; the cloud's totals include every stage")
    speedup = aws_ms / max(1e-9, total_ms)
    if 0.95 <= speedup <= 1.05:
        return Verdict(True, "about the same", speedup)
    return Verdict(True, f"{speedup:.1f}x faster" if speedup > 1 else f"{1 / speedup:.1f}x slower", speedup)


def stages_ran(ran: dict[str, str]) -> str:
    """The analysis stages of a row in a few words: ``caption off; faces, text ran``."""
    if not ran:
        return "not recorded"
    ok = [stage for stage, state in ran.items() if state == "ok"]
    other = [f"{stage} {state.replace('_', ' ')}" for stage, state in ran.items() if state != "ok"]
    return "; ".join([*other, *([", ".join(ok) + " ran"] if ok else [])])


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
    """The table's rows from the speed task's records: one per photo and mode, with the AWS figure,
    which stages ran, and the comparison (``speedup`` is ``None`` where there is none)."""
    rows = []
    for record in records:
        case = case_for(Path(record["path"]), data)
        for mode in MODES:
            timing = record.get(mode)
            aws = case.aws_sequential_ms if mode == "sequential" else case.aws_parallel_ms
            row: dict[str, Any] = {"case": case.label, "photo": case.photo, "mode": mode,
                                   "cloud_case": case.cloud_label, "aws_ms": aws}
            if timing is None:
                row["error"] = "; ".join(record.get("errors", {}).values()) or "not timed"
            else:
                median = medians(timing["runs"])
                ran = timing.get("ran", {})
                judged = verdict(ran, median["total"], aws)
                row.update(median=median, runs=timing["runs"], said=timing["said"], ran=ran,
                           comparable=judged.comparable, versus=judged.text, speedup=judged.speedup)
            rows.append(row)
    return rows
