#!/usr/bin/env python3
"""Where the megabytes of one describe go: the whole process tree's peak, and each stage's and model's share.

Two measurements, each in fresh processes (the figures of a cold run):

* **tree**: ``describe-local describe PHOTO`` as the user runs it, timed; every process of its
  tree (the CLI, the face child, Tesseract, ...) read from ``/proc/PID/status`` every few ms.
  The tree's peak is the largest sum, at one sample, of the high-water marks of the processes
  then alive (an upper bound of what they held together; processes that never met, one
  Tesseract run after another, are not added up), beside the largest sum of resident sets seen.
  ``ru_maxrss`` is not used: it survives ``exec`` and so would report a parent's peak.
* **budget**: one Python process that loads and runs the stages one at a time, reading its
  own resident set after each step and resetting its high-water mark (``/proc/self/clear_refs``)
  before each run, so that each line is that step's own cost: the interpreter, the imports,
  each model's load, each stage's run peak over what was resident before it, speech, and the
  face child's resident set (its own process).

``--compare REV`` measures a git revision too (exported with ``git archive`` to a temporary
folder and imported from there); ``--without COMMIT`` the working tree with that commit's
changes undone (the fairest "before" while others change other files); ``--env NAME=VALUE``
the working tree with a variable set. Runs of the configurations alternate, so that the
machine's load falls on each alike.

    .venv/bin/python scripts/bench_memory.py --caption-model /tmp/h4/ofa-tiny
    .venv/bin/python scripts/bench_memory.py --caption-model /tmp/h4/ofa-tiny --audio --without COMMIT --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"
DOGS = Path("/work/shared/data/faces/groups/dogs.jpg")
if not DOGS.exists():
    DOGS = ROOT.parent / "shared" / "data" / "faces" / "groups" / "dogs.jpg"
MB = 1024 * 1024
SAMPLE_S = 0.003


def status_kb(pid: int | str, field_name: str) -> int:
    """A ``kB`` field (VmRSS, VmHWM) of ``/proc/PID/status``; 0 once the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children_of(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from each thread's ``children`` list)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children", encoding="ascii") as handle:
                    kids = [int(k) for k in handle.read().split()]
            except OSError:
                continue
            for kid in kids:
                if kid not in found and _cmdline(kid) != _cmdline(parent):  # a fork not yet exec'd is
                    found.append(kid)  # a copy of its parent's pages, not memory of its own
                    todo.append(kid)
    return found


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def command_name(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [w.decode(errors="replace") for w in raw if w]
    if "describe_local.child" in words:  # e.g. "child see.faces.worker", "child collection.worker"
        return "child " + words[words.index("describe_local.child") + 1].split(":")[0].removeprefix("describe_local.")
    return Path(words[0]).name if words else "?"


@dataclass
class TreeRun:
    wall_s: float
    peak_mb: float  # the largest sum of resident sets at one sample
    hwm_sum_mb: float  # the largest sum, at one sample, of the VmHWM of the processes then alive
    per_process: dict[str, float] = field(default_factory=dict)  # name -> VmHWM MB (largest of that name)
    returncode: int = 0


def run_tree(command: list[str], env: dict[str, str], cwd: Path) -> TreeRun:
    """Run ``command``, sampling its process tree until it ends."""
    hwm: dict[int, int] = {}
    names: dict[int, str] = {}
    peak = hwm_alive = 0
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    while process.poll() is None:
        pids = [process.pid, *children_of(process.pid)]
        total = alive = 0
        for pid in pids:
            total += status_kb(pid, "VmRSS")
            high = status_kb(pid, "VmHWM")
            alive += high
            if high:
                hwm[pid] = max(hwm.get(pid, 0), high)
                if pid not in names or names[pid] in ("?", "python"):
                    names[pid] = command_name(pid)
        peak = max(peak, total)
        hwm_alive = max(hwm_alive, alive)
        time.sleep(SAMPLE_S)
    wall = time.perf_counter() - start
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode:
        sys.stderr.write(stderr[-2000:])
    per: dict[str, float] = {}
    for pid, high in hwm.items():
        name = "describe (main)" if pid == process.pid else names.get(pid, "?")
        per[name] = max(per.get(name, 0.0), high / 1024)
    return TreeRun(wall, peak / 1024, hwm_alive / 1024, per, process.returncode)


# -- the budget: runs inside a fresh interpreter (``--inner-budget``) ------------------------------


def _rss() -> float:
    return status_kb("self", "VmRSS") / 1024


def _hwm() -> float:
    return status_kb("self", "VmHWM") / 1024


def _reset_hwm() -> None:
    """Make VmHWM start again from the present resident set (Linux: clear_refs 5)."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
        handle.write("5")


def inner_budget(photo: Path, caption_model: str | None, audio: bool) -> None:
    """Load and run each stage in turn in this process; print one JSON object of figures (MB, s)."""
    rows: list[tuple[str, float, float]] = []  # (what, MB added or peak over base, seconds)
    rows.append(("interpreter", _rss(), 0.0))

    def step(what: str, run, *, peak: bool = False):
        before = _rss()
        _reset_hwm()
        began = time.perf_counter()
        value = run()
        took = time.perf_counter() - began
        rows.append((what, (_hwm() if peak else _rss()) - before, took))
        return value

    import logging

    logging.basicConfig(level=logging.WARNING)

    def imports():
        import describe_local.pipeline  # noqa: F401 - what every describe imports first
        from describe_local.cli import describe  # noqa: F401

    step("imports (pipeline, cli)", imports)
    from describe_local.images import image_limits, load_photo
    from describe_local.see.loading import load_stages
    from describe_local.settings import Settings

    try:  # as Describer.load does (a revision from before it had no such module)
        from describe_local.memory import settle_allocator

        settle_allocator()
    except ImportError:
        pass
    overrides = {"caption_model": caption_model} if caption_model else {}
    settings = Settings.load(**overrides) if overrides else Settings.load()
    caption = step("load caption", lambda: load_stages(settings, ["caption"], lambda _m: None))
    faces = step("load faces (parent side)", lambda: load_stages(settings, ["faces"], lambda _m: None))
    text = step("load text", lambda: load_stages(settings, ["text"], lambda _m: None))
    voice = None
    if audio:
        from describe_local.say.speech import load_bundled_voice

        try:  # where the describer keeps the voice's mapped copy (revisions before it read the voice whole)
            from describe_local.say.voice_copy import copies_folder
        except ImportError:
            voice = step("load voice (Piper)", load_bundled_voice)
        else:
            voice = step("load voice (Piper)", lambda: load_bundled_voice(copies_folder(settings.models_dir)))
    from describe_local.say.plan import SpeechPlanner

    step("load planner/translation", lambda: SpeechPlanner.load(settings, bundled_voice=voice))
    photo_value = step("decode photo", lambda: load_photo(photo, **image_limits(settings)))
    timings = {"caption_s": 0.0}
    if caption.caption is not None:
        step("run caption (peak)", lambda: caption.caption.caption(photo_value.image), peak=True)
    if faces.faces is not None:
        step("run faces (parent peak)", lambda: faces.faces.recognize(photo_value), peak=True)
    if text.text is not None:
        step("run text (peak)", lambda: text.text.read(photo_value), peak=True)
    if voice is not None:
        step("speak 2 sentences (peak)",
             lambda: voice.synthesize("A dog sitting on a bench in a park. There is text: CLUB."), peak=True)
    child_pids = children_of(os.getpid())
    child_mb = sum(status_kb(pid, "VmHWM") for pid in child_pids) / 1024
    rows.append(("children (face child, ...) VmHWM", child_mb, 0.0))
    total = _hwm()  # since the last reset only; the whole process's resident set is below
    print(json.dumps({"rows": rows, "rss_end_mb": _rss(), "last_hwm": total, "timings": timings}))
    for stages in (caption, faces, text):
        stages.close()


# -- the driver ------------------------------------------------------------------------------------


@dataclass
class Config:
    label: str
    pythonpath: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        if self.pythonpath:
            env["PYTHONPATH"] = self.pythonpath
        env.update(self.env)
        return env


def export_revision(rev: str, into: Path) -> Path:
    """The tree of ``rev`` unpacked into ``into`` (the package and scripts), nothing else touched."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "describe_local"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def working_tree_without(commits: list[str], into: Path) -> Path:
    """The working tree's package with ``commits``' changes to it undone (the same tree, before them)."""
    import shutil

    shutil.copytree(ROOT / "describe_local", into / "describe_local", ignore=shutil.ignore_patterns("__pycache__"))
    for commit in reversed(commits):
        diff = subprocess.run(["git", "-C", str(ROOT), "diff", f"{commit}~1", commit, "--", "describe_local"],
                              check=True, capture_output=True).stdout
        subprocess.run(["patch", "-R", "-p1", "-s", "-F3", "-d", str(into)], input=diff, check=True)
    return into


def configurations(args: argparse.Namespace, tmp: Path) -> list[Config]:
    """The working tree ("now"), after it the ``--env`` one, and before it the ``--without`` and
    ``--compare`` ones (an argument a script does not take counts as not given)."""
    configs = [Config("now")]
    if getattr(args, "compare", None):
        folder = tmp / "rev"
        folder.mkdir()
        export_revision(args.compare, folder)
        configs.insert(0, Config(f"{args.compare}", pythonpath=str(folder)))
    if args.without:
        folder = tmp / "without"
        folder.mkdir()
        working_tree_without(args.without, folder)
        configs.insert(0, Config("without " + ",".join(c[:9] for c in args.without), pythonpath=str(folder)))
    if args.env:
        configs.append(Config("now " + " ".join(args.env), env=dict(e.split("=", 1) for e in args.env)))
    return configs


def describe_command(args: argparse.Namespace, out: Path) -> list[str]:
    several = len(args.photo) > 1 or not args.photo[0].is_file()
    command = [str(PYTHON), "-m", "describe_local", "describe", "-o", str(out if several else out / "out.mp3")]
    if not args.audio:
        command.append("--no-audio")
    if args.caption_model:
        command += ["--caption-model", args.caption_model]
    if args.jobs:
        command += ["--jobs", str(args.jobs)]
    return [*command, *map(str, args.photo)]


def budget_of(config: Config, args: argparse.Namespace) -> dict:
    command = [str(PYTHON), __file__, "--inner-budget", "--photo", str(args.photo[0])]
    if args.caption_model:
        command += ["--caption-model", args.caption_model]
    if args.audio:
        command.append("--audio")
    # The face child runs `python -m`, which puts its working folder first on the path: the
    # configuration's own package folder, so that parent and child are the same code.
    done = subprocess.run(command, env=config.environment(), capture_output=True, text=True,
                          cwd=config.pythonpath or ROOT)
    if done.returncode:
        sys.stderr.write(done.stderr[-3000:])
        raise SystemExit(f"the budget run of {config.label} failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", type=Path, nargs="+", default=[DOGS],
                        help="photos or folders to describe in one run (default: dogs.jpg); the budget reads the first")
    parser.add_argument("--jobs", type=int, help="describe with --jobs N (worker processes: 'child collection.worker')")
    parser.add_argument("--caption-model", help="a caption model name or folder (default: none installed)")
    parser.add_argument("--audio", action="store_true", help="with speech (default: --no-audio)")
    parser.add_argument("--runs", type=int, default=3, help="cold describes per configuration (median shown)")
    parser.add_argument("--compare", metavar="REV", help="also measure this git revision (the 'before')")
    parser.add_argument("--without", action="append", default=[], metavar="COMMIT",
                        help="also measure the working tree with this commit's changes undone (repeatable: "
                             "one configuration without all of them), e.g. the fix being measured")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="also measure the working tree with this variable set (repeatable, one config)")
    parser.add_argument("--no-budget", action="store_true", help="the whole-tree figures only")
    parser.add_argument("--inner-budget", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner_budget:
        inner_budget(args.photo[0], args.caption_model, args.audio)
        return 0
    missing = [str(p) for p in args.photo if not p.exists()]
    if missing:
        raise SystemExit(f"no photo at {', '.join(missing)}")
    if not args.photo[0].is_file():
        args.no_budget = True  # the step-by-step budget describes one photo

    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        configs = configurations(args, Path(tmp))
        out = Path(tmp) / "out"
        out.mkdir()
        runs: dict[str, list[TreeRun]] = {c.label: [] for c in configs}
        for _ in range(args.runs):
            for config in configs:  # alternated: the same load falls on each
                runs[config.label].append(run_tree(describe_command(args, out), config.environment(), Path(tmp)))
        budgets = {} if args.no_budget else {c.label: budget_of(c, args) for c in configs}

    load = os.getloadavg()
    mode = ("with audio" if args.audio else "--no-audio") + (f", caption {args.caption_model}" if args.caption_model
                                                             else ", no caption model")
    what = args.photo[0].name if len(args.photo) == 1 else f"{len(args.photo)} paths"
    mode += f", --jobs {args.jobs}" if args.jobs else ""
    print(f"cold describe {what} ({mode}), {args.runs} runs each, median; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} cores")
    print(f"{'':34}" + "".join(f"{c.label[:22]:>24}" for c in configs))

    def line(what: str, values: list[str]) -> None:
        print(f"{what:34}" + "".join(f"{v:>24}" for v in values))

    med = {label: runs[label] for label in runs}
    line("wall time (s)", [f"{statistics.median(r.wall_s for r in med[c.label]):.2f}" for c in configs])
    line("tree peak, sampled sum (MB)", [f"{statistics.median(r.peak_mb for r in med[c.label]):.0f}" for c in configs])
    line("tree peak, VmHWM of those alive (MB)",
         [f"{statistics.median(r.hwm_sum_mb for r in med[c.label]):.0f}" for c in configs])
    names = sorted({n for c in configs for r in med[c.label] for n in r.per_process})
    for name in names:
        line(f"  VmHWM {name}", [f"{statistics.median(r.per_process.get(name, 0.0) for r in med[c.label]):.0f}"
                                 for c in configs])
    failed = [c.label for c in configs if any(r.returncode for r in med[c.label])]
    if budgets:
        print("budget, one process, step by step (MB: resident added, or a run's peak over what was resident; s)")
        steps = [row[0] for row in next(iter(budgets.values()))["rows"]]
        for what in steps:
            cells = []
            for c in configs:
                row = next((r for r in budgets[c.label]["rows"] if r[0] == what), None)
                cells.append("-" if row is None else f"{row[1]:+.0f} MB {row[2]:.2f} s" if row[2]
                             else f"{row[1]:.0f} MB")
            line(f"  {what}", cells)
        line("  resident at the end", [f"{budgets[c.label]['rss_end_mb']:.0f} MB" for c in configs])
    if failed:
        print(f"describe failed in: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
