"""The alt text audit's HTML report in real Chromium: axe-core finds no WCAG 2.2 AA violation in
any part of it, on a generated site big enough to be split into parts (``alt-text --audit``
needs no model: the command runs as a user runs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench_alt_text_audit_site import write_site

from tests.integration.browser.test_pages import audit

ROOT = Path(__file__).resolve().parents[3]


def test_the_audit_report_passes_axe_core_in_every_part(browser, axe_source: str, tmp_path: Path):
    site, report = tmp_path / "site", tmp_path / "report"
    images = write_site(site, pages=300, per_page=10, files=500)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESCRIBE_LOCAL_")}
    done = subprocess.run([sys.executable, "-m", "describe_local", "alt-text", "--audit", str(site), "-o", str(report)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    body = json.loads((report / "report.json").read_text())
    assert body["totals"]["images"] == images == 3000
    parts = sorted(report.glob("report*.html"))
    assert len(parts) == 2  # 300 pages with problems, 250 a part
    context = browser.new_context()
    page = context.new_page()
    try:
        for part in parts:
            page.goto(part.as_uri())
            assert page.locator("h1").count() == 1 and page.get_attribute("html", "lang") == "en"
            assert page.get_by_role("table", name="Images by issue").count() == 1
            assert page.get_by_role("navigation", name="Parts of the report").get_by_role("link").count() == 2
            audit(page, axe_source, part.name)
    finally:
        context.close()
