"""The OFA engine on tiny random checkpoints written by scripts/make_tiny_models.py.

Equality with the reference implementation is in test_ofa_reference.py; here:
checkpoint layouts, errors, decoding rules, the caption backend, the tokenizer.
"""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from describe_local.errors import ModelNotInstalled
from describe_local.see.caption import load_captioner
from describe_local.see.caption.ofa import OFA, SearchOptions
from describe_local.see.caption.ofa.checkpoint import is_ofa_folder
from describe_local.see.caption.ofa.generate import generate, teacher_forced_logits
from describe_local.see.caption.ofa.positions import image_buckets, image_position_ids, patch_buckets, token_buckets
from describe_local.see.caption.ofa.tokenizer import OFATokenizer
from describe_local.see.caption.ofa_backend import _sentence
from describe_local.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
import make_tiny_models  # noqa: E402


def _pictures() -> list[Image.Image]:
    """Two very different pictures, made here (the shared photos may be absent)."""
    grid = torch.linspace(0, 255, 200)
    ramp = torch.stack([grid[None, :].expand(200, 200), grid[:, None].expand(200, 200),
                        255 - grid[None, :].expand(200, 200)], dim=-1)
    checker = ((torch.arange(160)[:, None] // 20 + torch.arange(240)[None, :] // 20) % 2 * 255)
    return [
        Image.fromarray(ramp.to(torch.uint8).numpy()),
        Image.fromarray(checker.to(torch.uint8).numpy()).convert("RGB"),
    ]


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    return make_tiny_models.write_ofa(tmp_path_factory.mktemp("ofa") / "ofa-tiny", "ofa-tiny", seed=3, scale=3.0)


@pytest.fixture(scope="module")
def engine(tiny_folder) -> OFA:
    return OFA.load(tiny_folder, device="cpu")


def test_folder_is_recognised(tiny_folder, tmp_path):
    assert is_ofa_folder(tiny_folder)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "blip"}))
    assert not is_ofa_folder(tmp_path)


def test_captions_are_text_and_batch_equals_single(engine):
    pictures = _pictures()
    batch = engine.caption(pictures, SearchOptions(beam=3, max_tokens=8))
    single = [engine.caption([p], SearchOptions(beam=3, max_tokens=8))[0] for p in pictures]
    assert batch == single
    assert all(isinstance(c, str) and c for c in batch)


def test_search_rules(engine):
    enc = engine.encode(_pictures(), [" what does the image describe?"] * 2)
    forced = generate(engine.model, enc, SearchOptions(beam=4, min_tokens=6, max_tokens=6))
    assert [len(ids) for ids in forced] == [6, 6]
    for ids in generate(engine.model, enc, SearchOptions(beam=4, max_tokens=12, no_repeat_ngram=2)):
        pairs = list(itertools.pairwise(ids))
        assert len(pairs) == len(set(pairs)), ids
    greedy = generate(engine.model, enc, SearchOptions.plain_greedy(5))
    assert all(len(ids) <= 5 for ids in greedy)
    assert greedy == generate(engine.model, enc, SearchOptions.plain_greedy(5))


def test_modelscope_layout_loads_the_same(tiny_folder, engine, tmp_path):
    """ModelScope folders: weights under ``model.``, safetensors, a configuration.json."""
    from safetensors.torch import save_file

    folder = tmp_path / "ofa_image-caption_distilled"
    folder.mkdir()
    for name in ("config.json", "vocab.json", "merges.txt"):
        shutil.copy(tiny_folder / name, folder / name)
    state = torch.load(tiny_folder / "pytorch_model.bin", weights_only=True)
    # safetensors keeps one copy of shared tensors, as save_pretrained does
    state = {f"model.{k}": v.contiguous() for k, v in state.items()
             if k not in ("decoder.embed_tokens.weight", "decoder.output_projection.weight")}
    save_file(state, str(folder / "model.safetensors"))
    (folder / "configuration.json").write_text(json.dumps({
        "framework": "pytorch", "task": "image-captioning",
        "model": {"type": "ofa", "patch_image_size": 256, "prompt": " what does the image describe?",
                  "beam_search": {"beam_size": 2, "max_len_b": 7, "min_len": 1, "no_repeat_ngram_size": 3}},
    }))
    other = OFA.load(folder, device="cpu")
    assert other.task.search_options().beam == 2
    assert other.task.search_options().max_tokens == 7
    assert other.task.prompt == " what does the image describe?"
    assert engine.task.prompt == " what is the description of the image?"  # a pretrained HF folder
    options = SearchOptions(beam=3, max_tokens=8)
    prompts = [other.task.prompt] * 2
    assert other.generate_ids(_pictures(), prompts, options) == engine.generate_ids(_pictures(), prompts, options)


def test_damaged_checkpoints_are_refused(tiny_folder, tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(tiny_folder, folder)
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    del state["encoder.layers.0.fc1.weight"]
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(ModelNotInstalled, match="lacks 1 weights"):
        OFA.load(folder, device="cpu")
    (folder / "pytorch_model.bin").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelNotInstalled, match="cannot read"):
        OFA.load(folder, device="cpu")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "use_ofasys": True}))
    with pytest.raises(ModelNotInstalled, match="ViT"):
        OFA.load(folder, device="cpu")


def test_caption_backend_honours_settings(tiny_folder, engine):
    settings = Settings.load(caption_model=str(tiny_folder), beam=1, max_caption_tokens=6, device="cpu")
    captioner = load_captioner(settings)
    assert captioner.name == "ofa:ofa-tiny"
    assert captioner.options == SearchOptions.plain_greedy(6)
    picture = _pictures()[0]
    expected = _sentence(engine.caption([picture], SearchOptions.plain_greedy(6))[0])
    assert captioner.caption(picture) == expected
    beam = load_captioner(Settings.load(caption_model=str(tiny_folder), device="cpu"))
    assert beam.options.beam == 5 and beam.options.no_repeat_ngram == 3
    answer = beam.answer(picture, "What colour is the car")
    assert isinstance(answer.text, str) and answer.notes == ()


def test_tokenizer_round_trip(tiny_folder):
    tokenizer = OFATokenizer.load(tiny_folder)
    text = " a man riding a bike, café <bin_17> over 3 streets!"
    ids = tokenizer.encode(text)
    assert ids[0] == tokenizer.bos_id and ids[-1] == tokenizer.eos_id
    assert tokenizer.bin_id(17) in ids
    assert tokenizer.decode(ids) == text
    assert len(tokenizer) == len(json.loads((tiny_folder / "vocab.json").read_text())) + 9192


def test_position_buckets():
    buckets = token_buckets(256)
    assert buckets.shape == (1024, 1024)
    assert buckets[5, 5] == 255  # distance 0 sits in the middle bucket
    assert buckets[6, 5] == 256 and buckets[5, 6] == 254
    assert buckets.min() >= 0 and buckets.max() <= 2 * 256 - 2
    grid = image_buckets(42)
    assert grid.shape == (42 * 42 + 1,) * 2
    assert grid[1, 1] == grid[100, 100]  # same cell, same bucket
    assert grid.max() == (2 * 42 - 1) ** 2 + 2
    ids = image_position_ids(16, 12, 42)
    assert torch.equal(patch_buckets(16, 12, 42), grid[ids][:, ids])
    assert torch.equal(token_buckets(256, 40), buckets[:40, :40])


def test_ask_prints_and_speaks_the_answer(tiny_folder, engine, tmp_path, capsys):
    from describe_local.audio import decode_audio
    from describe_local.cli import main

    photo = tmp_path / "street.png"
    _pictures()[0].save(photo)
    target = tmp_path / "answer.mp3"
    code = main(["ask", str(photo), "What colour is the car", "--caption-model", str(tiny_folder),
                 "--beam", "1", "-o", str(target)])
    assert code == 0
    printed = capsys.readouterr().out.strip()
    expected = _sentence(engine.answer(_pictures()[0], "What colour is the car", SearchOptions.plain_greedy(20)))
    assert printed == (expected or "I don't know.")
    assert target.stat().st_size > 1000
    assert len(decode_audio(target.read_bytes())[0]) > 0


def test_ask_refuses_an_empty_question(tiny_folder, tmp_path, capsys):
    from describe_local.cli import main

    photo = tmp_path / "p.png"
    _pictures()[1].save(photo)
    assert main(["ask", str(photo), "  ", "--caption-model", str(tiny_folder)]) == 1
    assert "question is empty" in capsys.readouterr().err


def test_residual_scale_checkpoints(tiny_folder, engine, tmp_path):
    """ModelScope ``use_gamma_feature`` checkpoints: per-sub-block scales are loaded and applied."""
    folder = tmp_path / "gamma"
    shutil.copytree(tiny_folder, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "use_gamma_feature": True}))
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    d = config["d_model"]
    for side, names in (("encoder", ("self_attn", "ffn")), ("decoder", ("self_attn", "cross_attn", "ffn"))):
        for i in range(config[f"{side}_layers"]):
            for name in names:
                state[f"{side}.layers.{i}.weight_{name}"] = torch.ones(d)
    torch.save(state, folder / "pytorch_model.bin")
    options = SearchOptions(beam=2, max_tokens=6)
    assert OFA.load(folder, device="cpu").caption(_pictures(), options) == engine.caption(_pictures(), options)
    for i in range(config["decoder_layers"]):
        state[f"decoder.layers.{i}.weight_cross_attn"] = torch.full((d,), 3.0)
    torch.save(state, folder / "pytorch_model.bin")
    scaled = OFA.load(folder, device="cpu")
    enc = scaled.encode(_pictures()[:1], [" what does the image describe?"])
    ref = engine.encode(_pictures()[:1], [" what does the image describe?"])
    assert not torch.allclose(teacher_forced_logits(scaled.model, enc, torch.tensor([[0, 5]])),
                              teacher_forced_logits(engine.model, ref, torch.tensor([[0, 5]])))


def test_spoken_captions_leave_out_location_tokens():
    assert _sentence(" a dog <bin_12><bin_40> on grass .<code_7>") == "a dog on grass."
    assert _sentence("<unused_5283> a cat madeupword0001 on a bed") == "a cat on a bed"


def test_device_names():
    from describe_local.errors import ConfigError
    from describe_local.see.caption.ofa import pick_device

    assert pick_device("cpu") == (torch.device("cpu"), torch.float32)
    with pytest.raises(ConfigError, match="unknown device"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        assert pick_device("auto") == (torch.device("cpu"), torch.float32)
        with pytest.raises(ConfigError, match="no usable CUDA"):
            pick_device("cuda")


def test_prompt_follows_the_model_card(tmp_path):
    from describe_local.see.caption.ofa.engine import default_prompt
    from describe_local.see.caption.ofa.preprocess import CAPTION_PROMPT, PRETRAINED_CAPTION_PROMPT

    assert default_prompt(tmp_path / "ofa-tiny", has_task_file=False) == PRETRAINED_CAPTION_PROMPT
    assert default_prompt(tmp_path / "OFA-large-caption", has_task_file=False) == CAPTION_PROMPT
    assert default_prompt(tmp_path / "ofa_image-caption_coco_distilled_en", has_task_file=True) == CAPTION_PROMPT


def test_legacy_pickle_checkpoints_load(tiny_folder, engine, tmp_path):
    """pytorch_model.bin files from before PyTorch's zip format cannot be mapped; they are read."""
    folder = tmp_path / "legacy"
    shutil.copytree(tiny_folder, folder)
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    torch.save(state, folder / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    options = SearchOptions(beam=2, max_tokens=5)
    assert OFA.load(folder, device="cpu").caption(_pictures(), options) == engine.caption(_pictures(), options)
