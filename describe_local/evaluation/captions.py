"""Captions against human references: BLEU-1..4, METEOR, ROUGE-L, CIDEr-D (and SPICE where it can run).

The scores are pycocoevalcap's, the COCO caption evaluation code, so that they can be set
beside published figures: captions are tokenised by the Stanford PTB tokenizer and punctuation
dropped, then scored per photo against all of its references. pycocoevalcap's ``Cider`` is
CIDEr-D (clipped n-gram counts, a length penalty, sigma 6), with document frequencies from the
references of the set scored. Its tokenizer and METEOR are Java programs; SPICE also needs
Stanford CoreNLP's jars, which pycocoevalcap downloads on first use, so it runs only where they
are already present (this machine is offline).

Sets: our manifest (``captions/manifest.json``: items with ``file`` and ``captions``) or a
COCO annotation file (``images`` with ``id`` and ``file_name``, ``annotations`` with
``image_id`` and ``caption``). *Human* mode needs no model: each photo's first human caption
is scored against its other references (leave one out), a yardstick for the model's scores.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from describe_local.errors import EvalDataError, EvalToolMissing, first_line
from describe_local.evaluation.sets import first, item_file, read_json

log = logging.getLogger(__name__)

METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D", "SPICE")
FORMATS = ("our caption manifest (items with 'file' and 'captions', like captions/manifest.json) "
           "or a COCO annotation file ('images' with 'id' and 'file_name', "
           "'annotations' with 'image_id' and 'caption')")
EXTRA_HINT = "pip install 'describe-local[eval]' (./scripts/setup-tests installs it)"
SPICE_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")


@dataclass
class CaptionItem:
    key: str  # the photo's id in the set
    file: str  # as the set names it
    refs: list[str]
    source: Path  # the set's file, to find the photo from
    image_folders: tuple[Path, ...] = ()

    def photo(self) -> Path:
        """The photo, for a model to caption (:class:`EvalDataError` when it is not there)."""
        return item_file(self.source, self.file, *self.image_folders)


@dataclass
class CaptionSet:
    name: str
    source: str
    items: list[CaptionItem] = field(default_factory=list)


def load_caption_set(source: Path, limit: int | None = None, images: Path | None = None) -> CaptionSet:
    """The set at ``source`` (see :data:`FORMATS`; a folder holding ``manifest.json`` or one
    ``captions_*.json`` works too). ``images``: where a COCO file's photos are, if not beside it."""
    source = Path(source)
    if source.is_dir():
        found = [source / "manifest.json"] if (source / "manifest.json").is_file() else sorted(
            source.glob("captions_*.json"))
        if len(found) != 1:
            raise EvalDataError(f"{source}: no caption set found; eval reads {FORMATS}")
        source = found[0]
    data = read_json(source)
    folders = tuple(p for p in (images, source.parent / "images") if p is not None)
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        items = []
        for n, item in enumerate(data["items"]):
            refs = [str(c) for c in item.get("captions") or []]
            if not refs:
                raise EvalDataError(f"{source}: item {item.get('file')!r} has no 'captions'; eval reads {FORMATS}")
            key = str(item.get("coco_image_id", item.get("id", n)))
            items.append(CaptionItem(key, str(item.get("file", "")), refs, source, folders))
        return CaptionSet(str(data.get("set") or source.stem), str(source), first(items, limit))
    if isinstance(data, dict) and isinstance(data.get("annotations"), list) and isinstance(data.get("images"), list):
        refs_by_id: dict[str, list[str]] = {}
        for note in data["annotations"]:
            refs_by_id.setdefault(str(note.get("image_id")), []).append(str(note.get("caption", "")))
        coco = [CaptionItem(str(img.get("id")), str(img.get("file_name", "")), refs_by_id[str(img.get("id"))],
                            source, folders)
                for img in data["images"] if str(img.get("id")) in refs_by_id]
        if not coco:
            raise EvalDataError(f"{source}: no image has a caption")
        return CaptionSet(source.stem, str(source), first(coco, limit))
    raise EvalDataError(f"{source}: not a caption set; eval reads {FORMATS}")


def human_pairs(caption_set: CaptionSet) -> tuple[dict[str, list[str]], dict[str, str]]:
    """References and candidates for human mode: each photo's first caption against its others."""
    usable = [i for i in caption_set.items if len(i.refs) >= 2]
    if not usable:
        raise EvalDataError(f"{caption_set.source}: human mode needs photos with two captions or more")
    return {i.key: i.refs[1:] for i in usable}, {i.key: i.refs[0] for i in usable}


def check_tools() -> None:
    """pycocoevalcap importable and Java on the PATH, or :class:`EvalToolMissing` saying what to install."""
    try:
        import pycocoevalcap  # noqa: F401
    except ImportError:
        raise EvalToolMissing(f"caption scores need pycocoevalcap: {EXTRA_HINT}") from None
    if shutil.which("java") is None:
        raise EvalToolMissing(
            "caption scores need Java (pycocoevalcap's tokenizer and METEOR are Java programs): "
            "apt-get install default-jre-headless, or run ./scripts/setup-tests"
        )


def spice_missing() -> str | None:
    """Why SPICE cannot run here, or None when its Stanford CoreNLP jars are in place."""
    from pycocoevalcap import spice

    lib = Path(spice.__file__).parent / "lib"
    missing = [jar for jar in SPICE_JARS if not (lib / jar).is_file()]
    if missing:
        return (f"SPICE not scored: Stanford CoreNLP ({', '.join(missing)}) is not in {lib}, and pycocoevalcap "
                "would download it; put the two jars there to score SPICE")
    return None


def score_captions(refs: dict[str, list[str]], candidates: dict[str, str]) -> dict[str, Any]:
    """Every metric of :data:`METRICS` over the photos in ``candidates``, and per photo BLEU-4 and CIDEr-D.

    A metric that cannot run (SPICE without its jars, METEOR when Java fails) is ``None`` with a note.
    """
    check_tools()
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    keys = sorted(candidates)
    if not keys:
        raise EvalDataError("no captions to score")
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({k: [{"caption": c} for c in refs[k]] for k in keys})
    res = tokenizer.tokenize({k: [{"caption": candidates[k]}] for k in keys})
    scores: dict[str, float | None] = dict.fromkeys(METRICS)
    notes: list[str] = []
    bleu, bleu_each = Bleu(4).compute_score(gts, res, verbose=0)
    for n in range(4):
        scores[f"BLEU-{n + 1}"] = float(bleu[n])
    scores["ROUGE-L"] = float(Rouge().compute_score(gts, res)[0])
    cider, cider_each = Cider().compute_score(gts, res)
    scores["CIDEr-D"] = float(cider)
    scores["METEOR"] = _meteor(gts, res, notes)
    spice_note = spice_missing()
    if spice_note:
        notes.append(spice_note)
    else:
        scores["SPICE"] = _spice(gts, res, notes)
    per_photo = [{"key": k, "candidate": candidates[k], "bleu4": float(bleu_each[3][i]), "cider": float(cider_each[i])}
                 for i, k in enumerate(keys)]
    return {"scores": scores, "notes": notes, "photos": len(keys),
            "references": sum(len(refs[k]) for k in keys), "per_photo": per_photo}


def _meteor(gts: dict, res: dict, notes: list[str]) -> float | None:
    from pycocoevalcap.meteor.meteor import Meteor

    meteor = None
    try:
        meteor = Meteor()
        return float(meteor.compute_score(gts, res)[0])
    except (OSError, ValueError) as exc:  # Java stopped: its reply is empty
        notes.append(f"METEOR not scored: {first_line(exc)}")
        return None
    finally:
        if meteor is not None:  # stop its Java process now, not whenever the object is collected
            with contextlib.suppress(OSError, ValueError):
                meteor.meteor_p.stdin.close()
            meteor.meteor_p.kill()
            meteor.meteor_p.wait()


def _spice(gts: dict, res: dict, notes: list[str]) -> float | None:
    import subprocess

    from pycocoevalcap.spice.spice import Spice

    try:
        return float(Spice().compute_score(gts, res)[0])
    except (OSError, ValueError, subprocess.CalledProcessError) as exc:
        notes.append(f"SPICE failed: {first_line(exc)}")
        return None
