"""Face detection, encoding and recognition with the real dlib models on real photos.

The public-figure gallery is enrolled once per session through the real
``Gallery.add`` from the ``knn_train__*`` photos of ../shared/data/faces/photos;
the ``knn_test__*`` photos (group photos included), the other labelled photos,
the dlib "johns" face chips and the Pascal VOC group photos are then checked
against their ground truth.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from describe_local.errors import FaceWorkerError
from describe_local.images import Photo, load_photo
from describe_local.see.faces.detect import (
    Box,
    FaceDetector,
    FaceModels,
    detect_faces,
    detector_folder,
    downscale,
    encode_faces,
    find_faces,
)
from describe_local.see.faces.gallery import Gallery
from describe_local.see.faces.recognize import FaceRecognizer, FaceResult, face_distances, match_faces
from describe_local.see.faces.worker import IDLE_EXIT_STATUS, FaceWorker
from describe_local.settings import Settings

BIG = 10**9  # no image limits for test photos


def _load(path: Path) -> Photo:
    return load_photo(path, max_bytes=BIG, max_pixels=BIG)


def _iou(a: Box, b: Box) -> float:
    top, bottom = max(a.top, b.top), min(a.bottom, b.bottom)
    left, right = max(a.left, b.left), min(a.right, b.right)
    inter = max(0, bottom - top) * max(0, right - left)

    def area(x: Box) -> int:
        return (x.bottom - x.top) * (x.right - x.left)

    return inter / (area(a) + area(b) - inter)


@pytest.fixture(scope="session")
def face_models() -> FaceModels:
    return FaceModels.load()


@pytest.fixture(scope="session")
def test_settings() -> Settings:
    return Settings.load(environ={})


@pytest.fixture(scope="session")
def manifest(shared_data: Path) -> dict[str, list[str] | None]:
    """File name -> the people in it, from the shared data's manifest."""
    items = json.loads((shared_data / "faces/photos.manifest.json").read_text())["items"]
    return {Path(item["file"]).name: item["people"] for item in items}


@pytest.fixture(scope="session")
def public_gallery(shared_data: Path, manifest, face_models, test_settings, tmp_path_factory) -> Gallery:
    """Everyone in the knn_train__* photos, enrolled through Gallery.add."""
    gallery = Gallery.open(tmp_path_factory.mktemp("public") / "known_faces", test_settings, face_models)
    by_person: dict[str, list[Path]] = {}
    for path in sorted((shared_data / "faces/photos").glob("knn_train__*")):
        (person,) = manifest[path.name]
        by_person.setdefault(person, []).append(path)
    for person, photos in by_person.items():
        assert len(gallery.add(person, photos)) == len(photos)
    return gallery


@pytest.fixture(scope="session")
def recognizer(public_gallery: Gallery, face_models, test_settings) -> FaceRecognizer:
    """The default recogniser: faces are found in a FaceWorker child process."""
    assert test_settings.face_subprocess
    recognizer = FaceRecognizer.load(Gallery.open(public_gallery.folder, test_settings), test_settings, face_models)
    assert recognizer.worker is not None
    yield recognizer
    recognizer.close()


@pytest.fixture(scope="session")
def recognized(recognizer: FaceRecognizer, shared_data: Path):
    """Recognition results, computed once per photo for the whole session."""
    results: dict[Path, FaceResult] = {}

    def recognize(path: Path) -> FaceResult:
        if path not in results:
            results[path] = recognizer.recognize(_load(path))
        return results[path]

    return recognize


def test_gallery_holds_the_enrolled_people(recognizer: FaceRecognizer, manifest):
    enrolled = {p[0] for name, p in manifest.items() if name.startswith("knn_train__")}
    assert recognizer.people == sorted(enrolled)
    assert recognizer.known_encodings.shape == (len(recognizer.known_names), 128)
    assert len(recognizer.known_names) == sum(name.startswith("knn_train__") for name in manifest)


# The knn_test__ photos, with who is in them left to right (the manifest lists
# names, not order; the order was checked by eye). obama_and_biden also shows
# a girl at the lower right, whom no one enrolled: one unknown face.
KNN_TEST = {
    "knn_test__obama1.jpg": (["Barack Obama"], 0),
    "knn_test__alex_lacamoire1.jpg": (["Alex Lacamoire"], 0),
    "knn_test__johnsnow_test1.jpg": (["Kit Harington"], 0),
    "knn_test__kit_with_rose.jpg": (["Rose Leslie", "Kit Harington"], 0),
    "knn_test__obama_and_biden.jpg": (["Joe Biden", "Barack Obama"], 1),
}


@pytest.mark.parametrize("name", sorted(KNN_TEST))
def test_knn_test_photos_are_recognised(name: str, recognized, shared_data: Path, manifest):
    people, unknown = KNN_TEST[name]
    assert sorted(people) == sorted(manifest[name])  # the table agrees with the ground truth
    result = recognized(shared_data / "faces/photos" / name)
    assert result.people == people
    assert result.unknown == unknown
    assert len(result.faces) == len(people) + unknown
    lefts = [box.left for box in result.boxes]
    assert lefts == sorted(lefts)  # faces, hence names, run left to right
    for face in result.faces:
        if face.name is not None:
            assert face.distance <= 0.55


def test_other_labelled_photos(recognized, shared_data: Path, manifest, recognizer: FaceRecognizer):
    """Every other labelled photo: enrolled people named, others counted as unknown.

    Includes RGBA PNGs, a 320x240 photo, a 1434x2333 one (downscaled), partial
    faces, and Lin-Manuel Miranda, who is not in the gallery.
    """
    enrolled = set(recognizer.people)
    checked = 0
    for name, people in sorted(manifest.items()):
        if people is None or name.startswith(("knn_train__", "knn_test__")):
            continue
        result = recognized(shared_data / "faces/photos" / name)
        assert sorted(result.people) == sorted(p for p in people if p in enrolled), name
        assert result.unknown == sum(p not in enrolled for p in people), name
        checked += 1
    assert checked == 7


def test_collage_of_strangers_gives_no_false_match(recognized, shared_data: Path, recognizer):
    result = recognized(shared_data / "faces/groups/bald_guys.jpg")
    assert len(result.faces) == 24
    assert result.people == []
    assert result.unknown == 24
    # Not by a hair: every stranger is clearly beyond the tolerance.
    assert min(face.distance for face in result.faces) > recognizer.tolerance + 0.05


def test_no_faces_in_a_photo_of_dogs(recognized, shared_data: Path):
    result = recognized(shared_data / "faces/groups/dogs.jpg")
    assert (result.people, result.unknown, result.faces) == ([], 0, [])


def test_no_faces_in_a_coffee_cup(recognizer: FaceRecognizer):
    data = pytest.importorskip("skimage.data")
    result = recognizer.recognize(Photo(Image.fromarray(data.coffee())))
    assert (result.people, result.unknown) == ([], 0)


def _annotated_groups(folder: Path) -> list[tuple[str, list[Box]]]:
    images = []
    for xml_name in ("training.xml", "testing.xml"):
        for image in ET.parse(folder / xml_name).getroot().iter("image"):
            boxes = []
            for b in image.iter("box"):
                top, left = int(b.get("top")), int(b.get("left"))
                boxes.append(Box(top, left + int(b.get("width")), top + int(b.get("height")), left))
            images.append((image.get("file"), boxes))
    return images


def test_group_photos_faces_match_the_annotations(recognized, shared_data: Path):
    """Pascal VOC group photos (2 to 7 faces of about 37 px and up) against dlib's boxes."""
    folder = shared_data / "faces/groups"
    images = _annotated_groups(folder)
    assert len(images) == 9
    found = total = 0
    for file, truth in images:
        result = recognized(folder / file)
        assert abs(len(result.faces) - len(truth)) <= 1, (file, len(result.faces), len(truth))
        assert result.people == []  # no one from the public gallery is in these
        for box in truth:
            total += 1
            found += max((_iou(box, b) for b in result.boxes), default=0) >= 0.5
    assert found / total >= 0.9, (found, total)


def test_boxes_are_in_the_photos_own_pixels_after_downscaling(face_models, shared_data: Path):
    """A group photo blown up to 2500 px is detected on a 1600 px copy; boxes come back scaled."""
    file, truth = _annotated_groups(shared_data / "faces/groups")[0]
    small = _load(shared_data / "faces/groups" / file)
    factor = 5
    big = Photo(small.image.resize((small.size[0] * factor, small.size[1] * factor), Image.Resampling.BICUBIC))
    image, scale = downscale(big, 1600)
    assert max(image.shape[:2]) == 1600 and scale < 1
    boxes, encodings = find_faces(face_models, big, max_side=1600, upsample=1)
    assert encodings.shape == (len(boxes), 128)
    assert len(boxes) >= len(truth) - 1
    for box in truth:
        scaled = Box(*(v * factor for v in box))
        assert max(_iou(scaled, b) for b in boxes) >= 0.5


def test_upsampling_finds_small_faces(face_models, shared_data: Path):
    """Faces of about 37 px need one upsampling (HOG's window is 80 px)."""
    image = _load(shared_data / "faces/groups/2008_004176.jpg").array
    assert len(detect_faces(face_models, image, upsample=0)) <= 2
    assert len(detect_faces(face_models, image, upsample=1)) == 7


def test_the_built_detector_is_saved_once_and_read_back_the_same(tmp_path: Path, shared_data: Path, caplog):
    """The detector a face child builds (most of its start) is kept in the store and read back on
    later starts; it finds the same faces; a damaged copy is built and saved again."""
    image = _load(shared_data / "faces/groups/2008_004176.jpg").array
    built = FaceDetector.load().detect(image, 1)
    assert len(built) == 7
    (tmp_path / "frontal_face_detector-dlib19.24.svm").write_bytes(b"another dlib's")
    FaceDetector.load(tmp_path)
    (saved,) = tmp_path.iterdir()  # and another dlib's copy is gone
    assert saved.name.startswith("frontal_face_detector-dlib") and saved.suffix == ".svm"
    written = saved.stat().st_mtime_ns
    assert FaceDetector.load(tmp_path).detect(image, 1) == built
    assert saved.stat().st_mtime_ns == written  # read, not written again
    saved.write_bytes(b"not a detector")
    assert FaceDetector.load(tmp_path).detect(image, 1) == built
    assert "ignoring the saved face detector" in caplog.text
    assert saved.stat().st_size > 100_000 and list(tmp_path.iterdir()) == [saved]


def test_the_face_child_keeps_its_detector_in_the_model_store(shared_data: Path, tmp_path: Path):
    settings = Settings.load(environ={"DESCRIBE_LOCAL_MODELS_DIR": str(tmp_path)})
    recognizer = FaceRecognizer.load(Gallery(tmp_path / "known", settings), settings)
    try:
        assert recognizer.recognize(_load(shared_data / "faces/photos/knn_test__obama1.jpg")).unknown == 1
    finally:
        recognizer.close()
    (saved,) = detector_folder(tmp_path).iterdir()
    assert saved.name.startswith("frontal_face_detector-dlib")


@pytest.fixture(scope="session")
def johns(shared_data: Path, face_models) -> dict[str, np.ndarray]:
    """Encodings of dlib's aligned 150x150 face chips, 5 people x 11, in file order."""
    result = {}
    for person in sorted((shared_data / "faces/johns").iterdir()):
        rows = []
        for chip in sorted(person.glob("*.jpg")):
            _boxes, encodings = find_faces(face_models, _load(chip), 1600, 1)
            assert len(encodings) == 1, chip
            rows.append(encodings[0])
        result[person.name] = np.stack(rows)
    return result


def test_johns_enrol_some_chips_recognise_the_others(johns: dict[str, np.ndarray]):
    names = [n for n, rows in johns.items() for _ in rows[:4]]
    known = np.concatenate([rows[:4] for rows in johns.values()])
    assert len(set(names)) == 5
    right = wrong = unknown = 0
    for person, rows in johns.items():
        for encoding in rows[4:]:
            ((name, _distance),) = match_faces(encoding[None, :], names, known, 0.55)
            right += name == person
            wrong += name is not None and name != person
            unknown += name is None
    assert wrong == 0
    assert right >= 0.9 * (right + unknown), (right, unknown)


def test_johns_distances_separate_people(johns: dict[str, np.ndarray]):
    """Same person: under the tolerance; different people: clearly over it."""
    people = list(johns)
    within, between = [], []
    for i, a in enumerate(people):
        d = face_distances(johns[a], johns[a])
        within.append(d[np.triu_indices(len(d), 1)].max())
        for b in people[i + 1 :]:
            between.append(face_distances(johns[a], johns[b]).min())
    assert max(within) < 0.6
    assert min(between) > 0.6


def test_match_faces_gives_each_person_to_one_face(johns: dict[str, np.ndarray]):
    salley, savage = johns["John_Salley"], johns["John_Savage"]
    known_names = ["John_Salley"] * 3
    # Two different chips of Salley: both are near, only the nearer gets the name.
    faces = salley[[5, 6]]
    distances = face_distances(faces, salley[:3]).min(axis=1)
    matches = match_faces(faces, known_names, salley[:3], 0.6)
    names = [name for name, _ in matches]
    assert distances.max() <= 0.6  # both would match on their own
    nearer = int(np.argmin(distances))
    assert names[nearer] == "John_Salley" and names[1 - nearer] is None
    # With Savage enrolled too, a Savage chip goes to Savage even though Salley is taken first.
    matches = match_faces(
        np.stack([salley[5], savage[7]]), ["John_Salley", "John_Savage"], np.stack([salley[0], savage[0]]), 0.6
    )
    assert [name for name, _ in matches] == ["John_Salley", "John_Savage"]


def test_match_faces_edge_cases(johns: dict[str, np.ndarray]):
    rows = johns["John_Simm"]
    assert match_faces(np.empty((0, 128)), ["x"], rows[:1], 0.55) == []
    assert match_faces(rows[:2], [], np.empty((0, 128)), 0.55) == [(None, None), (None, None)]
    with pytest.raises(ValueError):
        match_faces(rows[:1], ["a", "b"], rows[:1], 0.55)
    # Tolerance 0: only the very same encoding matches.
    assert match_faces(rows[:1], ["John_Simm"], rows[:1], 0.0)[0] == ("John_Simm", 0.0)
    assert match_faces(rows[1:2], ["John_Simm"], rows[:1], 0.0)[0][0] is None


def test_encode_faces_with_no_boxes(face_models):
    assert encode_faces(face_models, np.zeros((50, 50, 3), np.uint8), []).shape == (0, 128)


def test_recognize_from_several_threads_gives_the_same_results(recognizer, recognized, shared_data: Path):
    """The pipeline calls recognize from worker threads; dlib objects are guarded by a lock."""
    paths = [shared_data / "faces/photos" / n for n in ("knn_test__kit_with_rose.jpg", "obama_small.jpg")]
    photos = [_load(p) for p in paths]
    expected = [recognized(p).people for p in paths]
    got: dict[int, list[str]] = {}

    def work(i: int) -> None:
        got[i] = recognizer.recognize(photos[i % 2]).people

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [got[i] for i in range(4)] == [expected[0], expected[1]] * 2


def test_empty_gallery_counts_everyone_as_unknown(face_models, test_settings, tmp_path: Path, shared_data: Path):
    recognizer = FaceRecognizer.load(Gallery.open(tmp_path / "none", test_settings), test_settings, face_models)
    assert recognizer.people == []
    result = recognizer.recognize(_load(shared_data / "faces/photos/knn_test__kit_with_rose.jpg"))
    assert (result.people, result.unknown) == ([], 2)


def test_in_process_and_worker_give_the_same_faces(face_models, public_gallery, test_settings, recognized, shared_data):
    here_settings = Settings.load(environ={}, face_subprocess=False)
    here = FaceRecognizer.load(Gallery.open(public_gallery.folder, here_settings), here_settings, face_models)
    assert here.worker is None
    for name in ("knn_test__obama_and_biden.jpg", "alex-lacamoire.png"):
        path = shared_data / "faces/photos" / name
        expected = recognized(path)
        got = here.recognize(_load(path))
        assert (got.people, got.unknown, got.boxes) == (expected.people, expected.unknown, expected.boxes)
        assert [f.distance for f in got.faces] == pytest.approx([f.distance for f in expected.faces], abs=1e-9)


def test_a_worker_that_dies_is_replaced(shared_data: Path):
    worker = FaceWorker()
    try:
        image = _load(shared_data / "faces/photos/obama_small.jpg").array
        boxes, encodings = worker.find_faces(image, 1)
        assert len(boxes) == 1

        # Dies while idle: the next photo gets a new child.
        first = worker.pid
        os.kill(first, signal.SIGKILL)
        worker._process.wait(timeout=10)
        again_boxes, again = worker.find_faces(image, 1)
        assert worker.pid != first
        assert again_boxes == boxes and np.array_equal(again, encodings)

        # Dies mid-photo: that photo fails with a clear error, the next one works.
        collage = _load(shared_data / "faces/groups/bald_guys.jpg").array  # seconds of work
        second = worker.pid
        killer = threading.Timer(0.3, os.kill, (second, signal.SIGKILL))
        killer.start()
        with pytest.raises(FaceWorkerError, match="stopped unexpectedly"):
            worker.find_faces(collage, 1)
        killer.join()
        assert worker.find_faces(image, 1)[0] == boxes
        assert worker.pid not in (first, second)
    finally:
        worker.close()
    assert worker.pid is None


def test_an_idle_worker_exits_and_comes_back(shared_data: Path):
    worker = FaceWorker(idle_exit_s=0.5)
    try:
        image = _load(shared_data / "faces/photos/obama_small.jpg").array
        boxes, _ = worker.find_faces(image, 1)
        first = worker.pid
        assert worker._process.wait(timeout=30) == IDLE_EXIT_STATUS  # exited by itself when idle
        assert worker.find_faces(image, 1)[0] == boxes
        assert worker.pid != first
    finally:
        worker.close()
