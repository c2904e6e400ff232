"""Our OFA engine, and its ONNX export, against modelscope's reference implementation, on real photos.

``scripts/reference/ofa_reference.py`` runs in ``.venv-ref`` (modelscope needs
transformers 4.x; we run transformers 5): it builds modelscope's ``OFAModel``
with seeded random weights, scaled up until different photos get different
captions, saves it in the released on-disk format, and records its outputs.
Here our engine loads that folder and must give the same numbers and tokens;
then the folder is converted to ONNX, and ONNX Runtime must give them too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from describe_local.see.caption.ofa import OFA, SearchOptions
from describe_local.see.caption.ofa.generate import generate, teacher_forced_logits
from describe_local.see.caption.ofa.preprocess import CAPTION_PROMPT, image_tensor
from describe_local.see.caption.ofa.tokenizer import OFATokenizer

ROOT = Path(__file__).resolve().parents[2]
REFERENCE_PYTHON = ROOT / ".venv-ref" / "bin" / "python"
SCRIPT = ROOT / "scripts" / "reference" / "ofa_reference.py"
PHOTOS = ROOT.parent / "shared" / "data" / "captions" / "images"
TOLERANCE = 1e-4


def _photos(count: int) -> list[Path]:
    if not PHOTOS.is_dir():
        pytest.skip(f"real photos not found at {PHOTOS} (the shared data folder is absent)")
    # spread over the set: different scenes, different sizes and aspect ratios
    photos = sorted(PHOTOS.glob("*.jpg"))
    return photos[:: max(1, len(photos) // count)][:count]


def _ensure_reference_environment() -> None:
    """Build .venv-ref when missing or out of date (quick no-op otherwise); skip offline, fail in CI."""
    done = subprocess.run([str(ROOT / "scripts" / "reference" / "setup")], capture_output=True, text=True,
                          timeout=1200, check=False)
    if done.returncode != 0 or not REFERENCE_PYTHON.exists():
        message = f"cannot build the reference environment .venv-ref: {done.stderr.strip()[-500:]}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _reference(tmp_path_factory, size: str, photos: list[Path], *extra: str) -> tuple[Path, dict]:
    _ensure_reference_environment()
    folder = tmp_path_factory.mktemp(size)
    env = {**os.environ, "TRANSFORMERS_VERBOSITY": "error", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [str(REFERENCE_PYTHON), str(SCRIPT), str(folder), *map(str, photos), "--size", size, *extra],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return folder, torch.load(folder / "reference.pt", weights_only=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    photos = _photos(4)
    folder, ref = _reference(tmp_path_factory, "ofa-tiny", photos, "--scales", "4,6")
    return folder, ref, [Image.open(p) for p in photos]


@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    photos = _photos(3)
    folder, ref = _reference(tmp_path_factory, "ofa-medium", photos, "--scales", "4,6,8")
    return folder, ref, [Image.open(p) for p in photos]


def _check_onnx(folder: Path, ref: dict, images: list[Image.Image], *, early: bool = False) -> None:
    """The folder converted to ONNX: encoder output and logits within 1e-4, the reference's tokens."""
    import numpy as np

    from describe_local.see.caption.ofa_onnx import search
    from describe_local.see.caption.ofa_onnx.convert import convert
    from describe_local.see.caption.ofa_onnx.runtime import OnnxOFA, _CachedDecoder

    convert(folder)
    onnx = OnnxOFA.load(folder, device="cpu", threads=2)
    greedy, beam = search.SearchOptions.plain_greedy(16), search.SearchOptions(beam=5)
    caption_ids = ref["caption_ids"].numpy()
    if early:
        assert onnx.generate_ids(images, caption_ids, beam) == ref["early_beam"]
        assert onnx.generate_ids(images, caption_ids, greedy) == ref["early_greedy"]
        assert onnx.generate_ids(images, ref["question_ids"].numpy(), beam) == ref["early_beam_questions"]
        return
    forced = ref["forced_tokens"].numpy()
    encoded = onnx.encode(images, caption_ids, forced.shape[1])
    assert np.abs(encoded["hidden"] - ref["encoder_out"].numpy()).max() < TOLERANCE
    decoder = _CachedDecoder(onnx, encoded)
    logits = np.stack([decoder.step(forced[:, t], t) for t in range(forced.shape[1])], axis=1)
    assert np.abs(logits - ref["forced_logits"].numpy()).max() < TOLERANCE
    assert onnx.generate_ids(images, caption_ids, greedy) == ref["greedy"]
    assert onnx.generate_ids(images, caption_ids, beam) == ref["beam"]
    question_ids = ref["question_ids"].numpy()
    hidden = onnx.encode(images, question_ids, 1)["hidden"]
    assert np.abs(hidden - ref["encoder_out_questions"].numpy()).max() < TOLERANCE
    assert onnx.generate_ids(images, question_ids, greedy) == ref["greedy_questions"]
    assert onnx.generate_ids(images, question_ids, beam) == ref["beam_questions"]


def _check_model(folder: Path, ref: dict, images: list[Image.Image]) -> None:
    # The reference's own captions differ between photos: its image path matters.
    assert len({tuple(c) for c in ref["greedy"]}) == len(images), ref["greedy"]
    assert len({tuple(c) for c in ref["beam"]}) > 1, ref["beam"]

    ofa = OFA.load(folder, device="cpu")
    assert ofa.task.resolution == ref["resolution"]
    with torch.inference_mode():
        caption_ids = ofa.prompt_ids([CAPTION_PROMPT] * len(images))
        assert caption_ids.tolist() == ref["caption_ids"].tolist()
        enc = ofa.encode(images, [CAPTION_PROMPT] * len(images))
        torch.testing.assert_close(enc.hidden, ref["encoder_out"], atol=TOLERANCE, rtol=0)

        logits = teacher_forced_logits(ofa.model, enc, ref["forced_tokens"])
        torch.testing.assert_close(logits, ref["forced_logits"], atol=TOLERANCE, rtol=0)

        assert generate(ofa.model, enc, SearchOptions.plain_greedy(16)) == ref["greedy"]
        assert generate(ofa.model, enc, SearchOptions(beam=5)) == ref["beam"]

        # Different questions per photo: padded prompts in one batch.
        question_ids = ref["question_ids"]
        pixels = image_tensor(images, ofa.task.resolution)
        enc_q = ofa.model.encode(question_ids, pixels)
        torch.testing.assert_close(enc_q.hidden, ref["encoder_out_questions"], atol=TOLERANCE, rtol=0)
        assert generate(ofa.model, enc_q, SearchOptions.plain_greedy(16)) == ref["greedy_questions"]
        assert generate(ofa.model, enc_q, SearchOptions(beam=5)) == ref["beam_questions"]


@pytest.mark.slow
def test_tiny_model_equals_reference(tiny):
    _check_model(*tiny)


@pytest.mark.slow
def test_early_endings_equal_reference(tiny):
    """Hypotheses and sentences that end at different steps (beam bookkeeping, batch pruning)."""
    folder, ref, images = tiny
    assert len({len(c) for c in ref["early_beam"]}) > 1, ref["early_beam"]
    ofa = OFA.load(folder / "early", device="cpu")
    enc = ofa.encode(images, [CAPTION_PROMPT] * len(images))
    assert generate(ofa.model, enc, SearchOptions(beam=5)) == ref["early_beam"]
    assert generate(ofa.model, enc, SearchOptions.plain_greedy(16)) == ref["early_greedy"]
    enc_q = ofa.model.encode(ref["question_ids"], image_tensor(images, ofa.task.resolution))
    assert generate(ofa.model, enc_q, SearchOptions(beam=5)) == ref["early_beam_questions"]


def test_one_image_at_a_time_equals_the_batch(tiny):
    folder, ref, images = tiny
    ofa = OFA.load(folder, device="cpu")
    for i, image in enumerate(images[:1]):
        enc = ofa.encode([image], [CAPTION_PROMPT])
        assert generate(ofa.model, enc, SearchOptions(beam=5)) == [ref["beam"][i]]


def test_tokenizer_equals_reference(tiny):
    folder, ref, _ = tiny
    tokenizer = OFATokenizer.load(folder)
    for prompt, ids in ref["bin_prompts"].items():
        assert tokenizer.encode(prompt, bos=False, eos=False) == ids, prompt
    assert any(tokenizer.bin_id(0) in ids for ids in ref["bin_prompts"].values())


@pytest.mark.slow
def test_medium_model_equals_reference(medium):
    _check_model(*medium)


@pytest.mark.slow
def test_onnx_equals_reference(tiny, medium):
    _check_onnx(*tiny)
    folder, ref, images = tiny
    _check_onnx(folder / "early", ref, images, early=True)
    _check_onnx(*medium)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
