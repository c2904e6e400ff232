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

    no_caption = {"caption": "off", "faces": "ok", "text": "ok"}
    every = {"caption": "ok", "faces": "ok", "text": "ok"}
    return [
        {"path": str(DATA / speed.CASES[0].photo),
         "sequential": {"runs": runs(800, 700, 900), "said": "Nothing.", "ran": no_caption},
         "parallel": {"runs": runs(600, 650, 500), "said": "Nothing.", "ran": no_caption}},
        {"path": str(DATA / speed.CASES[1].photo), "errors": {"describe": "the faces stage failed"}},
        {"path": str(DATA / speed.CASES[2].photo), "sequential": {"runs": runs(1500), "said": "Six.", "ran": every},
         "parallel": {"runs": runs(1000), "said": "Six.", "ran": every}},
    ]


def test_the_speed_table_takes_medians_and_sets_aws_beside_them():
    rows = speed.speed_table(_speed_records(), DATA)
    assert [(r["case"], r["cloud_case"], r["mode"], r["aws_ms"]) for r in rows] == [
        ("0 people", "0 people", "sequential", 1869), ("0 people", "0 people", "parallel", 1702),
        ("1 person", "1 person", "sequential", 4277), ("1 person", "1 person", "parallel", 2197),
        ("6 people", "4 people", "sequential", 6603), ("6 people", "4 people", "parallel", 3904)]
    assert rows[0]["median"]["total"] == 800 and rows[1]["median"]["total"] == 600
    assert rows[0]["median"]["faces"] == pytest.approx(800 / 3)
    assert rows[4]["comparable"] and rows[4]["speedup"] == pytest.approx(6603 / 1500)
    assert rows[4]["versus"] == "4.4x faster" and rows[5]["versus"] == "3.9x faster"
    assert rows[2]["error"] == rows[3]["error"] == "the faces stage failed" and "median" not in rows[2]
    with pytest.raises(KeyError):
        speed.case_for(Path("/elsewhere/photo.jpg"), DATA)


def test_the_cloud_rows_are_the_published_0_1_and_4_people():
    assert [case.cloud_label for case in speed.CASES] == ["0 people", "1 person", "4 people"]
    assert [(c.aws_sequential_ms, c.aws_parallel_ms) for c in speed.CASES] == [(1869, 1702), (4277, 2197),
                                                                             (6603, 3904)]


def test_without_a_caption_no_row_is_called_faster_than_the_cloud():
    rows = speed.speed_table(_speed_records(), DATA)
    assert rows[0]["median"]["total"] < rows[0]["aws_ms"] / 2  # ours is far shorter, but has no caption in it
    for row in rows[:2]:
        assert not row["comparable"] and row["speedup"] is None
        assert row["versus"] == "cannot compare: no caption model ran; the cloud's totals include a caption"


@pytest.mark.parametrize(("ran", "total", "expected"), [
    ({"caption": "off", "faces": "ok", "text": "ok"}, 10.0,
     "cannot compare: no caption model ran; the cloud's totals include a caption"),
    ({"caption": "ok", "faces": "timed_out", "text": "failed"}, 10.0,
     "cannot compare: faces timed out, text failed; the cloud's totals include every stage"),
    ({"caption": "failed", "faces": "ok", "text": "ok"}, 10.0,
     "cannot compare: caption failed; the cloud's totals include every stage"),
    ({}, 10.0, "cannot compare: which stages ran was not recorded"),
    ({"caption": "ok", "faces": "ok", "text": "ok"}, 1000.0, "2.0x faster"),
    ({"caption": "ok", "faces": "ok", "text": "ok"}, 4000.0, "2.0x slower"),
    ({"caption": "ok", "faces": "ok", "text": "ok"}, 2010.0, "about the same"),
])
def test_a_row_is_compared_like_for_like_or_says_it_cannot(ran, total, expected):
    judged = speed.verdict(ran, total, 2000)
    assert judged.text == expected
    assert judged.comparable == (judged.speedup is not None) == ("compare" not in expected)


def test_which_stages_ran_is_said_in_a_few_words():
    assert speed.stages_ran({"caption": "off", "faces": "ok", "text": "ok"}) == "caption off; faces, text ran"
    ran = {"caption": "ok", "faces": "timed_out", "text": "ok"}
    assert speed.stages_ran(ran) == "faces timed out; caption, text ran"
    assert speed.stages_ran({}) == "not recorded"


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
    assert ("| 0 people | sequential | 2 | 0 | 267 | 200 | 0 | 0 | 160 | 10 | 800 | caption off; faces, text ran "
            "| 1869 | cannot compare: no caption model ran; the cloud's totals include a caption |") in md
    assert "| 6 people (AWS: 4 people) | parallel |" in md and "| 3904 | 3.9x faster |" in md
    assert "| 1 person | parallel | – |" in md and f"| faces | models/a.dat | {'ab' * 32} |" in md
    assert "Work spread over 2 local worker(s)." in md


def test_a_speed_table_with_no_caption_anywhere_says_so_and_never_faster():
    results = _results()
    records = _speed_records()
    records[2]["sequential"]["ran"] = records[2]["parallel"]["ran"] = records[0]["parallel"]["ran"]
    results["speed"]["rows"] = speed.speed_table(records, DATA)
    section = report.markdown(results).split("## Speed")[1].split("## Models")[0]
    assert "faster" not in section and "slower" not in section
    assert "No row is set against the AWS figures: no caption model ran" in section


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


def test_the_commands_summary_says_when_a_speed_row_cannot_be_compared():
    from describe_local.cli.eval import summary

    lines = [line for line in summary({"speed": {"rows": speed.speed_table(_speed_records(), DATA)}})
             if line.startswith("speed")]
    assert lines[0] == ("speed 0 people sequential: 800 ms (AWS, 0 people: 1869 ms; cannot compare: no caption "
                        "model ran; the cloud's totals include a caption)")
    assert lines[-1] == "speed 6 people parallel: 1000 ms (AWS, 4 people: 3904 ms; 3.9x faster)"


def test_the_speed_plot_draws_a_cloud_total_that_cannot_be_compared_apart():
    pytest.importorskip("matplotlib", reason="the eval extra is not installed (pip install 'describe-local[eval]')")
    from describe_local.evaluation import plots

    rows = speed.speed_table(_speed_records(), DATA)
    assert plots.speed_bars(rows) != plots.speed_bars([{**r, "comparable": True} for r in rows])
