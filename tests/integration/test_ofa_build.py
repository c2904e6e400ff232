"""Converting OFA without torch: the checkpoint read as NumPy, the graphs written from it, on tiny random models.

The default variant's graphs are checked word for word against the torch
engine in ``test_ofa_onnx.py`` (its folder is converted by ``models convert``,
which now writes them this way). Here: the reader against ``torch.load``, a
``models import`` in a process where torch cannot be imported, the graphs'
signatures against the torch exporter's, and the config variants the released
checkpoints use (post-norm, no NormFormer, shared biases...) against the engine.
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

from describe_local.see.caption.ofa import OFA, SearchOptions, TaskSettings
from describe_local.see.caption.ofa.config import OFAConfig
from describe_local.see.caption.ofa.generate import teacher_forced_logits
from describe_local.see.caption.ofa.positions import image_position_ids, patch_buckets, token_buckets
from describe_local.see.caption.ofa_onnx import search, source
from describe_local.see.caption.ofa_onnx.convert import convert
from describe_local.see.caption.ofa_onnx.runtime import OnnxOFA, _CachedDecoder
from describe_local.store import formats, torch_checkpoint

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import make_tiny_models  # noqa: E402

TOLERANCE = 1e-4
LEAN_VENV = os.environ.get("DESCRIBE_LOCAL_LEAN_VENV", "")
WITHOUT_TORCH = "import sys\nfor _name in ('torch', 'transformers'):\n    sys.modules[_name] = None\n"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return make_tiny_models.write_ofa(tmp_path_factory.mktemp("build") / "ofa-tiny", "ofa-tiny", seed=3, scale=3.0)


@pytest.fixture(scope="module")
def photos(shared_data) -> list[Image.Image]:
    paths = sorted((shared_data / "captions" / "images").glob("*.jpg"))
    return [Image.open(p).convert("RGB") for p in paths[::4][:12]]


def test_reader_gives_torch_loads_tensors_bit_for_bit(checkpoint):
    ours = torch_checkpoint.load(checkpoint / "pytorch_model.bin")
    theirs = torch.load(checkpoint / "pytorch_model.bin", map_location="cpu", weights_only=True)
    assert list(ours) == list(theirs) and len(ours) > 500
    for name, tensor in theirs.items():
        assert ours[name].dtype == tensor.numpy().dtype and ours[name].shape == tuple(tensor.shape), name
        assert ours[name].tobytes() == tensor.numpy().tobytes(), name


def test_models_import_converts_where_torch_cannot_be_imported(checkpoint, photos, tmp_path):
    """`models import` in a process without torch writes the graphs; they caption as the torch engine does."""
    store = tmp_path / "models"
    code = WITHOUT_TORCH + textwrap.dedent(f"""
        from describe_local.cli import main
        rc = main(["models", "--models-dir", {str(store)!r}, "import", {str(checkpoint)!r}])
        print("TORCH", sys.modules.get("torch") is not None)
        sys.exit(rc)
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESCRIBE_LOCAL_")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert "ofa-tiny: ONNX graphs written" in done.stdout and "TORCH False" in done.stdout, done.stdout
    assert "warning" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    _assert_captions_as_the_engines(checkpoint, store / "ofa-tiny", photos)


@pytest.mark.skipif(not LEAN_VENV, reason="DESCRIBE_LOCAL_LEAN_VENV names no venv made by scripts/setup "
                    "(scripts/test makes one; so does scripts/measure_setup.py --keep DIR)")
def test_models_import_in_the_lean_venv_captions_as_the_torch_engine(checkpoint, photos, tmp_path):
    """The real thing: the venv scripts/setup makes, which has no torch at all, converts on `models import`."""
    bin_dir = Path(LEAN_VENV) / "bin"
    no_torch = subprocess.run([str(bin_dir / "python"), "-c", "import torch"], capture_output=True, text=True)
    assert no_torch.returncode != 0 and "ModuleNotFoundError" in no_torch.stderr
    store = tmp_path / "models"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESCRIBE_LOCAL_")}
    done = subprocess.run([str(bin_dir / "describe-local"), "models", "--models-dir", str(store), "import",
                           str(checkpoint)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert done.returncode == 0 and "ofa-tiny: ONNX graphs written" in done.stdout, done.stdout + done.stderr
    _assert_captions_as_the_engines(checkpoint, store / "ofa-tiny", photos)


def _assert_captions_as_the_engines(checkpoint: Path, imported: Path, photos: list[Image.Image]) -> None:
    """Greedy and beam-5 tokens of the imported folder's graphs equal the torch engine's on the checkpoint."""
    assert formats.ofa_onnx_precisions(imported) == ["fp32"]
    engine, graphs = OFA.load(checkpoint, device="cpu"), OnnxOFA.load(imported, device="cpu", threads=2)
    prompt = engine.task.prompt
    assert graphs.prompt == prompt and graphs.manifest["resolution"] == engine.task.resolution
    for options in (SearchOptions.plain_greedy(16), SearchOptions(beam=5, max_tokens=16)):
        ours = [engine.generate_ids([p], [prompt], options)[0] for p in photos]
        onnx = [graphs.generate_ids([p], [prompt], search.SearchOptions(**options.__dict__))[0] for p in photos]
        assert onnx == ours, options
        assert len({tuple(ids) for ids in ours}) > len(photos) // 2, "captions must vary per photo"


def _signature(path: Path) -> dict:
    import onnx

    model = onnx.load(str(path), load_external_data=False)

    def dims(value) -> list:
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    return {"inputs": [(v.name, v.type.tensor_type.elem_type, dims(v)) for v in model.graph.input],
            "outputs": [(v.name, v.type.tensor_type.elem_type, dims(v)) for v in model.graph.output]}


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_graph_signatures_equal_the_torch_exporters(checkpoint, tmp_path, precision):
    from describe_local.see.caption.ofa_onnx.build import build_graphs
    from describe_local.see.caption.ofa_onnx.export import export_graphs

    dtype = torch.float16 if precision == "fp16" else torch.float32
    exported = export_graphs(OFA.load(checkpoint, device="cpu", dtype=dtype).model, 256, tmp_path / "torch")
    (tmp_path / "numpy").mkdir()
    config = OFAConfig.load(checkpoint)
    built = build_graphs(source.Weights(checkpoint, config), 256, tmp_path / "numpy", precision)
    for name in ("encoder", "decoder_step"):
        theirs, ours = _signature(exported[name]), _signature(built[name])
        for part in ("inputs", "outputs"):
            assert [(n, t, len(dims)) for n, t, dims in ours[part]] == \
                   [(n, t, len(dims)) for n, t, dims in theirs[part]], (name, part)
            for (value, _, dims), (_, _, expected) in zip(ours[part], theirs[part], strict=True):
                # where the exporter could not tie a size to an input axis it names it after the op
                # ("Concatself_bias_dim_1": the heads); the builder writes the number
                assert all(d == e or (isinstance(e, str) and "_dim_" in e and isinstance(d, int))
                           for d, e in zip(dims, expected, strict=True)), (name, value, dims, expected)


def test_task_settings_and_tables_equal_the_engines(tmp_path):
    config = OFAConfig()
    for name, task_file in (("ofa-tiny", None), ("ofa-large-caption", None), ("damo", {"model": {
            "patch_image_size": 384, "prompt": " what?", "beam_search": {"beam_size": 3, "max_len_b": 9}}}),
            ("broken", "not json")):
        folder = tmp_path / name
        folder.mkdir()
        if task_file is not None:
            text = task_file if isinstance(task_file, str) else json.dumps(task_file)
            (folder / "configuration.json").write_text(text, encoding="utf-8")
        ours, theirs = source.Task.read(folder, config), TaskSettings.read(folder, config)
        assert (ours.resolution, ours.prompt, ours.search) == (theirs.resolution, theirs.prompt, theirs.search), name
    for size in (16, 256):
        assert np.array_equal(source.token_buckets(size), token_buckets(size).numpy()), size
    assert np.array_equal(source.patch_buckets(16, 12, 42), patch_buckets(16, 12, 42).numpy())
    assert np.array_equal(source.image_position_ids(16, 12, 42), image_position_ids(16, 12, 42).numpy())


VARIANTS = {
    "post-norm-relu-no-normformer": dict(encoder_normalize_before=False, decoder_normalize_before=False,
                                         normformer=False, activation_function="relu"),
    "shared-bias-own-output-gamma": dict(share_attn_bias=True, share_decoder_input_output_embed=False,
                                         use_gamma_feature=True, scale_embedding=True,
                                         activation_function="gelu_new", add_type_embedding=False,
                                         layernorm_embedding=False, patch_layernorm_embedding=False),
}


def _variant(folder: Path, overrides: dict, save_as: str) -> Path:
    """A tiny random OFA of ``overrides``, saved as safetensors (in bfloat16) or in torch's legacy format."""
    folder.mkdir(parents=True)
    config = make_tiny_models.ofa_config("ofa-tiny", make_tiny_models.write_tokenizer(folder), **overrides)
    state = make_tiny_models.ofa_state_dict(config)
    if not config["share_decoder_input_output_embed"]:
        state["decoder.output_projection.weight"] = torch.zeros_like(state["encoder.embed_tokens.weight"])
    make_tiny_models.randomize(state, seed=5, scale=3.0)
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    if save_as == "safetensors":
        from safetensors.torch import save_file

        state = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in state.items()}
        save_file({k: v.contiguous().clone() for k, v in state.items()}, folder / "model.safetensors")
    else:
        torch.save(state, folder / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    return folder


@pytest.mark.parametrize("variant, save_as", [("post-norm-relu-no-normformer", "legacy"),
                                              ("shared-bias-own-output-gamma", "safetensors")])
def test_config_variants_equal_the_engine(variant, save_as, photos, tmp_path):
    folder = _variant(tmp_path / "ofa-variant", VARIANTS[variant], save_as)
    convert(folder)
    engine, graphs = OFA.load(folder, device="cpu"), OnnxOFA.load(folder, device="cpu", threads=2)
    prompt = [engine.task.prompt]
    tokens = torch.tensor([[0, 1599, 2895, 1449, 234, 876, 542, 2]]) % engine.model.config.vocab_size
    expected = teacher_forced_logits(engine.model, engine.encode(photos[:1], prompt), tokens)[0].numpy()
    decoder = _CachedDecoder(graphs, graphs.encode(photos[:1], prompt, tokens.shape[1]))
    got = np.stack([decoder.step(tokens[:, t].numpy(), t)[0] for t in range(tokens.shape[1])])
    assert np.abs(got - expected).max() < TOLERANCE * max(1.0, float(np.abs(expected).max()))
    options = SearchOptions(beam=5, max_tokens=12)
    assert ([graphs.generate_ids([p], prompt, search.SearchOptions(**options.__dict__))[0] for p in photos[:4]]
            == [engine.generate_ids([p], prompt, options)[0] for p in photos[:4]])


def test_a_damaged_checkpoint_is_one_line_and_leaves_no_graphs(checkpoint, tmp_path):
    folder = tmp_path / "ofa-damaged"
    folder.mkdir()
    for name in ("config.json", "vocab.json", "merges.txt"):
        (folder / name).write_bytes((checkpoint / name).read_bytes())
    data = (checkpoint / "pytorch_model.bin").read_bytes()
    (folder / "pytorch_model.bin").write_bytes(data[: len(data) // 2])
    code = WITHOUT_TORCH + f"from describe_local.cli import main\nsys.exit(main(['convert', {str(folder)!r}]))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 4, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "truncated" in lines[0] and "pytorch_model.bin" in lines[0], done.stderr
    assert not (folder / formats.OFA_ONNX_DIR).exists() and not (folder / formats.OFA_ONNX_PARTIAL).exists()


def test_without_onnx_converting_says_what_to_install(checkpoint):
    code = ("import sys\nsys.modules['onnx'] = None\nfrom describe_local.cli import main\n"
            f"sys.exit(main(['convert', {str(checkpoint)!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 4 and len(lines) == 1, done.stderr
    assert "needs the onnx package" in lines[0] and "pip install" in lines[0], lines[0]
    assert not (checkpoint / formats.OFA_ONNX_DIR).exists()
