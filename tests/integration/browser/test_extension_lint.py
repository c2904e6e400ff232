"""The extension as Firefox sees it: Mozilla's addons-linter (what ``web-ext lint`` runs) finds
no error and no warning but the one expected: Firefox ignores ``background.service_worker``
(it runs ``background.scripts``, the same file, as an event page; Chromium the other way round)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
LINTER = HERE / "node_modules" / ".bin" / "addons-linter"
EXTENSION = HERE.parents[2] / "extension"
EXPECTED = {"BACKGROUND_SERVICE_WORKER_IGNORED"}


def test_firefox_accepts_the_extension():
    if not LINTER.exists():
        pytest.skip(f"addons-linter is not installed at {LINTER} (./scripts/setup-tests runs npm ci there)")
    done = subprocess.run([str(LINTER), str(EXTENSION), "--output", "json"], capture_output=True, text=True,
                          timeout=300)
    report = json.loads(done.stdout)
    problems = [f"{m['code']}: {m['message']} ({m.get('file')})" for m in report["errors"] + report["warnings"]
                if m["code"] not in EXPECTED]
    assert not problems, "\n".join(problems)
    assert report["summary"]["errors"] == 0
    manifest = json.loads((EXTENSION / "manifest.json").read_text())
    assert manifest["background"]["scripts"] == [manifest["background"]["service_worker"]]
