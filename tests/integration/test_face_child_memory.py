"""The face child's memory, with the real dlib models on real photos, and the faces it finds unchanged.

The child keeps dlib's detector as bytes and copies it for each photo (the copy's feature
pyramid goes with it), loads the landmark and encoder models only for a photo with faces,
encodes one face at a time, and trims what it freed after each photo. Figures measured on
2026-12-07 (``scripts/bench_faces_memory.py --compare``, 2 cores): resident when ready 70 -> 37
MB; high-water mark on dogs.jpg 110 -> 76 MB, on bald_guys.jpg (24 faces) 193 -> 130 MB; left
resident after bald_guys 191 -> 45 MB. The budgets below sit between the two.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from describe_local.errors import FaceWorkerError
from describe_local.images import load_photo
from describe_local.see.faces.detect import Box, FaceEncoder, FaceModels, downscale, encode_faces, face_model_files
from describe_local.see.faces.worker import FaceWorker

BIG = 10**9
READY_MB = 50  # resident once the child has loaded what it keeps (was 70)
DOGS_PEAK_MB = 92  # high-water mark after dogs.jpg, no faces (was 110)
COLLAGE_PEAK_MB = 160  # after bald_guys.jpg, 24 faces (was 193)
LEFT_MB = 15  # resident after a photo, over what it was when ready (was 28 after dogs, 121 after bald_guys)


def _mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} for {pid}")


def _image(path: Path) -> np.ndarray:
    return downscale(load_photo(path, max_bytes=BIG, max_pixels=BIG), 1600)[0]


@pytest.fixture(scope="module")
def face_models() -> FaceModels:
    return FaceModels.load()


def test_the_face_child_holds_little_and_gives_back_what_a_photo_used(shared_data: Path):
    dogs, collage = _image(shared_data / "faces/groups/dogs.jpg"), _image(shared_data / "faces/groups/bald_guys.jpg")
    marks = []
    for image, peak_budget in ((dogs, DOGS_PEAK_MB), (collage, COLLAGE_PEAK_MB)):
        worker = FaceWorker()  # a fresh child, as a cold describe starts one
        try:
            ready = _mb(worker.pid, "VmRSS")
            assert ready <= READY_MB, f"the face child holds {ready:.0f} MB before any photo"
            boxes, encodings = worker.find_faces(image, 1, 300)
            peak, left = _mb(worker.pid, "VmHWM"), _mb(worker.pid, "VmRSS")
            assert peak <= peak_budget, f"the face child peaked at {peak:.0f} MB on a {image.shape} photo"
            assert left <= ready + LEFT_MB, f"{left - ready:.0f} MB more resident after the photo than before it"
            # The same photo again peaks no higher: nothing of the first is still held during the second.
            again_boxes, again = worker.find_faces(image, 1, 300)
            assert _mb(worker.pid, "VmHWM") <= peak + 5
            assert again_boxes == boxes and np.array_equal(again, encodings)
            marks.append((len(boxes), peak))
        finally:
            worker.close()
    assert marks[0][0] == 0 and marks[1][0] == 24, marks  # dogs has no face dlib finds; the collage 24


def test_a_child_that_keeps_its_models_finds_the_same_faces(shared_data: Path, face_models: FaceModels):
    image = _image(shared_data / "faces/photos/knn_test__obama_and_biden.jpg")
    expected = face_models.detector.detect(image, 1)
    assert len(expected) == 3
    expected_encodings = encode_faces(face_models, image, expected)
    residents = {}
    for keep in (False, True):
        worker = FaceWorker(keep_models=keep)
        try:
            ready = _mb(worker.pid, "VmRSS")
            for _ in range(2):
                boxes, encodings = worker.find_faces(image, 1, 300)
                assert boxes == expected and np.array_equal(encodings, expected_encodings)
            residents[keep] = _mb(worker.pid, "VmRSS") - ready
        finally:
            worker.close()
    # The landmark and encoder models (34 MB) stay in the one child only.
    assert residents[True] - residents[False] >= 25, residents


def test_one_face_at_a_time_encodes_as_dlibs_batch_does(shared_data: Path, face_models: FaceModels):
    """dlib runs its network over batches of 16 face chips; 24 faces are one batch of 16 and one
    of 8 there, and 24 calls here: the same numbers to the last bit."""
    import dlib

    image = _image(shared_data / "faces/groups/bald_guys.jpg")
    boxes = face_models.detector.detect(image, 1)
    assert len(boxes) == 24
    encoder = face_models.encoder
    shapes = dlib.full_object_detections(
        [encoder.landmarks(image, dlib.rectangle(b.left, b.top, b.right, b.bottom)) for b in boxes])
    batched = np.array([list(d) for d in encoder.encoder.compute_face_descriptor(image, shapes, 1)])
    assert np.array_equal(encode_faces(face_models, image, boxes), batched)


def test_the_detector_copy_finds_what_dlibs_own_detector_finds(shared_data: Path, face_models: FaceModels):
    import dlib

    own = dlib.get_frontal_face_detector()
    for name in ("groups/2008_004176.jpg", "groups/bald_guys.jpg", "photos/two_people.jpg"):
        image = _image(shared_data / "faces" / name)
        rects = own(image, 1)
        assert face_models.detector.detect(image, 1) == [Box(r.top(), r.right(), r.bottom(), r.left())
                                                        for r in rects], name


def test_missing_model_files_stop_the_child_at_start(tmp_path: Path):
    files = (tmp_path / "landmarks.dat", tmp_path / "encoder.dat")
    with pytest.raises(FaceWorkerError, match="not installed .*landmarks.dat"):
        FaceWorker(model_files=files)


def test_a_damaged_encoder_file_fails_the_photo_with_faces_only(shared_data: Path, tmp_path: Path):
    """The encoder loads when a photo has faces: a damaged file is said then, in one line, and the
    child stays up for the next photo."""
    landmarks, encoder = face_model_files()
    shutil.copy(landmarks, tmp_path / landmarks.name)
    (tmp_path / encoder.name).write_bytes(encoder.read_bytes()[:1000])
    worker = FaceWorker(model_files=(tmp_path / landmarks.name, tmp_path / encoder.name))
    try:
        assert worker.find_faces(_image(shared_data / "faces/groups/dogs.jpg"), 1, 300)[0] == []
        face = _image(shared_data / "faces/photos/obama_small.jpg")
        pid = worker.pid
        with pytest.raises(FaceWorkerError, match="cannot load the face models: .*run ./scripts/setup again"):
            worker.find_faces(face, 1, 300)
        assert worker.pid == pid  # the same child, still up
        with pytest.raises(FaceWorkerError, match="cannot load the face models"):
            worker.find_faces(face, 1, 300)
    finally:
        worker.close()
    with pytest.raises(Exception, match="cannot load the face models"):
        FaceEncoder.load((tmp_path / landmarks.name, tmp_path / encoder.name))


@pytest.mark.parametrize("models_in_memory, keep", [("one", False), ("all", True), ("auto", True)])
def test_the_recognizer_keeps_the_encoder_unless_one_model_at_a_time(models_in_memory: str, keep: bool,
                                                                    tmp_path: Path):
    from describe_local.see.faces.gallery import Gallery
    from describe_local.see.faces.recognize import FaceRecognizer
    from describe_local.settings import Settings

    settings = Settings.load(environ={}, known_faces=tmp_path / "known_faces", models_in_memory=models_in_memory)
    recognizer = FaceRecognizer.load(Gallery.open(settings.known_faces, settings), settings)
    try:
        assert recognizer.worker is not None and recognizer.worker.keep_models is keep
    finally:
        recognizer.close()
