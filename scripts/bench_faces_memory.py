#!/usr/bin/env python3
"""The face child's memory and time: its high-water mark for each photo, and over a run of photos.

For each photo a fresh face child (``FaceWorker``, as a cold describe starts one) is handed the
photo as the faces stage hands it (downscaled to ``face_max_side``), and its own ``VmHWM`` and
``VmRSS`` are read from ``/proc/PID/status``: when it is ready, after the photo, and after the
same photo again. ``--sequence`` then hands every photo to one child, as a server or a folder
does, and reports the wall time, the child's CPU time (user + system) and its high-water mark.

``--compare REV`` measures a git revision's package too (exported with ``git archive``), and
``--keep-models`` also the working tree with ``FaceWorker(keep_models=True)``; configurations
alternate photo by photo, so that the machine's load falls on each alike.

    .venv/bin/python scripts/bench_faces_memory.py --compare HEAD~1
    .venv/bin/python scripts/bench_faces_memory.py --compare HEAD~1 --keep-models --sequence ../shared/data/faces/photos
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_memory import export_revision, status_kb

ROOT = Path(__file__).resolve().parents[1]
FACES = Path("/work/shared/data/faces")
if not FACES.exists():
    FACES = ROOT.parent / "shared" / "data" / "faces"
DEFAULT_PHOTOS = [FACES / "groups/dogs.jpg", FACES / "groups/2008_002506.jpg",
                  FACES / "photos/knn_test__obama_and_biden.jpg", FACES / "groups/bald_guys.jpg"]
BIG = 10**9
PHONE = (4032, 3024)  # a 12 MP phone photo, made from a shared group photo (--phone)


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _worker(keep_models: bool):
    from describe_local.see.faces.worker import FaceWorker

    if "keep_models" in inspect.signature(FaceWorker).parameters:
        return FaceWorker(keep_models=keep_models)
    return FaceWorker()


def _image(path: Path):
    from describe_local.images import load_photo
    from describe_local.see.faces.detect import downscale
    from describe_local.settings import Settings

    return downscale(load_photo(path, max_bytes=BIG, max_pixels=BIG), Settings.load().face_max_side)[0]


def inner(photos: list[Path], keep_models: bool, sequence: bool) -> dict:
    """In a fresh interpreter with the package under test importable: the figures as JSON."""
    from describe_local.settings import Settings

    upsample = Settings.load().face_upsample
    if sequence:
        worker = _worker(keep_models)
        pid = worker.pid
        began, cpu = time.perf_counter(), _cpu_s(pid)
        faces = sum(len(worker.find_faces(_image(path), upsample, 600)[0]) for path in photos)
        figures = {"wall_s": time.perf_counter() - began, "cpu_s": _cpu_s(pid) - cpu, "faces": faces,
                   "hwm_mb": status_kb(pid, "VmHWM") / 1024, "rss_mb": status_kb(pid, "VmRSS") / 1024}
        worker.close()
        return figures
    (path,) = photos
    image = _image(path)
    worker = _worker(keep_models)
    pid = worker.pid
    figures = {"ready_rss_mb": status_kb(pid, "VmRSS") / 1024, "ready_hwm_mb": status_kb(pid, "VmHWM") / 1024}
    began, cpu = time.perf_counter(), _cpu_s(pid)
    boxes, _ = worker.find_faces(image, upsample, 600)
    figures.update(wall_s=time.perf_counter() - began, cpu_s=_cpu_s(pid) - cpu, faces=len(boxes),
                   shape=list(image.shape), hwm_mb=status_kb(pid, "VmHWM") / 1024,
                   rss_mb=status_kb(pid, "VmRSS") / 1024)
    worker.find_faces(image, upsample, 600)
    figures["again_hwm_mb"] = status_kb(pid, "VmHWM") / 1024
    worker.close()
    return figures


def _run(pythonpath: Path, photos: list[Path], keep_models: bool, sequence: bool) -> dict:
    command = [sys.executable, __file__, "--inner", *map(str, photos)]
    command += ["--keep-models"] if keep_models else []
    command += ["--sequence"] if sequence else []
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(pythonpath)
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=pythonpath)
    if done.returncode:
        sys.stderr.write(done.stderr[-3000:])
        raise SystemExit(f"the run in {pythonpath} failed")
    return json.loads(done.stdout.splitlines()[-1])


def _photos(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        found += sorted(p for p in path.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")) \
            if path.is_dir() else [path]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", nargs="*", type=Path, help="photos or folders (default: four shared photos)")
    parser.add_argument("--compare", metavar="REV", help="also measure this git revision (the 'before')")
    parser.add_argument("--keep-models", action="store_true", help="also measure FaceWorker(keep_models=True)")
    parser.add_argument("--phone", action="store_true", help=f"add a {PHONE[0]}x{PHONE[1]} photo (a group photo "
                        "enlarged) to the photos")
    parser.add_argument("--sequence", action="store_true", help="one child for all the photos, not one each")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(inner(args.photos, args.keep_models, args.sequence)))
        return 0
    photos = _photos(args.photos or DEFAULT_PHOTOS)
    missing = [str(p) for p in photos if not p.exists()]
    if missing or not photos:
        raise SystemExit(f"no photo at {', '.join(missing) or args.photos}")
    with tempfile.TemporaryDirectory(prefix="bench-faces-") as tmp:
        if args.phone:
            from PIL import Image

            phone = Path(tmp) / "phone_12mp.jpg"
            with Image.open(FACES / "photos/knn_test__obama_and_biden.jpg") as source:
                source.convert("RGB").resize(PHONE, Image.Resampling.LANCZOS).save(phone, quality=90)
            photos.append(phone)
        configs: list[tuple[str, Path, bool]] = [("now", ROOT, False)]
        if args.keep_models:
            configs.append(("now, keep_models", ROOT, True))
        if args.compare:
            folder = Path(tmp) / "rev"
            folder.mkdir()
            configs.insert(0, (args.compare, export_revision(args.compare, folder), False))
        load = os.getloadavg()
        print(f"face child, {len(photos)} photos; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
              f"{os.cpu_count()} cores")
        if args.sequence:
            results = {label: _run(path, photos, keep, True) for label, path, keep in configs}
            for label, figures in results.items():
                print(f"{label:>18}: {figures['faces']} faces, {figures['wall_s']:.2f} s wall, "
                      f"{figures['cpu_s']:.2f} s CPU, child VmHWM {figures['hwm_mb']:.0f} MB, "
                      f"resident at the end {figures['rss_mb']:.0f} MB")
            return 0
        print(f"{'photo (as handed to dlib)':44}{'config':>18} {'ready':>6} {'VmHWM':>6} {'again':>6} {'after':>6} "
              f"{'faces':>5} {'wall s':>6} {'CPU s':>6}   (MB: resident when ready, high-water after the photo, "
              "after it again, resident after)")
        for photo in photos:
            for label, path, keep in configs:
                f = _run(path, [photo], keep, False)
                name = f"{photo.name} {f['shape'][1]}x{f['shape'][0]}"
                print(f"{name[:44]:44}{label[:18]:>18} {f['ready_rss_mb']:6.0f} {f['hwm_mb']:6.0f} "
                      f"{f['again_hwm_mb']:6.0f} {f['rss_mb']:6.0f} {f['faces']:5d} {f['wall_s']:6.2f} "
                      f"{f['cpu_s']:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
