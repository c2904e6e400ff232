"""torch is optional at run time: describing with an OFA model converted to ONNX never imports it.

Each check runs the command line in a fresh Python process and reads its
``sys.modules`` at the end. "Without torch" is a process where ``import torch``
(and transformers) fail as on a machine without the ``torch`` extra:
their ``sys.modules`` entries are ``None`` before anything runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from describe_local.cli import main as cli_main
from describe_local.errors import TORCH_INSTALL

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import make_tiny_models  # noqa: E402

HEAVY = ("torch", "transformers")
WITHOUT_TORCH = "import sys\nfor _name in ('torch', 'transformers'):\n    sys.modules[_name] = None\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory, shared_data) -> Path:
    """A model store with a tiny OFA model converted to ONNX, and the same model unconverted."""
    root = tmp_path_factory.mktemp("no-torch")
    models = root / "models"
    models.mkdir()
    make_tiny_models.write_ofa(models / "ofa-onnx", "ofa-tiny", seed=3, scale=3.0)
    assert cli_main(["models", "--models-dir", str(models), "convert", "ofa-onnx"]) == 0
    make_tiny_models.write_ofa(models / "ofa-plain", "ofa-tiny", seed=3, scale=3.0)
    make_tiny_models.write_ofa(models / "ofa-tiny", "ofa-tiny", seed=3, scale=3.0)  # the default model, unconverted
    # A transformers captioner as the store sees one (its config and a weights file): enough to be
    # picked for the transformers backend, which must then ask for torch before reading the weights.
    blip = models / "blip-tiny"
    blip.mkdir()
    (blip / "config.json").write_text(json.dumps({"model_type": "blip"}), encoding="utf-8")
    (blip / "model.safetensors").write_bytes(b"\0" * 16)
    (root / "known_faces").mkdir()
    # a COCO photo (shrunk, to keep the stages quick) that the tiny model captions in words
    with Image.open(shared_data / "captions" / "images" / "000000000802.jpg") as photo:
        photo.convert("RGB").resize((320, 240)).save(root / "photo.png")
    return root


def run_cli(store: Path, args: list[str], *, without_torch: bool) -> tuple[int, dict, str, str]:
    """(exit code, {module: imported}, stdout, stderr) of ``describe-local ARGS`` in a fresh process."""
    code = (WITHOUT_TORCH if without_torch else "") + textwrap.dedent(f"""
        import json, sys
        from describe_local.cli import main
        try:
            rc = main({args!r})
        finally:
            seen = {{name: sys.modules.get(name) is not None for name in {HEAVY!r}}}
            print("MODULES " + json.dumps(seen), file=sys.stderr)
        sys.exit(rc)
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESCRIBE_LOCAL_")}
    env.update(DESCRIBE_LOCAL_MODELS_DIR=str(store / "models"), DESCRIBE_LOCAL_KNOWN_FACES=str(store / "known_faces"),
               DESCRIBE_LOCAL_OUTPUT_DIR=str(store / "out"), DESCRIBE_LOCAL_STATE_DIR=str(store / "state"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                            timeout=300)
    lines = result.stderr.splitlines()
    marker = [line for line in lines if line.startswith("MODULES ")]
    assert marker, result.stderr
    other = "\n".join(line for line in lines if not line.startswith("MODULES "))
    return result.returncode, json.loads(marker[-1].removeprefix("MODULES ")), result.stdout, other


def test_describing_imports_neither_torch_nor_transformers(store):
    photo = str(store / "photo.png")
    rc, modules, out, err = run_cli(store, ["describe", "--no-audio", "--json", "--caption-model", "ofa-onnx", photo],
                                    without_torch=False)
    assert rc == 0, err
    assert modules == {"torch": False, "transformers": False}
    result = json.loads(out.splitlines()[-1])
    # the caption stage ran (the random model's "caption" is image-code tokens, which are not spoken)
    assert "caption" not in result["errors"] and result["timings_ms"].get("caption", 0) > 0, result
    # with speech too (Piper), and a question
    rc, modules, _, err = run_cli(store, ["describe", "--caption-model", "ofa-onnx", "-o", str(store / "out"), photo],
                                  without_torch=False)
    assert rc == 0, err
    assert modules == {"torch": False, "transformers": False}
    assert (store / "out" / "photo.mp3").stat().st_size > 0


@pytest.mark.parametrize("args", [["describe", "--no-audio", "--json"], ["ask"]], ids=["describe", "ask"])
def test_an_onnx_model_works_where_torch_cannot_be_imported(store, args):
    photo = str(store / "photo.png")
    extra = ["what is this?"] if args == ["ask"] else []
    rc, modules, out, err = run_cli(store, [*args, "--caption-model", "ofa-onnx", photo, *extra], without_torch=True)
    assert rc == 0, err
    assert modules == {"torch": False, "transformers": False}
    if args[0] == "describe":
        result = json.loads(out.splitlines()[-1])
        assert "caption" not in result["errors"] and result["timings_ms"].get("caption", 0) > 0, result
    else:
        assert out.strip(), err


@pytest.mark.parametrize("args, what", [
    (["describe", "--no-audio", "--caption-model", "ofa-plain", "PHOTO"], "ofa-plain has no ONNX graphs"),
    (["ask", "--caption-model", "ofa-plain", "PHOTO", "what is this?"], "ofa-plain has no ONNX graphs"),
    (["describe", "--no-audio", "--caption-model", "blip-tiny", "PHOTO"], "blip-tiny needs torch and transformers"),
], ids=["ofa-without-onnx", "ask-ofa-without-onnx", "transformers-model"])
def test_torch_only_requests_say_what_to_install(store, args, what):
    args = [str(store / "photo.png") if a == "PHOTO" else a for a in args]
    rc, modules, _, err = run_cli(store, args, without_torch=True)
    assert rc == 4, err
    message = [line for line in err.splitlines() if line.strip()]
    assert len(message) == 1, err  # one line, no traceback
    assert what in message[0] and TORCH_INSTALL in message[0], message[0]
    assert modules == {"torch": False, "transformers": False}


def test_the_default_model_without_its_graphs_is_a_note_not_a_failure(store):
    rc, _, out, err = run_cli(store, ["describe", "--no-audio", str(store / "photo.png")], without_torch=True)
    assert rc == 0, err
    note = [line for line in err.splitlines() if line.startswith("note:")]
    assert note and "ofa-tiny has no ONNX graphs" in note[0] and TORCH_INSTALL in note[0], err
    assert out.strip()
