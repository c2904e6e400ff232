"""Florence-2 in the model store: catalogue rows, a pull over real HTTP from a loopback hub, then
conversion and a caption; offline, a pull fails in one line.

The loopback hub serves a random ``florence-2-tiny`` (``scripts/make_tiny_models.py``) in the
hub repository's layout under the ``florence-2-base`` entry's repository; the real repository
cannot be reached from the tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from describe_local.errors import OfflineError
from describe_local.see.caption import load_captioner
from describe_local.see.caption.florence_onnx import layout
from describe_local.see.caption.florence_onnx.backend import FlorenceCaptioner
from describe_local.see.caption.florence_onnx.convert import convert_installed
from describe_local.store import ModelStore, known_models, pull_model, resolve
from describe_local.store.manifest import Manifest
from tests.integration.test_store import _closed_port, _serve_hf_repo, _settings, hub  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import make_tiny_models  # noqa: E402

FLORENCE = ("florence-2-base", "florence-2-base-ft", "florence-2-large-ft")


def test_the_catalogue_lists_florence_with_licence_and_size():
    entries = {e.name: e for e in known_models()}
    for name in FLORENCE:
        entry = entries[name]
        assert entry.kind == "caption" and entry.hub == "huggingface" and entry.licence == "MIT"
        assert entry.repo.endswith(name.replace("florence", "Florence"))
        assert "GB" in entry.about and "MIT" in entry.about
        assert "tokenizer.json" in entry.files and "preprocessor_config.json" in entry.files
    assert resolve("ofa-tiny").files == ("config.json", "configuration.json", "vocab.json", "merges.txt")


def test_models_list_shows_the_florence_rows(tmp_path):
    done = subprocess.run([sys.executable, "-m", "describe_local", "models", "--models-dir", str(tmp_path / "m"),
                           "list"], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={k: v for k, v in os.environ.items() if not k.startswith("DESCRIBE_LOCAL_")})
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.strip().startswith("florence-2-")]
    assert [r.split()[0] for r in rows] == list(FLORENCE)
    assert all("MIT" in r and "GB" in r for r in rows)


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory) -> dict[str, bytes]:
    folder = make_tiny_models.write_florence(tmp_path_factory.mktemp("hubrepo") / "f", "florence-2-tiny")
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    files["README.md"] = b"---\nlicense: mit\n---\n# Florence-2 (random test weights)\n"
    files["modeling_florence2.py"] = b"# remote code, not fetched\n"
    return files


def test_pull_then_convert_then_caption(tmp_path, hub, tiny_files, shared_data):  # noqa: F811
    repo = resolve("florence-2-base").repo
    _serve_hf_repo(hub, repo, tiny_files, lfs={"model.safetensors"})
    settings = _settings(tmp_path, hub.url)
    model = pull_model(ModelStore.open(settings.models_dir), "florence-2-base", settings, timeout=10.0)
    fetched = {path.rsplit("/", 1)[-1] for path, _ in hub.requests if "/resolve/main/" in path}
    assert "modeling_florence2.py" not in fetched  # only what captioning needs
    assert {"model.safetensors", "tokenizer.json", "processor_config.json", "config.json"} <= fetched
    manifest = Manifest.read(model.path)
    assert manifest.licence == "MIT" and "model.safetensors" in manifest.files

    pytest.importorskip("torch")
    convert_installed(model.path, int8=True)
    recorded = Manifest.read(model.path).files
    assert f"{layout.DIR}/decoder_step.onnx.data" in recorded and f"{layout.DIR}/vision.int8.onnx" in recorded
    captioner = load_captioner(_settings(tmp_path, hub.url, caption_model="florence-2-base", beam=3))
    assert isinstance(captioner, FlorenceCaptioner)
    photo = sorted((shared_data / "captions" / "images").glob("*.jpg"))[1]
    assert captioner.caption(Image.open(photo).convert("RGB")).strip()


def test_pull_offline_fails_fast(tmp_path):
    settings = _settings(tmp_path, f"http://127.0.0.1:{_closed_port()}")
    started = time.monotonic()
    with pytest.raises(OfflineError) as caught:
        pull_model(ModelStore.open(settings.models_dir), "florence-2-large-ft", settings, timeout=1.0)
    assert time.monotonic() - started < 4.0
    assert "\n" not in str(caught.value)


def test_cli_pull_offline_prints_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESCRIBE_LOCAL_")}
    env["DESCRIBE_LOCAL_HF_ENDPOINT"] = f"http://127.0.0.1:{_closed_port()}"
    done = subprocess.run([sys.executable, "-m", "describe_local", "models", "--models-dir", str(tmp_path / "m"),
                           "pull", "florence-2-base", "--timeout", "2"], capture_output=True, text=True, env=env,
                          timeout=60, cwd=ROOT)
    assert done.returncode == OfflineError.exit_code
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("describe-local: error: cannot reach 127.0.0.1"), done.stderr


def test_models_import_converts_a_florence_folder_and_convert_refuses_fp16(tmp_path, shared_data):
    """`models import` of a Florence-2 folder converts it at once (torch is here, as in the test
    environment), and the folder then captions on ONNX Runtime."""
    source = make_tiny_models.write_florence(tmp_path / "florence-2-tiny", "florence-2-tiny")
    models = tmp_path / "models"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESCRIBE_LOCAL_")}
    done = subprocess.run([sys.executable, "-m", "describe_local", "models", "--models-dir", str(models),
                           "import", str(source)], capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    installed = models / "florence-2-tiny"
    assert (installed / layout.DIR / "manifest.json").is_file(), done.stdout + done.stderr
    assert "ONNX graphs written" in done.stdout
    refused = subprocess.run([sys.executable, "-m", "describe_local", "models", "--models-dir", str(models),
                              "convert", "florence-2-tiny", "--fp16"], capture_output=True, text=True, timeout=120,
                             cwd=ROOT, env=env)
    assert refused.returncode != 0 and "--fp16 is for OFA models" in refused.stderr
    assert "Traceback" not in refused.stderr
