"""Measure the lean set-up on a fresh clone: seconds, venv size, what it holds, what it lacks.

Clones the checkout's committed HEAD (uncommitted changes are not measured) into a scratch
folder, runs ``scripts/setup`` there and prints: the set-up's seconds, the venv's and the model
store's size (MiB, as ``du -sm``), the largest packages, the venv without opencv-python-headless, and whether
``import torch``, ``import ray`` and ``import pyarrow`` fail in it (they must). The targets: set-up
at most 60 s with a warm package cache, venv at most 800 MiB, the three imports failing; the exit
status is 1 when one is missed.

    .venv/bin/python scripts/measure_setup.py [--source REPO] [--keep DIR] [--describe PHOTO] [--json]

``--keep DIR`` clones into DIR (which must not exist) and leaves it, e.g. for
``DESCRIBE_LOCAL_LEAN_VENV=DIR/.venv pytest tests/integration/test_lean_setup.py``;
``--describe PHOTO`` then runs ``./scripts/describe PHOTO`` in the clone, as a user's first run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_SETUP_S = 60.0
MAX_VENV_MB = 800.0
ABSENT = ("torch", "ray", "pyarrow")
OPENCV = "opencv-python-headless"
MIB = 1024 * 1024  # sizes are du -sm's MiB, as the targets were measured

# Run by the clone's venv: each installed distribution's bytes (from its RECORD), largest first.
SIZES = """
import importlib.metadata as md, json, os, sysconfig
site = sysconfig.get_paths()["purelib"]
sizes = {}
for dist in md.distributions(path=[site]):
    total = 0
    for rel in dist.files or []:
        path = os.path.join(site, rel)
        if os.path.isfile(path) and not os.path.islink(path):
            total += os.path.getsize(path)
    sizes[dist.metadata["Name"]] = total
print(json.dumps(sorted(sizes.items(), key=lambda kv: -kv[1])))
"""


@dataclass
class Measure:
    commit: str
    setup_s: float
    setup_cpu_s: float  # user + system time of scripts/setup and its children: what load does not stretch
    setup_status: int
    venv_mb: float
    models_mb: float
    packages_mb: list[tuple[str, float]]
    venv_without_opencv_mb: float
    imports: dict[str, str]  # module -> "fails (ModuleNotFoundError)" or "imports"
    describe: dict[str, object] = field(default_factory=dict)
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def missed(self) -> list[str]:
        out = []
        if self.setup_status != 0:
            out.append(f"scripts/setup exited with status {self.setup_status}")
        if self.setup_s > MAX_SETUP_S:
            out.append(f"set-up {self.setup_s:.1f} s > {MAX_SETUP_S:g} s")
        if self.venv_mb > MAX_VENV_MB:
            out.append(f"venv {self.venv_mb:.0f} MiB > {MAX_VENV_MB:g} MiB")
        out += [f"import {m} works" for m, result in self.imports.items() if result == "imports"]
        if self.describe and self.describe.get("status") != 0:
            out.append(f"./scripts/describe exited with status {self.describe.get('status')}")
        return out


def folder_mb(folder: Path) -> float:
    """Space on disk under ``folder`` in MiB, as ``du -sm`` counts it (blocks, each hard link once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in [*files, "."]:
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total / MIB


def import_result(python: Path, module: str) -> str:
    done = subprocess.run([str(python), "-c", f"import {module}"], capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return "imports"
    last = (done.stderr.strip().splitlines() or ["?"])[-1]
    return f"fails ({last.split(':')[0]})"


def measure(source: Path, clone: Path, photo: Path | None) -> Measure:
    subprocess.run(["git", "clone", "-q", str(source), str(clone)], check=True)
    commit = subprocess.run(["git", "-C", str(clone), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=True).stdout.strip()
    load_before = os.getloadavg()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    setup = subprocess.run([str(clone / "scripts" / "setup")], cwd=clone, check=False)
    setup_s = time.monotonic() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    python = clone / ".venv" / "bin" / "python"
    sizes = json.loads(subprocess.run([str(python), "-c", SIZES], capture_output=True, text=True,
                                      check=True).stdout)
    venv_mb = folder_mb(clone / ".venv")
    opencv_mb = next((size for name, size in sizes if name == OPENCV), 0) / MIB
    result = Measure(
        commit=commit, setup_s=round(setup_s, 1), setup_cpu_s=round(cpu_s, 1), setup_status=setup.returncode,
        venv_mb=round(venv_mb, 1), models_mb=round(folder_mb(clone / "models"), 1),
        packages_mb=[(name, round(size / MIB, 1)) for name, size in sizes[:15]],
        venv_without_opencv_mb=round(venv_mb - opencv_mb, 1),
        imports={module: import_result(python, module) for module in ABSENT},
        load_average=load_before,
    )
    if photo is not None:
        started = time.monotonic()
        done = subprocess.run([str(clone / "scripts" / "describe"), str(photo)], cwd=clone,
                              capture_output=True, text=True, check=False)
        result.describe = {"photo": str(photo), "status": done.returncode,
                           "seconds": round(time.monotonic() - started, 1),
                           "said": done.stdout.strip().splitlines()[:1] or done.stderr.strip().splitlines()[-1:]}
    return result


def report(m: Measure) -> str:
    lines = [f"commit {m.commit}, load average {m.load_average[0]:.2f} when set-up began ({os.cpu_count()} cores)",
             f"set-up: {m.setup_s:.1f} s (target <= {MAX_SETUP_S:g} s with a warm package cache), "
             f"{m.setup_cpu_s:.1f} s of CPU (user + system), status {m.setup_status}",
             f"venv: {m.venv_mb:.0f} MiB (du -sm; target <= {MAX_VENV_MB:g}); without {OPENCV}: "
             f"{m.venv_without_opencv_mb:.0f} MiB; models/: {m.models_mb:.0f} MiB",
             "largest packages (MiB of their files):"]
    lines += [f"  {size:7.1f}  {name}" for name, size in m.packages_mb]
    lines += [f"import {module}: {result}" for module, result in m.imports.items()]
    if m.describe:
        lines.append(f"./scripts/describe {m.describe['photo']}: status {m.describe['status']}, "
                     f"{m.describe['seconds']} s: {' '.join(map(str, m.describe['said']))}")
    missed = m.missed()
    lines.append("targets missed: " + "; ".join(missed) if missed else "targets met")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=ROOT, help="the repository to clone (default: this one)")
    parser.add_argument("--keep", type=Path, help="clone into this new folder and leave it there")
    parser.add_argument("--describe", type=Path, metavar="PHOTO", help="then ./scripts/describe PHOTO in the clone")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.keep is not None and args.keep.exists():
        parser.error(f"{args.keep} exists; --keep needs a new folder")
    scratch = None if args.keep else tempfile.mkdtemp(prefix="measure-setup-")
    clone = args.keep or Path(scratch or "") / "clone"
    try:
        result = measure(args.source, clone, args.describe)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(asdict(result) | {"missed": result.missed()}, indent=2) if args.json else report(result))
    return 1 if result.missed() else 0


if __name__ == "__main__":
    sys.exit(main())
