"""``describe-local eval``: run the sections asked for and write the report.

Every photo's work (a caption, its faces, its text, its timing) goes through the collection
engine (:func:`describe_local.collection.run_collection`), so ``jobs`` and ``ray`` spread it
as they do for ``describe``. The speed table is the exception that proves it: it always runs
in one local worker, since timings taken while other workers share the machine's cores
would measure the sharing.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from describe_local.errors import ConfigError, EvalDataError, ModelNotInstalled
from describe_local.evaluation import captions, faces, machine, report, speed, text
from describe_local.settings import Settings

log = logging.getLogger(__name__)
TASKS = "describe_local.evaluation.tasks"


@dataclass
class EvalOptions:
    """What to evaluate and where the report goes."""

    out: Path
    captions: Path | None = None
    caption_images: Path | None = None  # a COCO file's photos, when they are not beside it
    human: bool = False  # score the human captions against each other instead of a model
    faces: list[Path] = field(default_factory=list)
    text: list[Path] = field(default_factory=list)
    speed: bool = False
    data: Path | None = None  # the shared data folder the speed table's photos are in
    jobs: int = 1
    ray: str | None = None
    limit: int | None = None  # the first photos of each set only (quick runs)

    def check(self) -> None:
        if not (self.captions or self.faces or self.text or self.speed):
            raise ConfigError("nothing to evaluate: give --captions, --faces, --text or --speed")
        if self.jobs < 1:
            raise ConfigError("--jobs must be 1 or more")
        if self.limit is not None and self.limit < 1:
            raise ConfigError("--limit must be 1 or more")


def _collect(paths: list[Path], factory: str, settings: Settings, options: EvalOptions, *,
             local: bool = False, needs: tuple[str, ...] = (), **task_options: Any) -> list[dict[str, Any]]:
    """One record per photo from the collection engine, in order. ``needs``: folders every Ray node must have."""
    from describe_local.collection import TaskSpec, run_collection

    spec = TaskSpec(f"{TASKS}:{factory}", settings, task_options, needs=needs)
    jobs, ray = (1, None) if local else (options.jobs, options.ray)
    return list(run_collection(paths, spec, jobs=jobs, ray=ray, progress=None))


def _failed(paths: list[Path], records: list[dict[str, Any]], key: str) -> list[dict[str, str]]:
    return [{"path": str(p), "error": "; ".join(r.get("errors", {}).values()) or "no result"}
            for p, r in zip(paths, records, strict=True) if key not in r]


def _median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


@dataclass
class Sets:
    """Every set asked for, read and checked before any photo is looked at."""

    captions: captions.CaptionSet | None = None
    faces: list[faces.FaceSet] = field(default_factory=list)
    text: list[text.TextSet] = field(default_factory=list)
    speed_data: Path | None = None


def load_sets(settings: Settings, options: EvalOptions) -> Sets:
    """Read every set and check what the sections need, so that a mistake is reported at once, not after
    minutes of work on the sets before it."""
    sets = Sets()
    if options.captions:
        sets.captions = captions.load_caption_set(options.captions, options.limit, options.caption_images)
        captions.check_tools()
        if not options.human:
            from describe_local.store.local import resolve_model_folder

            try:
                resolve_model_folder(settings.caption_model, settings.models_dir)
            except ModelNotInstalled as exc:
                raise ModelNotInstalled(f"{exc}; or score the human captions against each other with --human") from None
            for item in sets.captions.items:
                item.photo()  # raises when a photo is missing
    sets.faces = [faces.load_face_set(source, options.limit) for source in options.faces]
    sets.text = [text.load_text_set(source, options.limit) for source in options.text]
    if options.speed:
        data = Path(options.data or speed.default_data())
        missing = [case.photo for case in speed.CASES if not (data / case.photo).is_file()]
        if missing:
            raise EvalDataError(f"the speed table's photos are not in {data} ({', '.join(missing)}): "
                                "give the shared data folder with --data")
        sets.speed_data = data
    return sets


def eval_captions(settings: Settings, options: EvalOptions, caption_set: captions.CaptionSet) -> dict[str, Any]:
    result: dict[str, Any] = {"name": caption_set.name, "source": caption_set.source, "human": options.human,
                              "model": None if options.human else settings.caption_model, "failed": []}
    if options.human:
        refs, candidates = captions.human_pairs(caption_set)
    else:
        paths = [item.photo() for item in caption_set.items]
        from describe_local.store.local import resolve_model_folder

        model = resolve_model_folder(settings.caption_model, settings.models_dir)
        records = _collect(paths, "caption_task", settings, options, needs=(str(model),))
        refs = {i.key: i.refs for i in caption_set.items}
        candidates = {i.key: r["caption"] for i, r in zip(caption_set.items, records, strict=True) if "caption" in r}
        result["failed"] = _failed(paths, records, "caption")
        result["median_ms"] = _median([r["ms"] for r in records if "ms" in r])
        if not candidates:
            raise EvalDataError(f"{caption_set.source}: no photo could be captioned")
    result.update(captions.score_captions({k: refs[k] for k in candidates}, candidates))
    return result


def eval_faces(settings: Settings, options: EvalOptions, face_set: faces.FaceSet) -> dict[str, Any]:
    paths = [p.path for p in face_set.photos]
    records = _collect(paths, "face_task", settings, options, whole_if_none=face_set.kind == "folders")
    result = faces.score_face_set(face_set, records, tolerance=settings.face_tolerance, seed=settings.eval_seed,
                                  gallery_photos=settings.eval_gallery_photos, strangers=settings.eval_strangers)
    result["median_ms"] = _median([r["ms"] for r in records if "ms" in r])
    result["whole"] = sum(bool(r.get("whole")) for r in records)
    return result


def eval_text(settings: Settings, options: EvalOptions, text_set: text.TextSet) -> dict[str, Any]:
    paths = [item.path for item in text_set.items]
    records = _collect(paths, "text_task", settings, options)
    rows = []
    for item, record in zip(text_set.items, records, strict=True):
        row: dict[str, Any] = {"file": item.path.name, "path": str(item.path), "kind": item.kind}
        if "text" in record:
            row.update({k: record[k] for k in ("text", "language", "mode", "engine", "lines", "ms")})
            row.update(text.score_item(item, record["text"]))
        else:
            row["error"] = "; ".join(record.get("errors", {}).values()) or "no result"
        rows.append(row)
    return {"name": text_set.name, "source": text_set.source, "kind": text_set.kind, "photos": rows,
            "summary": text.summarise(rows), "engine": settings.ocr_engine}


def eval_speed(settings: Settings, options: EvalOptions, data: Path) -> dict[str, Any]:
    paths = [data / case.photo for case in speed.CASES]
    records = _collect(paths, "speed_task", settings, options, local=True, data=str(data),
                       repeats=settings.eval_repeats)
    others = [r["others_cpu"] for r in records if r.get("others_cpu") is not None]
    notes = {r.get("caption_note") for r in records if r.get("caption_note")}
    return {"repeats": settings.eval_repeats, "data": str(data), "rows": speed.speed_table(records, data),
            "cases": [{"label": c.label, "photo": c.photo, "aws_sequential_ms": c.aws_sequential_ms,
                       "aws_parallel_ms": c.aws_parallel_ms} for c in speed.CASES],
            "caption_note": "; ".join(sorted(notes)) or None, "cores": os.cpu_count(),
            "others_cpu": round(max(others), 3) if others else None,
            "peak_rss_mb": max((r.get("peak_rss_mb", 0.0) for r in records), default=0.0)}


def run_eval(settings: Settings, options: EvalOptions,
             progress: Callable[[str], None] | None = None) -> tuple[dict[str, Any], dict[str, Path]]:
    """Evaluate every section asked for, write the report into ``options.out``; the results and the files."""
    options.check()
    say = progress or (lambda _msg: None)
    from describe_local.evaluation.plots import pyplot

    pyplot()  # matplotlib missing: say so before any work
    sets = load_sets(settings, options)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": machine.command_line(),
        "machine": machine.machine(), "versions": machine.versions(), "jobs": options.jobs, "ray": options.ray,
        "limit": options.limit, "settings": settings.as_dict(),
    }
    sections: set[str] = set()
    if sets.captions is not None:
        say(f"captions: {sets.captions.source}")
        results["captions"] = eval_captions(settings, options, sets.captions)
        sections.add("human" if options.human else "captions")
    for face_set in sets.faces:
        say(f"faces: {face_set.source}")
        results.setdefault("faces", []).append(eval_faces(settings, options, face_set))
        sections.add("faces")
    for text_set in sets.text:
        say(f"text: {text_set.source}")
        results.setdefault("text", []).append(eval_text(settings, options, text_set))
        sections.add("text")
    if sets.speed_data is not None:
        say("speed: the original's table")
        results["speed"] = eval_speed(settings, options, sets.speed_data)
        sections.add("speed")
    results["models"] = machine.model_checksums(settings, sections)
    results["seconds"] = round(time.perf_counter() - started, 1)
    say("writing the report")
    return results, report.write_report(results, options.out)
