#!/usr/bin/env python3
"""Benchmark ``describe-local alt-text`` over the 55 COCO photos: images per minute; a site; an audit.

    .venv/bin/python scripts/bench_alt_text.py [--photos DIR] [--repeat N] [--no-caption-only] [--site]
                                               [--code DIR] [--audit-site [--pages N]]

Runs the command as a user does (a fresh process, an empty gallery, JSON lines to a pipe),
first without a caption model (faces and text only: the alt text is partial), then with a
tiny random OFA model of OFA-tiny's size (``scripts/make_tiny_models.py OUT --only ofa-tiny
--full-vocab``: the real model's shapes and cost, random weights). For each it prints the
steady rate (from the first image to the last, as the command reports it) and the rate with
the models' loading counted in. The target is 100 images a minute without a caption model.

``--site`` also runs it on a static site of those photos (11 pages of 5 images, no alts, into
``-o``): the pages' path, the decision tree included, with loading counted in. ``--code DIR``
runs the describe-local found in DIR (e.g. ``git archive COMMIT | tar -x -C DIR``) instead of
this checkout, for a before/after on the same machine. ``--audit-site`` writes a generated site
(``scripts/bench_alt_text_audit_site.py``: 10,000 pages, 100,000 images, into /tmp) and times
``alt-text --audit`` on it (target: under 60 s and 600 MB), then runs axe-core on the report's
first part where Chromium, playwright and axe-core are installed.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TARGET_PER_MIN = 100.0
AUDIT_TARGET_S, AUDIT_TARGET_MB = 60.0, 600.0
AXE = ROOT / "tests" / "integration" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
CODE = ROOT  # where the describe-local that runs lives (--code)
CPU_PER_IMAGE: list[float] = []  # each run's CPU seconds per image, loading included
_RATE = re.compile(r"(\d+) of (\d+) images given alt text, (\d+) images per minute")


def run_alt_text(photos: Path, scratch: Path, caption_model: Path | None) -> tuple[float, float, int]:
    """One run of the command: (steady images per minute, images per minute with loading, images)."""
    (scratch / "models").mkdir(exist_ok=True)
    (scratch / "gallery").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESCRIBE_LOCAL_")}
    env.update(DESCRIBE_LOCAL_MODELS_DIR=str(scratch / "models"), DESCRIBE_LOCAL_KNOWN_FACES=str(scratch / "gallery"))
    command = [sys.executable, "-m", "describe_local", "alt-text", str(photos)]
    if caption_model is not None:
        command += ["--caption-model", str(caption_model)]
    started, cpu = time.perf_counter(), children_cpu()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=CODE, timeout=3600)
    seconds, cpu = time.perf_counter() - started, children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"alt-text failed ({done.returncode}):\n{done.stderr}")
    match = _RATE.search(done.stderr)
    if match is None:
        raise SystemExit(f"no rate in the command's output:\n{done.stderr}")
    images = len(done.stdout.splitlines())
    CPU_PER_IMAGE.append(cpu / max(images, 1))
    return float(match.group(3)), images / seconds * 60, images


def children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes: a cost that other work on
    the machine moves far less than it moves wall time."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def scratch_env(scratch: Path) -> dict[str, str]:
    (scratch / "models").mkdir(exist_ok=True)
    (scratch / "gallery").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESCRIBE_LOCAL_")}
    env.update(DESCRIBE_LOCAL_MODELS_DIR=str(scratch / "models"), DESCRIBE_LOCAL_KNOWN_FACES=str(scratch / "gallery"))
    return env


def run_site(photos: Path, scratch: Path) -> tuple[float, int]:
    """``alt-text SITE -o OUT`` on a site of the photos (5 a page, no alts): (images per minute
    with loading, images given alt text)."""
    site, out = scratch / "site", scratch / "site-out"
    shutil.rmtree(site, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    (site / "img").mkdir(parents=True)
    names = sorted(p.name for p in photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    for name in names:
        shutil.copyfile(photos / name, site / "img" / name)
    for page, start in enumerate(range(0, len(names), 5)):
        tags = "\n".join(f'<p><img src="img/{n}"></p>' for n in names[start:start + 5])
        (site / f"page{page}.html").write_text(f'<!DOCTYPE html><html lang="en"><title>Page {page}</title>\n{tags}\n')
    started, cpu = time.perf_counter(), children_cpu()
    done = subprocess.run([sys.executable, "-m", "describe_local", "alt-text", str(site), "-o", str(out)],
                          capture_output=True, text=True, env=scratch_env(scratch), cwd=CODE, timeout=3600)
    seconds, cpu = time.perf_counter() - started, children_cpu() - cpu
    CPU_PER_IMAGE.append(cpu / len(names))
    if done.returncode != 0:
        raise SystemExit(f"alt-text on the site failed ({done.returncode}):\n{done.stderr}")
    filled = re.search(r"(\d+) images? given alt text", done.stderr)
    count = int(filled.group(1)) if filled else 0
    return len(names) / seconds * 60, count


def run_audit(pages: int) -> bool:
    """Generate a site of ``pages`` pages (10 images each) in /tmp, audit it, check the report
    with axe-core; whether the targets were met."""
    from bench_alt_text_audit_site import write_site

    with tempfile.TemporaryDirectory(prefix="bench-alt-audit-") as scratch:
        site, report = Path(scratch) / "site", Path(scratch) / "report"
        images = write_site(site, pages=pages, per_page=10, files=max(100, pages * 2))
        env = {k: v for k, v in os.environ.items() if not k.startswith("DESCRIBE_LOCAL_")}
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "describe_local", "alt-text", "--audit", str(site), "-o",
                                  str(report)], cwd=CODE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        stderr = child.stderr.read().decode() if child.stderr else ""
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            raise SystemExit(f"alt-text --audit failed ({child.returncode}):\n{stderr}")
        peak_mb = usage.ru_maxrss / 1024
        parts = len(list(report.glob("report*.html")))
        cpu = usage.ru_utime + usage.ru_stime
        print(f"audit: {pages} pages, {images} images: {seconds:.1f} s ({cpu:.1f} s of CPU), peak {peak_mb:.0f} MB "
              f"(targets {AUDIT_TARGET_S:.0f} s, {AUDIT_TARGET_MB:.0f} MB); {parts} HTML parts, "
              f"report.json {(report / 'report.json').stat().st_size / 2**20:.1f} MB")
        violations = axe_violations(report / "report.html")
        print("axe-core on report.html: " + ("not run (no chromium, playwright or axe-core)" if violations is None
                                             else f"{len(violations)} violations {violations}"))
    return seconds < AUDIT_TARGET_S and peak_mb < AUDIT_TARGET_MB and not violations


def axe_violations(page_file: Path) -> list[str] | None:
    """axe-core's WCAG 2.2 AA violations on a local HTML file, or None where it cannot run."""
    chromium = Path(os.environ.get("DESCRIBE_LOCAL_CHROMIUM", "/usr/bin/chromium"))
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not (chromium.exists() and AXE.is_file()):
        return None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(page_file.as_uri())
            page.add_script_tag(content=AXE.read_text())
            result = page.evaluate("async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}, "
                                   "resultTypes: ['violations']})", WCAG_TAGS)
        finally:
            browser.close()
    return [v["id"] for v in result["violations"]]


def tiny_ofa(folder: Path) -> Path:
    """A random OFA model of OFA-tiny's size in ``folder`` (made once)."""
    model = folder / "ofa-tiny"
    if not model.is_dir():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_tiny_models.py"), str(folder),
                        "--only", "ofa-tiny", "--full-vocab"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=DATA / "captions" / "images",
                        help="a folder of photos (default: the 55 COCO photos in ../shared/data/captions)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case; the median is printed")
    parser.add_argument("--no-caption-only", action="store_true", help="skip the run with a caption model")
    parser.add_argument("--site", action="store_true", help="also run it on a static site of the photos")
    parser.add_argument("--code", type=Path, default=ROOT, help="run the describe-local in this folder (default: here)")
    parser.add_argument("--audit-site", action="store_true",
                        help="only: time --audit on a generated site (10,000 pages, 100,000 images) in /tmp")
    parser.add_argument("--pages", type=int, default=10_000, help="with --audit-site: pages to generate")
    args = parser.parse_args(argv)
    global CODE
    CODE = args.code.resolve()
    if args.audit_site:
        return 0 if run_audit(args.pages) else 1
    if not args.photos.is_dir():
        print(f"no photos at {args.photos} (the real test data lives in ../shared/data)", file=sys.stderr)
        return 2
    print(f"alt-text over {args.photos} on {os.cpu_count()} CPU cores, {args.repeat} run(s) per case, "
          f"code in {CODE}, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="bench-alt-text-") as scratch:
        cases: list[tuple[str, Path | None]] = [("no caption model (faces + text)", None)]
        if not args.no_caption_only:
            cases.append(("tiny random OFA, OFA-tiny's size", tiny_ofa(Path(scratch) / "tiny")))
        below = False
        for label, model in cases:
            runs = [run_alt_text(args.photos, Path(scratch), model) for _ in range(args.repeat)]
            steady = statistics.median(r[0] for r in runs)
            overall = statistics.median(r[1] for r in runs)
            print(f"{label:36s} {steady:6.0f} images/min steady, {overall:6.0f} images/min with loading "
                  f"({runs[0][2]} images; CPU {statistics.median(CPU_PER_IMAGE[-args.repeat:]):.2f} s/image)")
            below |= model is None and steady < TARGET_PER_MIN
        if args.site:
            runs_site = [run_site(args.photos, Path(scratch)) for _ in range(args.repeat)]
            print(f"{'a site of the photos (11 pages)':36s} {statistics.median(r[0] for r in runs_site):6.0f} "
                  f"images/min with loading ({runs_site[0][1]} given alt text; "
                  f"CPU {statistics.median(CPU_PER_IMAGE[-args.repeat:]):.2f} s/image)")
        verdict = "below" if below else "meets"
        print(f"without a caption model: {verdict} the target of {TARGET_PER_MIN:.0f} images/min")
    return 1 if below else 0


if __name__ == "__main__":
    raise SystemExit(main())
