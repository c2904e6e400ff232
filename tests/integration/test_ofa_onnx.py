"""The ONNX Runtime OFA backend against our PyTorch engine, on a tiny random checkpoint.

Random weights scaled by 3 (as test_ofa_engine.py) so that captions differ per
photo. Greedy and beam-5 tokens are compared on all 55 COCO photos; the other
checks use 12 of them (every fourth and ninth, sorted by name) to keep CI on 2
cores short.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from describe_local.cli import main as cli_main
from describe_local.see.caption import load_captioner, onnx_backend
from describe_local.see.caption.ofa import OFA, SearchOptions
from describe_local.see.caption.ofa.generate import _setup, teacher_forced_logits
from describe_local.see.caption.ofa.preprocess import image_tensor
from describe_local.see.caption.ofa.preprocess import question_prompt as torch_question_prompt
from describe_local.see.caption.ofa_backend import OFACaptioner
from describe_local.see.caption.ofa_onnx import search
from describe_local.see.caption.ofa_onnx.convert import verify
from describe_local.see.caption.ofa_onnx.runtime import OnnxOFA, image_array, question_prompt
from describe_local.see.caption.onnx_backend import OnnxOFACaptioner
from describe_local.settings import Settings
from describe_local.store import formats

ROOT = Path(__file__).resolve().parents[2]
import make_tiny_models  # noqa: E402

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = make_tiny_models.write_ofa(tmp_path_factory.mktemp("onnx") / "ofa-tiny", "ofa-tiny", seed=3, scale=3.0)
    assert cli_main(["models", "convert", str(folder), "--int8", "--fp16"]) == 0
    return folder


@pytest.fixture(scope="module")
def torch_engine(folder) -> OFA:
    return OFA.load(folder, device="cpu")


@pytest.fixture(scope="module")
def onnx_engine(folder) -> OnnxOFA:
    return OnnxOFA.load(folder, device="cpu", threads=2)


@pytest.fixture(scope="module")
def all_photos(shared_data) -> list[Image.Image]:
    paths = sorted((shared_data / "captions" / "images").glob("*.jpg"))
    assert len(paths) == 55
    return [Image.open(p).convert("RGB") for p in paths]


@pytest.fixture(scope="module")
def photos(all_photos) -> list[Image.Image]:
    """12 of the 55 (every fourth and ninth), for the slower checks."""
    chosen = sorted({*range(0, len(all_photos), 4), *range(0, len(all_photos), 9)})[:12]
    return [all_photos[i] for i in chosen]


def _both(options: SearchOptions) -> search.SearchOptions:
    return search.SearchOptions(**options.__dict__)


def test_layout_manifest_and_registry(folder, tmp_path):
    manifest = json.loads((folder / formats.OFA_ONNX_MANIFEST).read_text())
    assert manifest["precision"] == "fp32"
    assert formats.ofa_onnx_precisions(folder) == ["fp32", "int8", "fp16"]
    assert set(manifest["files"]) >= {formats.ofa_onnx_graph("encoder"), formats.ofa_onnx_graph("decoder_step"),
                                      formats.OFA_ONNX_EMBEDDINGS}
    assert verify(folder) == []
    # a converted folder is the ONNX backend's (that it is preferred to torch's is checked in a
    # fresh process below: here the torch backend was imported, so registered, first); others torch's
    assert onnx_backend.accepts(folder)
    plain = make_tiny_models.write_ofa(tmp_path / "plain", "ofa-tiny", seed=3, scale=3.0)
    assert not onnx_backend.accepts(plain)
    assert isinstance(load_captioner(Settings(caption_model=str(plain), device="cpu", beam=1)), OFACaptioner)


def test_verify_notices_a_changed_file(folder, tmp_path):
    import shutil

    copy = shutil.copytree(folder, tmp_path / "copy")
    with open(copy / formats.ofa_onnx_graph("decoder_step"), "ab") as handle:
        handle.write(b"\0")
    assert verify(copy) == [formats.ofa_onnx_graph("decoder_step")]


def test_preprocessing_and_prompts_equal_the_engine(photos):
    assert np.array_equal(image_array(photos[:2], 256), image_tensor(photos[:2], 256).numpy())
    for question in ("What colour is the BUS", "  is-it/raining?", ",,hello"):
        assert question_prompt(question) == torch_question_prompt(question)
    assert search.SearchOptions() == search.SearchOptions(**SearchOptions().__dict__)
    assert search.SearchOptions.plain_greedy(7).__dict__ == SearchOptions.plain_greedy(7).__dict__


def test_encoder_outputs_within_tolerance(torch_engine, onnx_engine, photos):
    # two prompts of different lengths: the shorter is padded
    prompts = [torch_engine.task.prompt, torch_question_prompt("what is on the table")]
    length = 9
    ours = torch_engine.encode(photos[:2], prompts)
    setup = _setup(torch_engine.model, ours, 2, length)
    graph = onnx_engine.encode(photos[:2], prompts, length)
    assert ours.padding is not None
    assert np.abs(graph["hidden"] - ours.hidden.numpy()).max() < TOLERANCE
    keys = torch.stack([c.cross_keys for c in setup.caches]).numpy()
    values = torch.stack([c.cross_values for c in setup.caches]).numpy()
    # The decoder's inputs derived from it (projections by weights scaled up 3x) amplify its
    # fp32 rounding with their size: within 1e-4 of their largest value (cross keys reach ~10).
    for name, expected in (("cross_keys", keys), ("cross_values", values), ("self_bias", setup.self_bias.numpy())):
        scale = max(1.0, float(np.abs(expected).max()))
        assert np.abs(graph[name] - expected).max() < TOLERANCE * scale, name
    cross = (setup.cross_bias[None] + setup.pad_bias).numpy()  # (B, H, L, S)
    finite = cross > -1e30
    assert np.array_equal(finite, graph["cross_bias"] > -1e30)
    assert np.abs(graph["cross_bias"][finite] - cross[finite]).max() < TOLERANCE * max(1.0, np.abs(cross[finite]).max())


def test_decoder_logits_within_tolerance(torch_engine, onnx_engine, photos):
    prompt = [torch_engine.task.prompt]
    tokens = torch.tensor([[0, 1599, 2895, 1449, 234, 8762, 5428, 2]])
    expected = teacher_forced_logits(torch_engine.model, torch_engine.encode(photos[:1], prompt), tokens)[0]
    from describe_local.see.caption.ofa_onnx.runtime import _CachedDecoder

    decoder = _CachedDecoder(onnx_engine, onnx_engine.encode(photos[:1], prompt, tokens.shape[1]))
    got = np.stack([decoder.step(tokens[:, t].numpy(), t)[0] for t in range(tokens.shape[1])])
    assert np.abs(got - expected.numpy()).max() < TOLERANCE


@pytest.mark.parametrize("options", [SearchOptions.plain_greedy(16), SearchOptions(beam=5, max_tokens=16)],
                         ids=["greedy", "beam5"])
def test_tokens_identical_on_photos(torch_engine, onnx_engine, all_photos, options):
    prompt = torch_engine.task.prompt
    ours = [torch_engine.generate_ids([p], [prompt], options)[0] for p in all_photos]
    onnx = [onnx_engine.generate_ids([p], [prompt], _both(options))[0] for p in all_photos]
    assert onnx == ours
    assert len({tuple(ids) for ids in ours}) > len(all_photos) // 2, "captions must vary per photo"
    # a batch: beam search drops photos whose hypotheses are all finished
    batch = all_photos[:4]
    assert onnx_engine.generate_ids(batch, [prompt] * 4, _both(options)) == ours[:4]


def test_search_rules_identical(torch_engine, onnx_engine, photos):
    prompt = [torch_engine.task.prompt]
    for options in (SearchOptions(beam=4, min_tokens=6, max_tokens=6), SearchOptions(beam=3, max_tokens=10,
                    no_repeat_ngram=2, length_penalty=0.5), SearchOptions(beam=1, max_tokens=8)):
        for photo in photos[:3]:
            assert (onnx_engine.generate_ids([photo], prompt, _both(options))
                    == torch_engine.generate_ids([photo], prompt, options)), options


def test_ask_answers_identical(folder, photos):
    settings = Settings(caption_model=str(folder), device="cpu", beam=5)
    ours = OFACaptioner.load(folder, settings)
    onnx = OnnxOFACaptioner.load(folder, settings)
    questions = ["What is in the picture?", "how many people are there", "is it raining?",
                 "why " * 1100]  # longer than the model reads: cut, with the same note
    for photo in photos[:4]:
        for question in questions:
            a, b = ours.answer(photo, question), onnx.answer(photo, question)
            assert (a.text, a.notes) == (b.text, b.notes)
            assert bool(a.notes) == question.startswith("why why")  # only the long question is cut
    assert ours.caption_batch(photos[:3]) == onnx.caption_batch(photos[:3])


def test_int8_runs_and_stays_close(folder, onnx_engine, photos):
    int8 = OnnxOFA.load(folder, device="cpu", threads=2, precision="int8")
    prompt = [onnx_engine.prompt]
    fp32 = onnx_engine.encode(photos[:1], prompt, 4)["hidden"]
    quant = int8.encode(photos[:1], prompt, 4)["hidden"]
    relative = np.linalg.norm(quant - fp32) / np.linalg.norm(fp32)
    assert relative < 0.2, relative  # random weights: only a sanity bound; agreement is in the benchmark
    assert all(len(ids) <= 16 for ids in int8.generate_ids(photos[:2], prompt * 2, search.SearchOptions()))


def test_captioning_imports_no_torch(folder, photos, tmp_path):
    photo = tmp_path / "photo.png"
    photos[0].save(photo)
    code = textwrap.dedent(f"""
        import sys
        from PIL import Image
        from describe_local.see.caption import load_captioner
        from describe_local.settings import Settings
        captioner = load_captioner(Settings(caption_model={str(folder)!r}, device="cpu"))
        text = captioner.caption(Image.open({str(photo)!r}))
        answer = captioner.answer(Image.open({str(photo)!r}), "what is this?")
        print(type(captioner).__name__, isinstance(text, str), isinstance(answer.text, str), "torch" in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.split() == ["OnnxOFACaptioner", "True", "True", "False"], result.stderr


def test_optimised_copy_gives_the_same_results(folder, onnx_engine, photos, tmp_path):
    import shutil

    cache = folder / formats.OFA_ONNX_CACHE_DIR
    assert len(list(cache.iterdir())) == 1  # written by the first load, for this machine
    again = OnnxOFA.load(folder, device="cpu", threads=2)  # from the copy, not optimised again
    prompt = [onnx_engine.prompt]
    first, second = onnx_engine.encode(photos[:1], prompt, 5), again.encode(photos[:1], prompt, 5)
    assert all(np.array_equal(first[k], second[k]) for k in first)
    options = search.SearchOptions(beam=5, max_tokens=16)
    assert again.generate_ids(photos[:3], prompt * 3, options) == onnx_engine.generate_ids(photos[:3], prompt * 3,
                                                                                          options)
    # a folder that cannot be written to goes without the copies
    readonly = shutil.copytree(folder, tmp_path / "readonly", ignore=shutil.ignore_patterns("optimized"))
    for path in [readonly / formats.OFA_ONNX_DIR, readonly]:
        path.chmod(0o555)
    try:
        engine = OnnxOFA.load(readonly, device="cpu", threads=2)
        assert engine.encode(photos[:1], prompt, 5)["hidden"].shape == first["hidden"].shape
        if os.geteuid() != 0:  # root writes into a read-only folder all the same
            assert not (readonly / formats.OFA_ONNX_CACHE_DIR).exists()
    finally:
        for path in [readonly, readonly / formats.OFA_ONNX_DIR]:
            path.chmod(0o755)


def test_fp16_graphs(folder, onnx_engine, photos):
    """The graphs for CUDA, run here by the CPU provider: fp16 throughout, close to fp32."""
    half = OnnxOFA.load(folder, device="cpu", threads=2, precision="fp16")
    prompt = [onnx_engine.prompt]
    fp32, fp16 = onnx_engine.encode(photos[:1], prompt, 4), half.encode(photos[:1], prompt, 4)
    assert fp16["hidden"].dtype == np.float16
    relative = np.linalg.norm(fp16["hidden"].astype(np.float32) - fp32["hidden"]) / np.linalg.norm(fp32["hidden"])
    assert relative < 1e-2, relative
    ids = half.generate_ids(photos[:2], prompt * 2, search.SearchOptions())
    assert all(0 < len(row) <= 16 for row in ids)


def test_cuda_provider(folder, onnx_engine, photos):
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime has no CUDA provider (onnxruntime-gpu and a GPU): CUDA is checked on GPU "
                    "machines; the fp16 graphs it runs are checked on the CPU above")
    engine = OnnxOFA.load(folder, device="cuda")
    assert engine.encoder.get_providers()[0] == "CUDAExecutionProvider" and engine.precision == "fp16"
    prompt = [onnx_engine.prompt]
    cpu = onnx_engine.encode(photos[:1], prompt, 4)["hidden"]
    gpu = engine.encode(photos[:1], prompt, 4)["hidden"].astype(np.float32)
    assert np.linalg.norm(gpu - cpu) / np.linalg.norm(cpu) < 1e-2
    options = search.SearchOptions(beam=5, max_tokens=16)
    same = sum(engine.generate_ids([p], prompt, options) == onnx_engine.generate_ids([p], prompt, options)
               for p in photos)
    assert same >= len(photos) // 2, f"fp16 on CUDA gave fp32's tokens on {same} of {len(photos)} photos"
    fp32 = OnnxOFA.load(folder, device="cuda", precision="fp32").encode(photos[:1], prompt, 4)["hidden"]
    assert np.linalg.norm(fp32 - cpu) / np.linalg.norm(cpu) < 1e-4
