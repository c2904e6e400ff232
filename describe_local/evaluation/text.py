"""Text reading against ground truth: the measures, the sets they apply to, and the scores.

Three kinds of ground truth:

- **phrases** (``ocr/scenes/manifest.json``: ``phrases`` per photo): a phrase counts as read
  when, spaces removed and case folded, it is in the text read. Recall only: the phrases are
  not all the text in the photo.
- **pages** (``ocr/pages.manifest.json``: ``text`` or ``ground_truth_file`` per page): word
  recall and precision over bags of lower-case words (reading order does not count) and the
  character error rate (edit distance over the whitespace-normalised truth).
- **words** (ICDAR-2015 ``gt_img_N.txt`` beside ``img_N.jpg``: ``x1,y1,...,x4,y4,text`` per
  line, ``###`` for text nobody could read): word recall and precision as for pages. Text read
  inside a ``###`` region counts against precision, since these measures have no boxes.

``scripts/measure_ocr.py`` and the integration tests use the same measures.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from describe_local.errors import EvalDataError
from describe_local.evaluation.sets import find_manifest, first, item_file, read_json, read_truth

QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "‘": "'", "’": "'"})
DONT_CARE = "###"  # ICDAR's transcription for text that could not be read
FORMATS = (
    "a phrase manifest (items with 'file' and 'phrases', like ocr/scenes/manifest.json), "
    "a page manifest (items with 'file' and 'text' or 'ground_truth_file', like ocr/pages.manifest.json), "
    "or an ICDAR-2015 folder (gt_img_N.txt beside img_N.jpg)"
)


# -- the measures ---------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """NFC, ASCII quotes, words split at a line-end hyphen joined, whitespace collapsed."""
    text = unicodedata.normalize("NFC", text).translate(QUOTES)
    text = re.sub(r"(\w)-\s*\n\s*(?=[a-z])", r"\1", text)
    return " ".join(text.split())


def words_of(text: str) -> Counter[str]:
    """Lower-case words without the punctuation around them.

    Words with a '~' are left out: the UNLV ground truth marks characters its
    transcribers could not read with it.
    """
    found = (w.strip("\"'()[]{}<>.,;:!?-*&#$%") for w in normalise(text).lower().split())
    return Counter(w for w in found if w and "~" not in w)


def word_counts(found: str, truth: str) -> tuple[int, int, int]:
    """(words of the truth that were read, words in the truth, words read); each occurrence counts once."""
    got, want = words_of(found), words_of(truth)
    return sum((got & want).values()), sum(want.values()), sum(got.values())


def word_recall(found: str, truth: str) -> float:
    """Share of the ground truth's words that were read (each occurrence counts once)."""
    matched, truth_total, _ = word_counts(found, truth)
    return matched / max(1, truth_total)


def word_precision(found: str, truth: str) -> float:
    """Share of the words read that are in the ground truth."""
    matched, _, read_total = word_counts(found, truth)
    return matched / max(1, read_total)


def char_error_rate(found: str, truth: str) -> float:
    """Levenshtein distance between the normalised texts over the ground truth's length."""
    a, b = normalise(found), normalise(truth)
    if not b:
        return float(bool(a))
    row = np.arange(len(b) + 1, dtype=np.int32)
    codes = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    steps = np.arange(len(b) + 1, dtype=np.int32)
    for i, ch in enumerate(a, start=1):
        cost = (codes != ord(ch)).astype(np.int32)
        candidate = np.empty_like(row)
        candidate[0] = i
        candidate[1:] = np.minimum(row[1:] + 1, row[:-1] + cost)  # deletion, substitution
        # insertion: new[j] = min over k <= j of candidate[k] + (j - k)
        row = np.minimum.accumulate(candidate - steps) + steps
    return float(row[-1]) / len(b)


def squash(text: str) -> str:
    """The manifest's form for phrase matching: spaces removed, case folded."""
    return "".join(text.split()).casefold()


def phrases_read(text: str, phrases: list[str]) -> list[bool]:
    """For each phrase, whether it is in ``text`` (spaces removed, case folded), as ocr/scenes/manifest.json says."""
    found = squash(text)
    return [squash(p) in found for p in phrases]


# -- ICDAR-2015 ground truth ------------------------------------------------------------------------


@dataclass(frozen=True)
class IcdarWord:
    """One line of a ``gt_img_N.txt``: a quadrilateral and its transcription (``care`` False for ``###``)."""

    points: tuple[int, ...]  # x1, y1, ..., x4, y4
    text: str
    care: bool


def parse_icdar(raw: bytes | str, source: str = "<gt>") -> list[IcdarWord]:
    """The words of an ICDAR-2015 ground-truth file (UTF-8, with or without a byte-order mark).

    A transcription may itself hold commas: only the first eight fields are coordinates.
    """
    text = _utf8(raw, source) if isinstance(raw, bytes) else raw.lstrip("\ufeff")
    words = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.strip().split(",", 8)
        try:
            points = tuple(int(float(v)) for v in fields[:8])
        except ValueError:
            points = ()
        if len(fields) < 9 or len(points) != 8:
            raise EvalDataError(f"{source} line {number}: not 'x1,y1,x2,y2,x3,y3,x4,y4,transcription'")
        words.append(IcdarWord(points, fields[8], fields[8] != DONT_CARE))
    return words


def _utf8(raw: bytes, source: object) -> str:
    """``raw`` as UTF-8 text (a byte-order mark dropped), or :class:`EvalDataError`."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EvalDataError(f"{source}: not UTF-8 text (byte {exc.start}); save the ground truth as UTF-8") from None


def _icdar_image(gt: Path) -> Path | None:
    """``img_N.*`` for ``gt_img_N.txt``: beside it, or in a sibling folder (ICDAR ships them apart)."""
    stem = gt.stem.removeprefix("gt_")
    folders = [gt.parent, *sorted(p for p in gt.parent.parent.iterdir() if p.is_dir() and p != gt.parent)]
    for folder in folders:
        for suffix in (".jpg", ".jpeg", ".png", ".JPG", ".PNG"):
            if (folder / f"{stem}{suffix}").is_file():
                return folder / f"{stem}{suffix}"
    return None


# -- sets -----------------------------------------------------------------------------------------


@dataclass
class TextItem:
    """One photo and its ground truth: ``truth`` holds the phrases, the page's text (one entry) or the words."""

    path: Path
    kind: str  # "phrases", "page" or "words"
    truth: list[str]


@dataclass
class TextSet:
    name: str
    source: str
    kind: str
    items: list[TextItem] = field(default_factory=list)


def load_text_set(source: Path, limit: int | None = None) -> TextSet:
    """The set at ``source`` (a manifest, a folder with one, or an ICDAR folder); see :data:`FORMATS`."""
    source = Path(source)
    if source.is_dir():
        gts = sorted(source.glob("gt_*.txt"), key=lambda p: (len(p.name), p.name))
        if gts:
            return _icdar_set(source, first(gts, limit))
        manifest = find_manifest(source, "manifest.json")
        if manifest is None:
            raise EvalDataError(f"{source}: no text set found; eval reads {FORMATS}")
        source = manifest
    data = read_json(source)
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise EvalDataError(f"{source}: no 'items'; eval reads {FORMATS}")
    name = str(data.get("set") or source.parent.name)
    out = []
    for item in first(items, limit):
        path = item_file(source, str(item.get("file", "")))
        if isinstance(item.get("phrases"), list):
            out.append(TextItem(path, "phrases", [str(p) for p in item["phrases"]]))
        elif isinstance(item.get("text"), str):
            out.append(TextItem(path, "page", [item["text"]]))
        elif item.get("ground_truth_file"):
            truth_file = item_file(source, str(item["ground_truth_file"]))
            truth = _utf8(read_truth(truth_file), truth_file)
            out.append(TextItem(path, "page", [truth]))
        else:
            raise EvalDataError(f"{source}: item {item.get('file')!r} has no ground truth; eval reads {FORMATS}")
    kinds = {i.kind for i in out}
    return TextSet(name, str(source), kinds.pop() if len(kinds) == 1 else "mixed", out)


def _icdar_set(folder: Path, gts: list[Path]) -> TextSet:
    items = []
    for gt in gts:
        image = _icdar_image(gt)
        if image is None:
            raise EvalDataError(f"{gt}: no {gt.stem.removeprefix('gt_')}.jpg beside it or in a sibling folder")
        words = [w.text for w in parse_icdar(read_truth(gt), str(gt)) if w.care]
        items.append(TextItem(image, "words", words))
    return TextSet(folder.name, str(folder), "words", items)


# -- scores ---------------------------------------------------------------------------------------


def score_item(item: TextItem, text: str) -> dict[str, Any]:
    """The measures for one photo, with the counts they come from (so that sets can be pooled)."""
    if item.kind == "phrases":
        hits = phrases_read(text, item.truth)
        return {"matched": sum(hits), "of": len(hits), "recall": sum(hits) / max(1, len(hits)),
                "missed": [p for p, hit in zip(item.truth, hits, strict=True) if not hit]}
    truth = "\n".join(item.truth) if item.kind == "words" else item.truth[0]
    matched, total, read = word_counts(text, truth)
    scores: dict[str, Any] = {"matched": matched, "of": total, "read_words": read,
                              "recall": matched / max(1, total), "precision": matched / max(1, read)}
    if item.kind == "page":
        scores["cer"] = char_error_rate(text, truth)
    return scores


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A set's figures from its per-photo rows: recall and precision pooled over every phrase or word,
    CER the mean over pages, and the median and worst time."""
    scored = [r for r in rows if "recall" in r]
    matched, total = sum(r["matched"] for r in scored), sum(r["of"] for r in scored)
    out: dict[str, Any] = {"photos": len(rows), "failed": len(rows) - len(scored),
                           "recall": matched / total if total else None, "matched": matched, "of": total}
    worded = [r for r in scored if "precision" in r]  # phrase rows have none: their truth is not all the text
    if worded:
        read = sum(r["read_words"] for r in worded)
        out["precision"] = sum(r["matched"] for r in worded) / read if read else 0.0
    cers = [r["cer"] for r in scored if "cer" in r]
    out["cer"] = float(np.mean(cers)) if cers else None
    times = [r["ms"] for r in scored if "ms" in r]
    out["median_ms"] = float(np.median(times)) if times else None
    out["worst_ms"] = float(max(times)) if times else None
    return out
