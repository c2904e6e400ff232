#!/usr/bin/env python3
"""A full-page screenshot of an HTML report (``describe-local eval``'s report.html), offline.

    .venv/bin/python scripts/screenshot_report.py REPORT.html OUT.png [--width 1280]

Drives Debian's chromium (``/usr/bin/chromium``, or ``$DESCRIBE_LOCAL_CHROMIUM``) with
Playwright, as the browser tests do; every request off the page's own file is blocked, so
the screenshot also shows that the report needs nothing from the network.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

CHROMIUM = Path(os.environ.get("DESCRIBE_LOCAL_CHROMIUM", "/usr/bin/chromium"))
# As tests/integration/browser/conftest.py launches it: no sandbox, GPU or background traffic.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def screenshot(report: Path, out: Path, width: int = 1280) -> list[str]:
    """Write ``out``; returns the URLs the page tried to load besides itself (should be none)."""
    from playwright.sync_api import sync_playwright

    blocked: list[str] = []
    url = report.resolve().as_uri()

    def route(r: Any) -> None:  # a playwright Route
        if r.request.url == url or r.request.url.startswith("data:"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.route("**/*", route)
            page.goto(url, wait_until="load")
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
        finally:
            browser.close()
    return blocked


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--width", type=int, default=1280, help="viewport width in CSS pixels (default 1280)")
    args = parser.parse_args()
    if not args.report.is_file():
        print(f"no such report: {args.report}", file=sys.stderr)
        return 1
    if not CHROMIUM.exists():
        print(f"chromium not found at {CHROMIUM} (./scripts/setup installs Debian's chromium)", file=sys.stderr)
        return 1
    blocked = screenshot(args.report, args.out, args.width)
    print(f"wrote {args.out}")
    if blocked:
        print(f"the page asked for {len(blocked)} other resource(s), blocked: {', '.join(blocked[:5])}",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
