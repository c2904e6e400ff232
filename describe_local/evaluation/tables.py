"""The report's content as plain sections of text and tables, from ``results.json``'s data.

``report.md`` and ``report.html`` are both drawn from these sections, so the two always say
the same thing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from describe_local.evaluation.captions import METRICS
from describe_local.evaluation.speed import STAGES, stages_ran, verdict


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Section:
    title: str
    lines: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    plot: str | None = None  # key of the plot drawn for it: "speed", "faces", "text"


def _missing(value: float | None) -> bool:
    return value is None or not math.isfinite(value)  # not measured, or NaN (SPICE's for an empty set)


def pct(value: float | None) -> str:
    return "–" if _missing(value) else f"{value:.1%}"


def num(value: float | None, digits: int = 3) -> str:
    return "–" if _missing(value) else f"{value:.{digits}f}"


def ms(value: float | None) -> str:
    return "–" if _missing(value) else f"{value:.0f}"


def sections(results: dict[str, Any]) -> list[Section]:
    out = [_about(results)]
    if "captions" in results:
        out.append(_captions(results["captions"]))
    if results.get("faces"):
        out.append(_faces(results["faces"]))
    if results.get("text"):
        out.append(_text(results["text"]))
    if "speed" in results:
        out.append(_speed(results["speed"]))
    out.append(_models(results.get("models", {})))
    return out


def _about(results: dict[str, Any]) -> Section:
    m, v = results["machine"], results["versions"]
    packages = ", ".join(f"{k} {val}" for k, val in v.items() if val and k not in ("java", "tesseract"))
    return Section("Run", [
        f"Created {results['created']} with `{' '.join(results['command'])}`.",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, {m['os']} ({m['arch']}), "
        f"Python {m['python']}; load average {m['load_average']} at the start.",
        f"Versions: {packages}; {v.get('java') or 'no Java'}; {v.get('tesseract') or 'no Tesseract'}.",
        f"Work spread over {results['jobs']} local worker(s)" + (f" on Ray at {results['ray']}" if results["ray"]
                                                                  else "") + ".",
    ])


def _captions(c: dict[str, Any]) -> Section:
    what = ("the first human caption of each photo against its other references (leave one out)" if c["human"]
            else f"captions by {c['model']} against all of each photo's references")
    s = Section("Captions", [f"Set {c['name']} ({c['source']}): {c['photos']} photos, {c['references']} references; "
                             f"scored: {what}, with pycocoevalcap (PTB tokenizer; CIDEr-D is its Cider)."])
    s.tables.append(Table(["metric", "score"], [[m, num(c["scores"].get(m))] for m in METRICS]))
    s.lines += c.get("notes", [])
    if c.get("failed"):
        s.lines.append(f"{len(c['failed'])} photo(s) failed and are not scored: "
                       + "; ".join(f"{Path(f['path']).name}: {f['error']}" for f in c["failed"][:5]))
    best = sorted(c["per_photo"], key=lambda p: -p["cider"])
    picks = best[:3] + best[-3:] if len(best) > 6 else best
    s.tables.append(Table(["photo", "candidate", "BLEU-4", "CIDEr-D"],
                          [[p["key"], p["candidate"], num(p["bleu4"]), num(p["cider"])] for p in picks],
                          "The three best and three worst photos by CIDEr-D"))
    return s


def _faces(face_sets: list[dict[str, Any]]) -> Section:
    s = Section("Faces", plot="faces")
    tol = face_sets[0]["tolerance"]
    s.lines.append(
        f"At the tolerance {tol:g}: a probe is named by the nearest enrolled person within the tolerance. "
        "Accuracy: known people's probes named right; misidentified: named as someone else; false accepts: "
        "strangers' probes (never enrolled) given any name. Closed set: the nearest enrolled person is right, "
        "whatever the distance.")
    rows = []
    for f in face_sets:
        rows.append([f["name"], f"{len(f['known_people'])} / {len(f['strangers'])}", str(f["gallery_photos"]),
                     str(f["known_probes"]), str(f["stranger_probes"]), pct(f["accuracy"]),
                     pct(f["closed_set_accuracy"]), pct(f["misidentified"]), pct(f["false_accept_rate"]),
                     ms(f.get("median_ms"))])
    s.tables.append(Table(["set", "known / strangers", "enrolled each", "known probes", "stranger probes",
                           "accuracy", "closed set", "misidentified", "false accepts", "median ms"], rows))
    for f in face_sets:
        notes = [f"seed {f['seed']}, strangers: {', '.join(f['strangers']) or 'none'}"]
        if f["no_face"]:
            notes.append(f"no face found in {', '.join(Path(p).name for p in f['no_face'])}")
        if f.get("whole"):
            notes.append(f"{f['whole']} photo(s) taken whole as one face (no face found in a face chip)")
        if f["unlabelled"]:
            notes.append(f"left out, unlabelled: {', '.join(Path(p).name for p in f['unlabelled'])}")
        if f["failed"]:
            notes.append(f"failed: {', '.join(Path(p['path']).name + ' (' + p['error'] + ')' for p in f['failed'])}")
        for g in f["groups"]:
            notes.append(f"group photo {Path(g['path']).name} ({', '.join(g['people'])}; {g['faces']} faces): named "
                         f"{', '.join(g['named']) or 'nobody'}; missed {', '.join(g['missed']) or 'nobody'}; "
                         f"wrong names {', '.join(g['wrong']) or 'none'}")
        s.lines.append(f"{f['name']}: " + "; ".join(notes) + ".")
    return s


def _text(text_sets: list[dict[str, Any]]) -> Section:
    s = Section("Text", plot="text")
    s.lines.append("Recall: phrases read (spaces removed, case folded) for phrase sets, words read (bags of "
                   "lower-case words) for pages and ICDAR sets, pooled over the set; precision: words read that "
                   "are in the truth; CER: character error rate of pages, mean over pages.")
    s.tables.append(Table(
        ["set", "kind", "photos", "recall", "precision", "CER", "median ms", "worst ms"],
        [[t["name"], t["kind"], str(t["summary"]["photos"]), f"{pct(t['summary']['recall'])} "
          f"({t['summary']['matched']}/{t['summary']['of']})", pct(t["summary"].get("precision")),
          num(t["summary"]["cer"]), ms(t["summary"]["median_ms"]), ms(t["summary"]["worst_ms"])] for t in text_sets]))
    rows = []
    for t in text_sets:
        for r in t["photos"]:
            missed = r.get("missed", [])
            rows.append([t["name"], r["file"], r.get("error") or f"{r['matched']}/{r['of']}", pct(r.get("recall")),
                         pct(r.get("precision")), num(r.get("cer")), ms(r.get("ms")),
                         ", ".join(missed[:4]) + (f" (+{len(missed) - 4})" if len(missed) > 4 else "")])
    s.tables.append(Table(["set", "photo", "read", "recall", "precision", "CER", "ms", "missed"], rows, "Per photo"))
    return s


def _speed(speed: dict[str, Any]) -> Section:
    s = Section("Speed", plot="speed")
    s.lines.append(
        f"The cloud original's table: the whole pipeline (caption, faces, text, then sentences, speech and MP3), "
        f"warm, median of {speed['repeats']} run(s) per photo and mode, in ms; sequential runs the three analysis "
        "stages one after another, parallel at once. AWS: the original's published totals, for photos of 0, 1 and "
        "4 people (where our photo has another count, the row names the AWS one); every total includes a caption, "
        "faces and text, so a row without one of them is not compared.")
    rows = []
    for r in speed["rows"]:
        cloud = r.get("cloud_case", r["case"])
        photos = r["case"] if cloud == r["case"] else f"{r['case']} (AWS: {cloud})"
        if "median" not in r:
            rows.append([photos, r["mode"], *["–"] * len(STAGES), "–", str(r["aws_ms"]), r.get("error", "")])
            continue
        judged = r.get("versus") or verdict(r.get("ran", {}), r["median"]["total"], r["aws_ms"]).text
        rows.append([photos, r["mode"], *[ms(r["median"][st]) for st in STAGES], stages_ran(r.get("ran", {})),
                     str(r["aws_ms"]), judged])
    s.tables.append(Table(["photo", "mode", *STAGES, "stages", "AWS", "vs AWS"], rows))
    timed = [r for r in speed["rows"] if "median" in r]
    if timed and not any(r.get("comparable") for r in timed):
        s.lines.append("No row is set against the AWS figures: " + (
            "no caption model ran, and the cloud's totals include a caption (install one: describe-local models "
            "pull ofa-tiny, then run again)." if any(r.get("ran", {}).get("caption") == "off" for r in timed)
            else "in each, a stage the cloud's totals include did not run."))
    others = speed.get("others_cpu")
    if others is not None:
        busy = others > 0.1  # other work shared the cores being timed
        s.lines.append(f"Other processes used {others:.0%} of the machine's CPU while a photo was timed (the most "
                       "for one photo)" + ("; the machine was busy, so these times are longer than on an idle one."
                                           if busy else "."))
    if speed.get("caption_note"):
        s.lines.append(f"Caption stage: {speed['caption_note']}")
    s.lines.append(f"Peak memory of the process tree while timing: {speed['peak_rss_mb']:.0f} MB. Photos: "
                   + "; ".join(f"{c['label']}: {c['photo']}" for c in speed["cases"]) + ".")
    return s


def _models(models: dict[str, Any]) -> Section:
    s = Section("Models")
    rows = []
    for part, files in models.items():
        if part == "caption":
            if not files.get("installed", True):
                rows.append(["caption", files["name"], "not installed"])
                continue
            if files.get("manifest_sha256"):
                rows.append(["caption", f"{files['name']}/describe-local.json", files["manifest_sha256"]])
            files = files.get("files", {})
        rows += [[part, name, digest] for name, digest in files.items()]
    s.tables.append(Table(["part", "file", "sha256"], rows))
    return s
