"""Florence-2 on ONNX Runtime against ``transformers``' own Florence-2, on a random checkpoint.

The checkpoint is ``florence-2-tiny`` from ``scripts/make_tiny_models.py``: the
real architecture, vocabulary and on-disk format (``model.safetensors``, BART
tokenizer files, ``Florence2Processor`` files) at small widths, so that ten
COCO photos run through torch greedy and beam 3 in CI time on 2 cores. (The
base-sized checkpoint is compared in ``scripts/bench_florence.py``.) Random
weights make every token a near-random choice among 51k, so equal token ids
photo after photo are a strong check of the graphs and of the search rules.
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
from PIL import Image

from describe_local.see.caption import load_captioner
from describe_local.see.caption.florence_onnx import layout
from describe_local.see.caption.florence_onnx.backend import FlorenceCaptioner
from describe_local.see.caption.florence_onnx.convert import convert
from describe_local.see.caption.florence_onnx.runtime import OnnxFlorence, pixel_array

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import make_tiny_models  # noqa: E402

PHOTOS = 10
NEW_TOKENS = 20


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = make_tiny_models.write_florence(tmp_path_factory.mktemp("florence") / "florence-2-tiny",
                                             "florence-2-tiny")
    convert(folder, int8=True)
    return folder


@pytest.fixture(scope="module")
def photos(shared_data) -> list[Image.Image]:
    paths = sorted((shared_data / "captions" / "images").glob("*.jpg"))[:PHOTOS]
    return [Image.open(p).convert("RGB") for p in paths]


@pytest.fixture(scope="module")
def reference(folder):
    torch.set_num_threads(2)
    model = transformers.AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True).eval()
    processor = transformers.AutoProcessor.from_pretrained(folder, local_files_only=True)
    return model, processor


@pytest.fixture(scope="module")
def engine(folder) -> OnnxFlorence:
    return OnnxFlorence.load(folder, threads=2)


def reference_tokens(reference, photos, beams: int) -> list[list[int]]:
    model, processor = reference
    inputs = processor(text=["<CAPTION>"] * len(photos), images=photos, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=NEW_TOKENS, num_beams=beams, do_sample=False)
    return out.tolist()


def same(theirs: list[int], ours: list[int], pad: int = 1) -> bool:
    """Our sequence (start to </s>) is theirs, which is padded to the batch's longest."""
    return theirs[: len(ours)] == ours and all(t == pad for t in theirs[len(ours) :])


def test_inputs_are_the_processors(engine, reference, photos):
    _, processor = reference
    inputs = processor(text=["<CAPTION>"] * 3, images=photos[:3], return_tensors="pt")
    assert np.array_equal(pixel_array(photos[:3], engine.manifest), inputs["pixel_values"].numpy())
    ids = inputs["input_ids"][0].tolist()
    image_tokens = engine.manifest["image_tokens"]
    assert ids[image_tokens:] == engine.prompt_ids("<CAPTION>")
    assert set(ids[:image_tokens]) == {processor.tokenizer.image_token_id}


@pytest.mark.slow
@pytest.mark.parametrize("beams", [1, 3], ids=["greedy", "beam3"])
def test_tokens_equal_transformers(engine, reference, photos, beams):
    theirs = reference_tokens(reference, photos, beams)
    ours = engine.generate(photos, "<CAPTION>", engine.rules(beams, NEW_TOKENS))
    different = [i for i, (t, o) in enumerate(zip(theirs, ours, strict=True)) if not same(t, o.tokens)]
    assert not different, [(theirs[i], ours[i].tokens) for i in different]
    # the photos give different captions, and some end before the length limit (</s> chosen, not forced)
    assert len({tuple(o.tokens) for o in ours}) >= PHOTOS - 1
    assert any(len(o.tokens) < NEW_TOKENS + 1 for o in ours)
    # one photo at a time gives the same as the batch
    alone = engine.generate(photos[:1], "<CAPTION>", engine.rules(beams, NEW_TOKENS))[0]
    assert alone.tokens == ours[0].tokens


def test_text_is_the_processors_decoding(engine, reference, photos):
    _, processor = reference
    results = engine.generate(photos[:4], "<CAPTION>", engine.rules(1, NEW_TOKENS))
    for result in results:
        theirs = processor.batch_decode([result.tokens], skip_special_tokens=True)[0]
        assert engine.text(result) == " ".join(theirs.split())
    assert sum(bool(engine.text(r)) for r in results) >= 3


def test_int8_graphs_caption(folder, photos):
    int8 = OnnxFlorence.load(folder, threads=2, precision="int8")
    fp32 = OnnxFlorence.load(folder, threads=2)
    assert int8.precision == "int8"
    results = int8.generate(photos[:3], "<CAPTION>", int8.rules(1, NEW_TOKENS))
    assert all(r.tokens[0] == 2 and r.tokens[-1] == 2 and len(r.tokens) > 2 for r in results)
    sizes = {p: sum((folder / layout.graph_file(g, p)).with_name(
        Path(layout.graph_file(g, p)).name + ".data").stat().st_size for g in layout.GRAPHS) for p in ("fp32", "int8")}
    assert sizes["int8"] < 0.5 * sizes["fp32"], sizes
    assert fp32.precision == "fp32"


def test_the_registry_picks_onnx_for_a_converted_folder(folder, make_settings, tmp_path, photos):
    settings = make_settings(tmp_path, caption_model=str(folder), beam=3)
    captioner = load_captioner(settings)
    assert isinstance(captioner, FlorenceCaptioner)
    assert captioner.rules.beams == 3
    assert captioner.caption(photos[0]).strip()
    assert not hasattr(captioner, "answer")  # Florence-2 has no question task: `ask` says so


def test_captioning_imports_neither_torch_nor_transformers(folder, shared_data):
    photo = sorted((shared_data / "captions" / "images").glob("*.jpg"))[0]
    code = textwrap.dedent(f"""
        import json, sys
        for name in ("torch", "transformers"):
            sys.modules[name] = None  # as on a machine without them
        from PIL import Image
        from describe_local.see.caption.florence_onnx.runtime import OnnxFlorence
        engine = OnnxFlorence.load({str(folder)!r}, threads=1)
        result = engine.generate([Image.open({str(photo)!r})], "<CAPTION>", engine.rules(3, 12))[0]
        print(json.dumps(result.tokens))
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESCRIBE_LOCAL_")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    tokens = json.loads(done.stdout.splitlines()[-1])
    assert tokens[0] == 2 and tokens[-1] == 2


def test_a_folder_without_graphs_says_how_to_convert(tmp_path):
    from describe_local.errors import ModelNotInstalled

    with pytest.raises(ModelNotInstalled, match="models convert"):
        OnnxFlorence.load(tmp_path)


@pytest.mark.slow
def test_detailed_uses_the_models_own_task(engine, reference, photos):
    model, processor = reference
    inputs = processor(text=["<MORE_DETAILED_CAPTION>"] * 3, images=photos[:3], return_tensors="pt")
    assert inputs["input_ids"][0].tolist()[engine.manifest["image_tokens"]:] == \
        engine.prompt_ids("<MORE_DETAILED_CAPTION>")
    with torch.inference_mode():
        theirs = model.generate(**inputs, max_new_tokens=30, num_beams=1, do_sample=False).tolist()
    ours = engine.generate(photos[:3], "<MORE_DETAILED_CAPTION>", engine.rules(1, 30))
    assert all(same(t, o.tokens) for t, o in zip(theirs, ours, strict=True))


def test_detailed_captions_are_cut_to_the_words(folder, make_settings, tmp_path, photos):
    settings = make_settings(tmp_path, caption_model=str(folder), beam=1, caption_detail="detailed",
                             caption_max_words=6, hedge_below=-100.0)
    captioner = load_captioner(settings)
    assert captioner.task == "<MORE_DETAILED_CAPTION>" and captioner.rules.max_length > 6
    for text in captioner.caption_batch(photos[:4]):
        assert len(text.split()) <= 6, text


def test_mean_logprob_is_the_models_own_score(engine, reference, photos):
    model, processor = reference
    inputs = processor(text=["<CAPTION>"], images=photos[1:2], return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=NEW_TOKENS, num_beams=1, do_sample=False,
                             output_logits=True, return_dict_in_generate=True)
    tokens = out.sequences[0].tolist()
    steps = [torch.log_softmax(logits[0].float(), -1)[token].item()
             for logits, token in zip(out.logits, tokens[1:], strict=False)]
    end = tokens.index(2, 1) if 2 in tokens[1:] else len(tokens) - 1
    expected = float(np.mean(steps[1:end]))  # after <s>, up to and with </s>
    ours = engine.generate(photos[1:2], "<CAPTION>", engine.rules(1, NEW_TOKENS))[0]
    assert ours.mean_logprob == pytest.approx(expected, abs=1e-3)


def test_an_unsure_caption_is_hedged(folder, make_settings, tmp_path, photos):
    sure = load_captioner(make_settings(tmp_path, caption_model=str(folder), beam=1, hedge_below=-100.0))
    unsure = load_captioner(make_settings(tmp_path, caption_model=str(folder), beam=1, hedge_below=0.0))
    stated, hedged = sure.caption(photos[1]), unsure.caption(photos[1])
    assert stated and not stated.startswith("it might be")
    assert hedged.startswith("it might be ") and hedged.endswith(stated[1:])


def test_the_hedge_measuring_script_suggests_a_threshold(folder, capsys):
    import measure_hedge

    assert measure_hedge.main([str(folder), "--photos", "4", "--beam", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    scores = [r["score"] for r in report["rows"]]
    assert len(scores) == 4 and min(scores) <= report["summary"]["suggested_hedge_below"] <= max(scores)
    assert all(0.0 <= r["f1"] <= 1.0 for r in report["rows"])
    assert measure_hedge.unigram_f1("a dog on a couch", ["A dog sleeps on the couch."]) == pytest.approx(
        2 * (4 / 5) * (4 / 6) / (4 / 5 + 4 / 6))


@pytest.mark.parametrize("detail", ["short", "detailed"])
def test_both_backends_say_the_same(folder, make_settings, tmp_path, photos, detail):
    """The torch backend (transformers_backend) and the ONNX one give the same words, detailed ones cut alike."""
    from describe_local.see.caption.transformers_backend import TransformersCaptioner

    settings = make_settings(tmp_path, caption_model=str(folder), beam=3, caption_detail=detail,
                             caption_max_words=8, hedge_below=-100.0, device="cpu")
    on_torch = TransformersCaptioner.load(folder, settings)
    assert on_torch.prompt == ("<MORE_DETAILED_CAPTION>" if detail == "detailed" else "<CAPTION>")
    on_onnx = FlorenceCaptioner.load(folder, settings)
    on_onnx.rules = on_onnx.engine.rules(3, on_torch.generation["max_new_tokens"])  # the same length limit
    assert on_torch.caption_batch(photos[:3]) == on_onnx.caption_batch(photos[:3])


def test_the_decoder_step_takes_each_layers_cross_keys_as_they_are(folder):
    """The cross keys and values go in one input a layer, used as they are: one stacked input indexed
    inside the graph became a Split that copied all of them at every step (at base size, 36 ms a step)."""
    import onnx

    layers = json.loads((folder / "config.json").read_text(encoding="utf-8"))["text_config"]["decoder_layers"]
    graph = onnx.load(str(folder / layout.graph_file("decoder_step")), load_external_data=False).graph
    cross = {i.name for i in graph.input if i.name.startswith(("cross_keys", "cross_values"))}
    assert cross == {f"cross_{kind}_{i}" for kind in ("keys", "values") for i in range(layers)}
    copying = ("Gather", "Split", "Slice", "Concat")
    copies = [n.name for n in graph.node if n.op_type in copying and cross & set(n.input)]
    assert not copies, copies


def test_the_vision_graph_has_fixed_shapes(folder, engine, photos):
    """fp32: one photo a run, every shape fixed: the tracer's shape arithmetic folds away when the graph
    loads (at base size a vision run took about half the CPU time of the batch-dynamic graph's)."""
    import onnx

    graph = onnx.load(str(folder / layout.graph_file("vision")), load_external_data=False).graph
    dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, engine.manifest["resolution"], engine.manifest["resolution"]]
    # int8, the small one, keeps the dynamic batch, which ONNX Runtime runs holding less at once
    int8 = onnx.load(str(folder / layout.graph_file("vision", "int8")), load_external_data=False).graph
    assert int8.input[0].type.tensor_type.shape.dim[0].dim_param
    # a batch still runs through it, photo by photo, with each photo's own result
    together = engine.encode(photos[:2], "<CAPTION>")["cross_keys"]
    alone = engine.encode(photos[1:2], "<CAPTION>")["cross_keys"]
    assert np.array_equal(together[:, 1:2], alone)
