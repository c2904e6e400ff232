"""Caption backend selection and the ``transformers`` image-to-text backend.

Tiny random ViT-GPT2, GIT and BLIP models are written by
scripts/make_tiny_models.py with ``save_pretrained`` (the real on-disk format),
with weights scaled so that the caption depends on the picture.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from describe_local.errors import ModelNotInstalled
from describe_local.see.caption import backends, load_captioner
from describe_local.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
import make_tiny_models  # noqa: E402

FAMILIES = ("vit-gpt2", "git", "blip")


def _pictures() -> list[Image.Image]:
    first = Image.new("RGB", (64, 48), (200, 30, 30))
    ImageDraw.Draw(first).ellipse((10, 10, 40, 40), fill=(20, 20, 220))
    second = Image.new("RGB", (48, 64), (10, 180, 60))
    ImageDraw.Draw(second).rectangle((0, 0, 24, 64), fill=(250, 250, 250))
    return [first, second]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("captioners")
    return {f: make_tiny_models.write_transformers_captioner(root / f, f, seed=5) for f in FAMILIES}


def test_both_backends_are_registered():
    assert {"ofa", "transformers"} <= set(backends())


@pytest.mark.parametrize("family", FAMILIES)
def test_transformers_captioner(models, family):
    folder = models[family]
    greedy = load_captioner(Settings.load(caption_model=str(folder), beam=1, max_caption_tokens=6, device="cpu"))
    assert greedy.generation == {"max_new_tokens": 6, "num_beams": 1, "do_sample": False}
    captions = [greedy.caption(p) for p in _pictures()]
    assert all(isinstance(c, str) and c for c in captions), captions
    assert captions[0] != captions[1], "the picture must change the caption"
    assert captions == [greedy.caption(p) for p in _pictures()]  # deterministic
    assert greedy.caption_batch(_pictures()) == captions
    assert all(len(greedy.tokenizer(c, add_special_tokens=False).input_ids) <= 12 for c in captions)

    beam = load_captioner(Settings.load(caption_model=str(folder), beam=3, max_caption_tokens=6, device="cpu"))
    assert beam.generation["num_beams"] == 3
    assert isinstance(beam.caption(_pictures()[0]), str)


def test_unknown_folder_is_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ModelNotInstalled, match="not a caption model"):
        load_captioner(Settings.load(caption_model=str(tmp_path)))


def test_missing_model_names_the_install_command(tmp_path):
    with pytest.raises(ModelNotInstalled, match="models pull"):
        load_captioner(Settings.load(caption_model="ofa-nonexistent", models_dir=tmp_path))
