"""Face recognition against labelled photos: a seeded gallery/probe split, accuracy, false accepts.

Two kinds of set:

- a folder per person (LFW style, like ``faces/johns``): every photo shows that person;
- a manifest with ``people`` per photo (``faces/photos.manifest.json``).

A photo of one person gives one sample, its largest face. People with one usable photo, and a
seeded share of the others (``eval_strangers``), are *strangers*: none of their photos is
enrolled, and every one of them is a probe that should match nobody. Each other person has
``eval_gallery_photos`` photos enrolled (at most all but one) and the rest are probes.

At a tolerance a probe is *named* by the nearest enrolled person when that person is within
it (as the faces stage does, with :func:`~describe_local.gallery.match_faces`):

- identification accuracy: known people's probes named correctly, over those probes;
- false-accept rate: strangers' probes given any name, over those probes;
- misidentified: known people's probes given someone else's name.

Photos of several people are scored whole, at the configured tolerance only: the known people
named, missed, and names given to someone not in the photo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from describe_local.errors import EvalDataError
from describe_local.evaluation.sets import find_manifest, first, item_file, photos_in, read_json
from describe_local.gallery import face_distances, match_faces

# The tolerances the curve is drawn over (the faces stage's default, 0.55, among them).
TOLERANCES = tuple(round(0.30 + 0.01 * i, 2) for i in range(51))
FORMATS = ("a folder with one subfolder of photos per person (LFW style, like faces/johns), "
           "or a manifest with 'file' and 'people' per item (like faces/photos.manifest.json)")


@dataclass
class FacePhoto:
    path: Path
    people: list[str]  # empty: unlabelled, left out


@dataclass
class FaceSet:
    name: str
    source: str
    kind: str  # "folders" or "manifest"
    photos: list[FacePhoto] = field(default_factory=list)


def load_face_set(source: Path, limit: int | None = None) -> FaceSet:
    """The set at ``source``: a folder per person, a manifest, or a folder with a manifest beside it."""
    source = Path(source)
    if source.is_dir():
        people = sorted(p for p in source.iterdir() if p.is_dir() and photos_in(p))
        if people:
            photos = [FacePhoto(photo, [person.name]) for person in people for photo in first(photos_in(person), limit)]
            return FaceSet(source.name, str(source), "folders", photos)
        manifest = find_manifest(source, "manifest.json")
        if manifest is None:
            raise EvalDataError(f"{source}: no face set found; eval reads {FORMATS}")
        source = manifest
    data = read_json(source)
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items or not any("people" in i for i in items if isinstance(i, dict)):
        raise EvalDataError(f"{source}: no items with 'people'; eval reads {FORMATS}")
    photos = [FacePhoto(item_file(source, str(i.get("file", ""))), [str(p) for p in i.get("people") or []])
              for i in items]
    return FaceSet(str(data.get("set") or source.parent.name), str(source), "manifest", first(photos, limit))


# -- the split --------------------------------------------------------------------------------------


@dataclass
class Split:
    """Who is enrolled and with which photos; which photos probe; who the strangers are."""

    gallery: dict[str, list[str]]  # person -> enrolled photo paths
    probes: dict[str, list[str]]  # person -> probe photo paths (strangers' photos included)
    strangers: list[str]


def split_people(samples: dict[str, list[str]], *, seed: int, gallery_photos: int, strangers: float) -> Split:
    """Split each person's photos (``samples``: person -> photos with a usable face) with a seeded generator.

    The same samples, seed and numbers give the same split on any machine (numpy's PCG64).
    """
    rng = np.random.default_rng(seed)
    people = sorted(samples)
    single = [p for p in people if len(samples[p]) < 2]
    several = [p for p in people if len(samples[p]) >= 2]
    wanted = max(1, round(strangers * len(people))) if strangers > 0 and len(people) >= 2 else 0
    extra = min(max(0, wanted - len(single)), max(0, len(several) - 1))  # someone stays known
    chosen = [several[i] for i in sorted(rng.permutation(len(several))[:extra])] if extra else []
    held_out = sorted(single + chosen)
    split = Split(gallery={}, probes={}, strangers=held_out)
    for person in people:
        photos = sorted(samples[person])
        if person in held_out:
            split.probes[person] = photos
            continue
        order = [photos[i] for i in rng.permutation(len(photos))]
        enrolled = min(gallery_photos, len(photos) - 1)
        split.gallery[person] = sorted(order[:enrolled])
        split.probes[person] = sorted(order[enrolled:])
    return split


# -- scores -----------------------------------------------------------------------------------------


def largest_face(boxes: list[list[int]]) -> int | None:
    """Index of the largest box (``top, right, bottom, left``), or None when there is none."""
    if not boxes:
        return None
    return max(range(len(boxes)), key=lambda i: (boxes[i][2] - boxes[i][0]) * (boxes[i][1] - boxes[i][3]))


def nearest(probe: np.ndarray, names: list[str], encodings: np.ndarray) -> tuple[str, float]:
    """The enrolled person nearest to one encoding, and the distance to that person's nearest photo."""
    distances = face_distances(probe[None, :], encodings)[0]
    best = int(np.argmin(distances))
    return names[best], float(distances[best])


def curve(known: list[tuple[str, str, float]], strangers: list[float]) -> dict[str, list[float]]:
    """Accuracy, misidentification and false-accept rates at each of :data:`TOLERANCES`.

    ``known``: (person, nearest enrolled person, distance) per known probe; ``strangers``: distance per
    stranger probe to the nearest enrolled person.
    """
    tol = np.array(TOLERANCES)[:, None]
    right = np.array([truth == name for truth, name, _ in known], dtype=bool)
    near = np.array([d for _, _, d in known]) <= tol if known else np.zeros((len(tol), 0), dtype=bool)
    far = np.array(strangers) <= tol if strangers else np.zeros((len(tol), 0), dtype=bool)

    def rate(hits: np.ndarray) -> list[float]:
        return [float(v) for v in hits.mean(axis=1)] if hits.shape[1] else [0.0] * len(TOLERANCES)

    return {"tolerance": list(TOLERANCES), "accuracy": rate(near & right), "misidentified": rate(near & ~right),
            "false_accept": rate(far)}


def score_face_set(face_set: FaceSet, records: list[dict[str, Any]], *, tolerance: float, seed: int,
                   gallery_photos: int, strangers: float) -> dict[str, Any]:
    """Split, enrol and probe ``face_set`` from its photos' ``records`` (``boxes`` and ``encodings``
    per photo, in the order of ``face_set.photos``); every figure of the module docstring."""
    encodings: dict[str, np.ndarray] = {}
    samples: dict[str, list[str]] = {}
    no_face, unlabelled, groups, failed = [], [], [], []
    for photo, record in zip(face_set.photos, records, strict=True):
        key = str(photo.path)
        if "encodings" not in record:
            failed.append({"path": key, "error": "; ".join(record.get("errors", {}).values()) or "no result"})
        elif not photo.people:
            unlabelled.append(key)
        elif not record["boxes"]:
            no_face.append(key)
        elif len(photo.people) > 1:
            groups.append((photo, np.array(record["encodings"], dtype=np.float64)))
        else:
            encodings[key] = np.array(record["encodings"][largest_face(record["boxes"])], dtype=np.float64)
            samples.setdefault(photo.people[0], []).append(key)
    if not samples:
        raise EvalDataError(f"{face_set.source}: no photo of one person with a face found; nothing to evaluate")
    split = split_people(samples, seed=seed, gallery_photos=gallery_photos, strangers=strangers)
    if not split.gallery:
        raise EvalDataError(f"{face_set.source}: nobody has two photos with a face to enrol and probe")
    names = [p for p, photos in split.gallery.items() for _ in photos]
    enrolled = np.stack([encodings[f] for photos in split.gallery.values() for f in photos])
    probes, known, stranger_d = [], [], []
    for person, photos in split.probes.items():
        for path in photos:
            name, distance = nearest(encodings[path], names, enrolled)
            [(given, _)] = match_faces(encodings[path][None, :], names, enrolled, tolerance)
            stranger = person in split.strangers
            probes.append({"path": path, "person": person, "stranger": stranger, "nearest": name,
                           "distance": round(distance, 4), "named": given})
            if stranger:
                stranger_d.append(distance)
            else:
                known.append((person, name, distance))
    known_rows = [p for p in probes if not p["stranger"]]
    stranger_rows = [p for p in probes if p["stranger"]]
    return {
        "name": face_set.name, "source": face_set.source, "kind": face_set.kind, "tolerance": tolerance,
        "seed": seed, "gallery_photos": gallery_photos, "strangers_share": strangers,
        "people": len(samples), "known_people": sorted(split.gallery), "strangers": split.strangers,
        "enrolled": split.gallery, "known_probes": len(known_rows), "stranger_probes": len(stranger_rows),
        "accuracy": _share(p["named"] == p["person"] for p in known_rows),
        "closed_set_accuracy": _share(p["nearest"] == p["person"] for p in known_rows),
        "misidentified": _share(p["named"] not in (None, p["person"]) for p in known_rows),
        "false_accept_rate": _share(p["named"] is not None for p in stranger_rows),
        "curve": curve(known, stranger_d), "probes": probes,
        "groups": [_group(photo, found, names, enrolled, tolerance) for photo, found in groups],
        "no_face": no_face, "unlabelled": unlabelled, "failed": failed,
    }


def _group(photo: FacePhoto, found: np.ndarray, names: list[str], enrolled: np.ndarray,
           tolerance: float) -> dict[str, Any]:
    """A photo of several people, scored as the faces stage would name them (each person at most once)."""
    given = sorted({n for n, _ in match_faces(found, names, enrolled, tolerance) if n is not None})
    expected = sorted(set(photo.people) & set(names))
    return {"path": str(photo.path), "people": photo.people, "faces": len(found), "named": given,
            "named_right": sorted(set(given) & set(expected)), "missed": sorted(set(expected) - set(given)),
            "wrong": sorted(set(given) - set(photo.people))}


def _share(flags: Any) -> float | None:
    values = list(flags)
    return sum(values) / len(values) if values else None
