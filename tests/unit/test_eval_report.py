"""eval's report: the speed table from its runs, and results.json, report.md and report.html written
from results made by the measures themselves (on small data made here)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from describe_local.evaluation import faces, report, speed, text
from describe_local.evaluation.faces import FacePhoto, FaceSet
from describe_local.evaluation.text import TextItem

DATA = Path("/data")


def _speed_records() -> list[dict]:
    def runs(*totals: float) -> list[dict]:
        return [{"decode": 2.0, "analysis": t / 2, "caption": 0.0, "faces": t / 3, "text": t / 4, "compose": 0.1,
                 "translate": 0.1, "speech": t / 5, "encode": 10.0, "total": t} for t in totals]

    return [
        {"path": str(DATA / speed.CASES[0].photo), "sequential": {"runs": runs(800, 700, 900), "said": "Nothing."},
         "parallel": {"runs": runs(600, 650, 500), "said": "Nothing."}},
        {"path": str(DATA / speed.CASES[1].photo), "errors": {"describe": "the faces stage failed"}},
        {"path": str(DATA / speed.CASES[2].photo), "sequential": {"runs": runs(1500), "said": "Six."},
         "parallel": {"runs": runs(1000), "said": "Six."}},
    ]


def test_the_speed_table_takes_medians_and_sets_aws_beside_them():
    rows = speed.speed_table(_speed_records(), DATA)
    assert [(r["case"], r["mode"], r["aws_ms"]) for r in rows] == [
        ("0 people", "sequential", 1869), ("0 people", "parallel", 1702), ("1 person", "sequential", 4277),
        ("1 person", "parallel", 2197), ("6 people", "sequential", 6603), ("6 people", "parallel", 3904)]
    assert rows[0]["median"]["total"] == 800 and rows[1]["median"]["total"] == 600
    assert rows[0]["median"]["faces"] == pytest.approx(800 / 3) and rows[0]["speedup"] == pytest.approx(1869 / 800)
    assert rows[2]["error"] == rows[3]["error"] == "the faces stage failed" and "median" not in rows[2]
    with pytest.raises(KeyError):
        speed.case_for(Path("/elsewhere/photo.jpg"), DATA)


def _results() -> dict:
    photos = [(["Ada"], [0.0]), (["Ada"], [0.3]), (["Bo"], [5.0]), (["Bo"], [5.2]), (["Cy"], [0.5, 0.2])]
    face_set = FaceSet("toy faces", "toy", "manifest", [FacePhoto(Path(f"p{n}.jpg"), p) for n, (p, _) in
                                                        enumerate(photos)])
    records = [{"boxes": [[0, 9, 9, 0]], "encodings": [[*v, *[0.0] * (128 - len(v))]], "ms": 4.0} for _, v in photos]
    face_result = faces.score_face_set(face_set, records, tolerance=0.55, seed=0, gallery_photos=1, strangers=0.0)
    face_result["median_ms"], face_result["whole"] = 4.0, 0
    items = [TextItem(Path("sign.jpg"), "phrases", ["EXIT", "NO ENTRY"]), TextItem(Path("page.png"), "page", ["a b c"])]
    rows = []
    for item, read in zip(items, ["exit here", "a b d"], strict=True):
        rows.append({"file": item.path.name, "text": read, "ms": 10.0, **text.score_item(item, read)})
    rows.append({"file": "broken.png", "error": "not an image"})
    return {
        "created": "2026-12-01T10:00:00+0000", "command": ["describe-local", "eval", "--faces", "toy"],
        "machine": {"cpu": "Test CPU", "cores": 2, "memory_gb": 4.0, "os": "Debian", "arch": "x86_64",
                    "python": "3.11", "load_average": 0.5},
        "versions": {"describe-local": "0.1.0", "pycocoevalcap": "1.2", "java": "openjdk 17", "tesseract": None},
        "jobs": 2, "ray": None, "limit": None, "settings": {"face_tolerance": 0.55},
        "captions": {"name": "toy captions", "source": "c.json", "human": True, "model": None, "failed": [],
                     "scores": {"BLEU-1": 0.61, "BLEU-2": 0.4, "BLEU-3": 0.3, "BLEU-4": 0.2, "METEOR": 0.25,
                                "ROUGE-L": 0.5, "CIDEr-D": 1.234, "SPICE": math.nan},
                     "notes": ["SPICE not scored: no jars"], "photos": 2, "references": 8,
                     "per_photo": [{"key": "1", "candidate": "A dog | a cat.", "bleu4": 0.1, "cider": 2.0}]},
        "faces": [face_result],
        "text": [{"name": "toy text", "source": "t", "kind": "mixed", "photos": rows, "summary": text.summarise(rows)}],
        "speed": {"repeats": 3, "rows": speed.speed_table(_speed_records(), DATA), "caption_note": None,
                  "peak_rss_mb": 700.0, "cases": [{"label": c.label, "photo": c.photo} for c in speed.CASES]},
        "models": {"caption": {"installed": False, "name": "ofa-tiny"}, "faces": {"models/a.dat": "ab" * 32}},
    }


def test_markdown_holds_every_section_and_figure():
    results = _results()
    md = report.markdown(results)
    for section in ("## Run", "## Captions", "## Faces", "## Text", "## Speed", "## Models"):
        assert section in md
    assert "| CIDEr-D | 1.234 |" in md and "| SPICE | – |" in md and "A dog \\| a cat." in md
    face = results["faces"][0]
    # Ada's probe at 0.3 is named, Bo's at 0.2 too; Cy (0.54 from Ada) is a stranger given a name.
    assert (face["accuracy"], face["false_accept_rate"]) == (1.0, 1.0)
    assert "| toy faces | 2 / 1 | 1 | 2 | 1 | 100.0% | 100.0% | 0.0% | 100.0% | 4 |" in md
    # Text pooled: EXIT read (1 of 2 phrases) and a, b of a b c: 3 of 5; CER of the page "a b d" / "a b c" = 1/5.
    assert "| toy text | mixed | 3 | 60.0% (3/5) | 66.7% | 0.200 | 10 | 10 |" in md
    assert "| broken.png | not an image |" in md
    assert "| 0 people | sequential | 2 | 0 | 267 | 200 | 0 | 0 | 160 | 10 | 800 | 1869 | 2.3x faster |" in md
    assert "| 1 person | parallel | – |" in md and f"| faces | models/a.dat | {'ab' * 32} |" in md
    assert "Work spread over 2 local worker(s)." in md


def test_the_three_files_are_written_and_the_page_is_self_contained(tmp_path: Path):
    pytest.importorskip("matplotlib", reason="the eval extra is not installed (pip install 'describe-local[eval]')")
    files = report.write_report(_results(), tmp_path / "out")
    assert sorted(p.name for p in files.values()) == ["report.html", "report.md", "results.json"]
    data = json.loads(files["json"].read_text(encoding="utf-8"))  # valid JSON: NaN became null
    assert data["captions"]["scores"]["SPICE"] is None and data["faces"][0]["curve"]["tolerance"][0] == 0.3
    page = files["html"].read_text(encoding="utf-8")
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)">', page)
    assert len(images) == 3 and all(len(png) > 1000 and alt for png, alt in images)
    assert not re.search(r"(src|href)=\"(?!data:)", page)  # nothing loaded from anywhere else
    assert "<td class=\"n\">1.234</td>" in page and "A dog | a cat." in page and "<script" not in page
    assert page.startswith("<!doctype html>") and '<html lang="en">' in page


def test_a_report_folder_that_cannot_be_made_is_an_output_error(tmp_path: Path):
    from describe_local.errors import OutputError

    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot make the report folder"):
        report.write_report(_results(), tmp_path / "file" / "out")
