"""``describe-local eval`` on the shared data, its figures checked against a direct computation.

One run of the command (a real process) covers every section: the human captions scored
against each other, faces/photos and faces/johns, ocr/scenes and ocr/pages, and the speed
table with one timed run. Each test then recomputes its section's figures its own way:
pycocoevalcap called directly, face distances and counts by hand from encodings computed
here, phrases and words counted again from the text that was read, medians from the runs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("pycocoevalcap", reason="the eval extra is not installed (pip install 'describe-local[eval]')")
pytest.importorskip("matplotlib", reason="the eval extra is not installed (pip install 'describe-local[eval]')")


def run_eval(*args: str, root: Path) -> subprocess.CompletedProcess:
    """The command in a process of its own, with settings isolated under ``root`` (an empty model store)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESCRIBE_LOCAL_")}
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "config.toml").write_text("")
    env.update(DESCRIBE_LOCAL_MODELS_DIR=str(root / "models"), DESCRIBE_LOCAL_KNOWN_FACES=str(root / "known_faces"),
               DESCRIBE_LOCAL_CONFIG=str(root / "config.toml"))
    return subprocess.run([sys.executable, "-m", "describe_local", "eval", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=900)


@pytest.fixture(scope="module")
def report(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("eval")
    out = root / "report"
    done = run_eval(
        "--captions", str(shared_data / "captions/manifest.json"), "--human",
        "--faces", str(shared_data / "faces/photos"), "--faces", str(shared_data / "faces/johns"),
        "--text", str(shared_data / "ocr/scenes"), "--text", str(shared_data / "ocr/pages.manifest.json"),
        "--speed", "--repeats", "1", "--data", str(shared_data), "--seed", "3", "--out", str(out), root=root,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return {"out": out, "results": results, "stdout": done.stdout}


def test_the_three_files_are_written_and_the_page_needs_nothing_else(report):
    out, results = report["out"], report["results"]
    page = (out / "report.html").read_text(encoding="utf-8")
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == 3  # speed bars, face curves, OCR recall
    assert "http://" not in page and "https://" not in page and "<script" not in page
    for section in ("Captions", "Faces", "Text", "Speed", "Models"):
        assert f"<h2>{section}</h2>" in page and f"## {section}" in markdown
    cider = results["captions"]["scores"]["CIDEr-D"]
    assert f"| CIDEr-D | {cider:.3f} |" in markdown and f"CIDEr-D {cider:.3f}" in report["stdout"]
    # What a rerun needs: the machine, the versions, the settings and the models' checksums.
    assert results["machine"]["cores"] == os.cpu_count() and results["versions"]["pycocoevalcap"]
    assert results["settings"]["eval_seed"] == 3 and results["settings"]["face_tolerance"] == 0.55
    models = results["models"]
    assert models["caption"]["installed"] is False
    assert len(models["faces"]) == 2 and all(len(h) == 64 for h in models["faces"].values())
    assert "models/ch_PP-OCRv4_det_infer.onnx" in models["pp-ocr"] and "eng.traineddata" in models["tesseract"]
    assert results["settings"]["ocr_model"] == "ppocr-v4" and len(models["pp-ocr"]) == 3
    assert "models/ppocrv5/rec/rec.onnx" in models["pp-ocr-v5-mobile"]  # the other sets' wheels, as installed
    assert "models/PP-OCRv6_rec_small.onnx" in models["pp-ocr-v6-small"]


def test_caption_scores_are_pycocoevalcaps_own(report, shared_data: Path):
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    manifest = json.loads((shared_data / "captions/manifest.json").read_text())
    refs = {str(i["coco_image_id"]): [{"caption": c} for c in i["captions"][1:]] for i in manifest["items"]}
    cands = {str(i["coco_image_id"]): [{"caption": i["captions"][0]}] for i in manifest["items"]}
    tokenizer = PTBTokenizer()
    gts, res = tokenizer.tokenize(refs), tokenizer.tokenize(cands)
    cider, _ = Cider().compute_score(gts, res)
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, _ = Rouge().compute_score(gts, res)
    scores = report["results"]["captions"]["scores"]
    assert report["results"]["captions"]["photos"] == 55 and report["results"]["captions"]["references"] == 220
    assert scores["CIDEr-D"] == pytest.approx(cider, abs=1e-9) and scores["ROUGE-L"] == pytest.approx(rouge, abs=1e-9)
    assert [scores[f"BLEU-{n}"] for n in range(1, 5)] == pytest.approx(bleu, abs=1e-9)
    assert 0.1 < scores["METEOR"] < 0.5  # Java's METEOR ran (people agree about a quarter, by it)
    assert 0.5 < cider < 2.0  # people describing the same photo share words: no accident of an empty set
    assert scores["SPICE"] is None or scores["SPICE"] > 0


def _encodings(paths: list[str]) -> dict[str, np.ndarray]:
    """Each photo's largest face, found here with dlib as the faces stage finds it."""
    from describe_local.images import load_photo
    from describe_local.see.faces.detect import FaceModels, find_faces

    models = FaceModels.load()
    found = {}
    for path in paths:
        boxes, encodings = find_faces(models, load_photo(Path(path), max_bytes=50_000_000, max_pixels=10**8), 1600, 1)
        areas = [(b.bottom - b.top) * (b.right - b.left) for b in boxes]
        found[path] = encodings[int(np.argmax(areas))]
    return found


@pytest.mark.parametrize("index, name", [(0, "photos"), (1, "johns")])
def test_face_accuracy_and_false_accepts_counted_by_hand(report, index: int, name: str):
    result = report["results"]["faces"][index]
    assert name in result["source"]
    enrolled = result["enrolled"]
    probes = {p["path"]: p["person"] for p in result["probes"]}
    assert not set(probes) & {f for files in enrolled.values() for f in files}
    assert all(any(p == person for p in probes.values()) for person in enrolled)  # everyone known is probed
    assert result["strangers"] and not set(result["strangers"]) & set(enrolled)
    encodings = _encodings([*probes, *(f for files in enrolled.values() for f in files)])
    gallery = [(person, encodings[f]) for person, files in enrolled.items() for f in files]
    tolerance = result["tolerance"]
    counts = Counter()
    for path, person in probes.items():
        distance, nearest = min((float(np.sqrt(((encodings[path] - e) ** 2).sum())), who) for who, e in gallery)
        named = nearest if distance <= tolerance else None
        if person in result["strangers"]:
            counts["strangers"] += 1
            counts["false accepts"] += named is not None
        else:
            counts["known"] += 1
            counts["right"] += named == person
    assert (result["known_probes"], result["stranger_probes"]) == (counts["known"], counts["strangers"])
    assert result["accuracy"] == pytest.approx(counts["right"] / counts["known"])
    assert result["false_accept_rate"] == pytest.approx(counts["false accepts"] / counts["strangers"])
    curve = result["curve"]
    at = curve["tolerance"].index(tolerance)
    assert (curve["accuracy"][at], curve["false_accept"][at]) == (result["accuracy"], result["false_accept_rate"])
    assert curve["false_accept"][-1] >= curve["false_accept"][0]


def test_text_figures_recounted_from_the_text_read(report, shared_data: Path):
    scenes, pages = report["results"]["text"]
    manifest = json.loads((shared_data / "ocr/scenes/manifest.json").read_text())
    read = total = 0
    for item, row in zip(manifest["items"], scenes["photos"], strict=True):
        assert row["file"] == item["file"]
        squashed = "".join(row["text"].split()).lower()
        hits = sum("".join(p.split()).lower() in squashed for p in item["phrases"])
        assert (row["matched"], row["of"]) == (hits, len(item["phrases"]))
        read, total = read + hits, total + len(item["phrases"])
    assert scenes["summary"]["recall"] == pytest.approx(read / total)
    assert scenes["summary"]["recall"] >= 0.85  # measured 0.896 (scripts/measure_ocr.py)
    assert len(pages["photos"]) == 4 and pages["kind"] == "page"
    for row in pages["photos"][:2]:  # phototest and eurotext: short enough for a plain edit distance here
        truth = (shared_data / "ocr/pages" / row["file"].replace(".tif", ".gt.txt")).read_text()
        assert row["cer"] == pytest.approx(_edit_distance(" ".join(row["text"].split()), " ".join(truth.split()))
                                           / len(" ".join(truth.split())), abs=0.01)
    assert pages["summary"]["cer"] == pytest.approx(statistics.mean(r["cer"] for r in pages["photos"]))
    assert pages["summary"]["recall"] == pytest.approx(
        sum(r["matched"] for r in pages["photos"]) / sum(r["of"] for r in pages["photos"]))


def _edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]


def test_the_speed_table_is_the_originals_with_medians_of_its_runs(report):
    speed = report["results"]["speed"]
    rows = speed["rows"]
    assert [(r["case"], r["mode"]) for r in rows] == [
        (case, mode) for case in ("0 people", "1 person", "6 people") for mode in ("sequential", "parallel")]
    assert [r["aws_ms"] for r in rows] == [1869, 1702, 4277, 2197, 6603, 3904]
    for row in rows:
        assert len(row["runs"]) == 1
        for stage, value in row["median"].items():
            assert value == statistics.median(run.get(stage, 0.0) for run in row["runs"])
        assert row["median"]["total"] > row["median"]["faces"] > 0 and row["median"]["text"] > 0
        # No caption model in this store: which stages ran is said, and the cloud's totals (each with a
        # caption) are not compared with ours.
        assert row["ran"] == {"caption": "off", "faces": "ok", "text": "ok"}
        assert not row["comparable"] and row["speedup"] is None and row["versus"].startswith("cannot compare")
    assert [r["cloud_case"] for r in rows[::2]] == ["0 people", "1 person", "4 people"]
    assert "I recognize" in rows[2]["said"] and "Barack Obama" in rows[2]["said"]
    assert "not installed" in speed["caption_note"] and speed["peak_rss_mb"] > 100
    assert 0.0 <= speed["others_cpu"] <= 1.0  # how busy the machine was, said beside the table
