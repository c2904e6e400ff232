"""The model store: pull over real HTTP from a loopback hub, import, list, remove, fail fast offline.

A small HTTP server in this module plays the hubs (Hugging Face tree API and
resolve URLs, ModelScope's file API, the Argos index, the Piper voices
repository) on 127.0.0.1, with HTTP Range support, so that downloads, resume
and checksums run through the real code with no outside network.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from describe_local.cli import main as cli_main
from describe_local.errors import OfflineError
from describe_local.say.speech import bundled_voice_path
from describe_local.settings import Settings
from describe_local.store import (
    MANIFEST_NAME,
    DownloadError,
    Manifest,
    ManifestError,
    ModelStore,
    NotAModel,
    StoreError,
    import_model,
    pull_model,
    resolve,
)
from describe_local.store.download import RemoteFile, download

ROOT = Path(__file__).resolve().parents[2]


# -- a loopback hub ------------------------------------------------------------------


class Hub:
    """Files and JSON answers by URL path, and a log of the requests made."""

    def __init__(self) -> None:
        self.routes: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.stall: set[str] = set()  # paths answered with headers, then silence

    def add_json(self, path: str, data: object) -> None:
        self.routes[path] = json.dumps(data).encode()

    def add_file(self, path: str, data: bytes) -> None:
        self.routes[path] = data


def _handler(hub: Hub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            if parts.path.endswith("/repo") and "FilePath=" in parts.query:  # ModelScope downloads
                path = parts.path + "?" + unquote(parts.query)
            hub.requests.append((path, self.headers.get("Range")))
            body = hub.routes.get(path)
            if body is None:
                self.send_error(404)
                return
            if path in hub.stall:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.flush()
                time.sleep(5)
                return
            start = 0
            wanted = self.headers.get("Range")
            if wanted and wanted.startswith("bytes="):
                start = int(wanted[6:].split("-")[0])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            self.wfile.write(body[start:])

    return Handler


@pytest.fixture
def hub():
    state = Hub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def _settings(tmp_path: Path, hub_url: str = "http://127.0.0.1:9", **extra) -> Settings:
    return Settings.load(
        environ={},
        models_dir=tmp_path / "models",
        hf_endpoint=hub_url,
        modelscope_endpoint=hub_url,
        argos_index_url=f"{hub_url}/argos/index.json",
        download_timeout_s=3.0,
        **extra,
    )


# -- a tiny caption model in the released OFA folder layout ---------------------------------


def _ofa_files(seed: int = 0) -> dict[str, bytes]:
    config = {"architectures": ["OFAModel"], "model_type": "ofa", "d_model": 64, "encoder_layers": 1,
              "decoder_layers": 1, "vocab_size": 300, "resnet_type": "resnet50"}
    weights = hashlib.sha256(str(seed).encode()).digest() * 4096  # 128 KiB of stand-in bytes
    return {
        "config.json": json.dumps(config).encode(),
        "vocab.json": json.dumps({"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "a": 4}).encode(),
        "merges.txt": b"#version: 0.2\n",
        "pytorch_model.bin": weights,
    }


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _serve_hf_repo(hub: Hub, repo: str, files: dict[str, bytes], *, lfs: set[str] = frozenset()) -> None:
    tree = []
    for path, data in files.items():
        item = {"type": "file", "path": path, "size": len(data), "oid": _git_blob_id(data)}
        if path in lfs:
            item["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data)}
        tree.append(item)
        hub.add_file(f"/{repo}/resolve/main/{path}", data)
    tree.append({"type": "directory", "path": "unused", "oid": "0" * 40})
    hub.add_json(f"/api/models/{repo}/tree/main", tree)


def _write_folder(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


# -- pull -----------------------------------------------------------------------------


def test_pull_ofa_from_the_hugging_face_hub(tmp_path, hub):
    files = _ofa_files()
    _serve_hf_repo(hub, "OFA-Sys/ofa-tiny", {**files, "README.md": b"# ofa\n", "extra.bin": b"x"},
                   lfs={"pytorch_model.bin"})
    settings = _settings(tmp_path, hub.url)
    store = ModelStore.open(settings.models_dir)

    model = pull_model(store, "ofa-tiny", settings)

    assert model.kind == "caption" and model.path == settings.models_dir / "ofa-tiny"
    for name, data in files.items():
        assert (model.path / name).read_bytes() == data
    assert not (model.path / "extra.bin").exists()  # only the files a checkpoint needs
    manifest = Manifest.read(model.path)
    assert manifest.source == f"{hub.url}/OFA-Sys/ofa-tiny"
    assert manifest.licence == "Apache-2.0"
    assert manifest.files["pytorch_model.bin"] == hashlib.sha256(files["pytorch_model.bin"]).hexdigest()
    assert manifest.verify(model.path) == []
    assert not (settings.models_dir / ".downloads" / "ofa-tiny").exists()
    with pytest.raises(StoreError, match="already installed"):
        pull_model(store, "ofa-tiny", settings)


def test_pull_resumes_a_partial_download(tmp_path, hub):
    files = _ofa_files(seed=1)
    _serve_hf_repo(hub, "OFA-Sys/ofa-tiny", files, lfs={"pytorch_model.bin"})
    settings = _settings(tmp_path, hub.url)
    store = ModelStore.open(settings.models_dir)
    weights = files["pytorch_model.bin"]
    # An earlier, interrupted pull left the first 100 000 bytes.
    part = store.downloads("ofa-tiny") / "pytorch_model.bin.part"
    part.write_bytes(weights[:100_000])

    model = pull_model(store, "ofa-tiny", settings)

    assert (model.path / "pytorch_model.bin").read_bytes() == weights
    ranges = [r for path, r in hub.requests if path.endswith("/pytorch_model.bin")]
    assert ranges == ["bytes=100000-"]


def test_pull_refuses_a_file_with_the_wrong_checksum(tmp_path, hub):
    files = _ofa_files(seed=2)
    _serve_hf_repo(hub, "OFA-Sys/ofa-tiny", files, lfs={"pytorch_model.bin"})
    tampered = bytearray(files["pytorch_model.bin"])
    tampered[5000] ^= 0xFF
    hub.add_file("/OFA-Sys/ofa-tiny/resolve/main/pytorch_model.bin", bytes(tampered))
    settings = _settings(tmp_path, hub.url)
    store = ModelStore.open(settings.models_dir)

    with pytest.raises(DownloadError, match="sha256 does not match"):
        pull_model(store, "ofa-tiny", settings)
    assert store.find("ofa-tiny") is None
    assert not list((settings.models_dir / ".downloads").rglob("*.part"))


def test_small_files_are_checked_against_their_git_blob_id(tmp_path, hub):
    files = _ofa_files(seed=3)
    _serve_hf_repo(hub, "OFA-Sys/ofa-tiny", files, lfs={"pytorch_model.bin"})
    hub.add_file("/OFA-Sys/ofa-tiny/resolve/main/vocab.json", files["vocab.json"].replace(b"0", b"9"))
    settings = _settings(tmp_path, hub.url)
    with pytest.raises(DownloadError, match="vocab.json: git blob id does not match"):
        pull_model(ModelStore.open(settings.models_dir), "ofa-tiny", settings)


def test_pull_from_modelscope(tmp_path, hub):
    files = _ofa_files(seed=4)
    model_id = "damo/ofa_image-caption_coco_distilled_en"
    listing = [{"Path": p, "Type": "blob", "Size": len(d), "Sha256": hashlib.sha256(d).hexdigest()}
               for p, d in files.items()]
    hub.add_json(f"/api/v1/models/{model_id}/repo/files", {"Code": 200, "Data": {"Files": listing}})
    for path, data in files.items():
        hub.add_file(f"/api/v1/models/{model_id}/repo?Revision=master&FilePath={path}", data)
    settings = _settings(tmp_path, hub.url)

    model = pull_model(ModelStore.open(settings.models_dir), "ofa-caption-distilled-en", settings)

    assert model.kind == "caption"
    assert Manifest.read(model.path).verify(model.path) == []


def test_pull_a_piper_voice_and_an_argos_package(tmp_path, hub, tiny_argos):
    onnx = bundled_voice_path()
    voice_files = {
        "es/es_ES/joe/medium/es_ES-joe-medium.onnx": onnx.read_bytes(),
        "es/es_ES/joe/medium/es_ES-joe-medium.onnx.json": _voice_config("es_ES"),
        "es/es_ES/joe/medium/MODEL_CARD": b"# joe as es_ES (test)\nLicence: test\n",
    }
    voices = {"es_ES-joe-medium": {
        "key": "es_ES-joe-medium", "language": {"code": "es_ES"}, "quality": "medium",
        "files": {p: {"size_bytes": len(d), "md5_digest": hashlib.md5(d).hexdigest()}
                  for p, d in voice_files.items()},
    }}
    hub.add_json("/rhasspy/piper-voices/resolve/main/voices.json", voices)
    hub.add_json("/api/models/rhasspy/piper-voices/tree/main/es/es_ES/joe/medium", [
        {"type": "file", "path": p, "size": len(d), "lfs": {"oid": hashlib.sha256(d).hexdigest()}}
        for p, d in voice_files.items() if p.endswith(".onnx")
    ])
    for path, data in voice_files.items():
        hub.add_file(f"/rhasspy/piper-voices/resolve/main/{path}", data)
    hub.add_json("/argos/index.json", [
        {"from_code": "en", "to_code": "es", "type": "translate", "package_version": "1.0",
         "links": [f"{hub.url}/argos/translate-en_es-1_0.argosmodel"]},
        {"from_code": "en", "to_code": "es", "type": "translate", "package_version": "0.9",
         "links": [f"{hub.url}/argos/old.argosmodel"]},  # older: not taken
        {"from_code": "en", "to_code": "es", "type": "sbd", "package_version": "9.0",
         "links": [f"{hub.url}/argos/sbd.argosmodel"]},  # not a translation
    ])
    hub.add_file("/argos/translate-en_es-1_0.argosmodel", tiny_argos.read_bytes())
    settings = _settings(tmp_path, hub.url)
    store = ModelStore.open(settings.models_dir)

    voice = pull_model(store, "es_ES-joe-medium", settings)
    package = pull_model(store, "argos-en_es", settings)

    assert voice.kind == "voice" and voice.manifest.details["language"] == "es_ES"
    assert sorted(p.name for p in voice.path.iterdir()) == [
        "MODEL_CARD", MANIFEST_NAME, "es_ES-joe-medium.onnx", "es_ES-joe-medium.onnx.json"]
    assert voice.manifest.licence == "see MODEL_CARD"
    assert package.kind == "translation" and package.manifest.details["to"] == "es"
    assert package.manifest.source == f"{hub.url}/argos/translate-en_es-1_0.argosmodel"
    assert (package.path / "model" / "model.bin").is_file()
    with pytest.raises(DownloadError, match="no en → fr"):
        pull_model(store, "argos-en_fr", settings)


def test_unknown_names_are_refused_before_any_network():
    with pytest.raises(Exception, match="unknown model"):
        resolve("ofa-gigantic")
    assert resolve("argos-pt_en").hub == "argos"
    assert resolve("es_MX-ald-medium").kind == "voice"


# -- offline ---------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("endpoint", ["refused", "dns", "silent"])
def test_pull_fails_fast_and_clearly_offline(tmp_path, endpoint, hub):
    if endpoint == "refused":
        url = f"http://127.0.0.1:{_closed_port()}"
    elif endpoint == "dns":
        url = "http://hub.invalid"  # .invalid never resolves (RFC 2606)
    else:  # accepts the connection, sends headers, then nothing
        hub.add_json("/api/models/OFA-Sys/ofa-tiny/tree/main", [])
        hub.stall.add("/api/models/OFA-Sys/ofa-tiny/tree/main")
        url = hub.url
    settings = _settings(tmp_path, url)
    started = time.monotonic()
    with pytest.raises(OfflineError) as caught:
        pull_model(ModelStore.open(settings.models_dir), "ofa-tiny", settings, timeout=1.0)
    assert time.monotonic() - started < 4.0
    message = str(caught.value)
    assert "\n" not in message
    assert "models import" in message or "again" in message


def test_a_resolver_that_hangs_is_given_up_on(tmp_path, monkeypatch):
    """With no network a resolver can block for a long time; the lookup has the pull's deadline."""
    real = socket.getaddrinfo

    def slow(host, *args, **kwargs):
        if host == "hub.example":
            time.sleep(10)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    settings = _settings(tmp_path, "http://hub.example")
    started = time.monotonic()
    with pytest.raises(OfflineError, match="cannot resolve hub.example within 1 s"):
        pull_model(ModelStore.open(settings.models_dir), "ofa-tiny", settings, timeout=1.0)
    assert time.monotonic() - started < 2.5


def test_cli_pull_offline_prints_one_line_and_no_traceback(tmp_path):
    env = {**os.environ, "DESCRIBE_LOCAL_HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}"}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "describe_local", "models", "--models-dir", str(tmp_path / "m"),
         "pull", "ofa-tiny", "--timeout", "2"],
        capture_output=True, text=True, env=env, timeout=60, cwd=ROOT,
    )
    assert done.returncode == OfflineError.exit_code
    assert time.monotonic() - started < 15.0  # interpreter start included
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("describe-local: error: cannot reach 127.0.0.1")
    assert "Traceback" not in done.stderr


def test_download_restarts_when_the_server_ignores_range(tmp_path, hub):
    data = os.urandom(50_000)
    hub.add_file("/plain.bin", data)
    dest = tmp_path / "plain.bin"
    dest.with_name("plain.bin.part").write_bytes(b"garbage that is not the start")
    # The hub honours Range, so ask for a size that makes the .part look too long.
    remote = RemoteFile(f"{hub.url}/plain.bin", "plain.bin", size=20,
                        sha256=hashlib.sha256(data).hexdigest())
    with pytest.raises(DownloadError, match="size 50000 bytes, expected 20"):
        download(remote, dest, timeout=3)
    remote = RemoteFile(f"{hub.url}/plain.bin", "plain.bin", sha256=hashlib.sha256(data).hexdigest())
    (tmp_path / "plain.bin.part").write_bytes(data[:1000])
    download(remote, dest, timeout=3)
    assert dest.read_bytes() == data


# -- import ----------------------------------------------------------------------------


def test_import_a_caption_folder_zip_and_tarball(tmp_path):
    files = _ofa_files(seed=5)
    folder = _write_folder(tmp_path / "usb" / "ofa-tiny", files)
    store = ModelStore.open(tmp_path / "models")

    model = import_model(store, folder)
    assert model.name == "ofa-tiny" and model.kind == "caption"
    assert Manifest.read(model.path).source == f"import:{folder.resolve()}"

    archive = tmp_path / "usb" / "ofa.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in files.items():
            zf.writestr(f"ofa-tiny/{name}", data)
    assert import_model(store, archive, name="ofa-zip").kind == "caption"

    tarball = tmp_path / "usb" / "ofa.tar.gz"
    with tarfile.open(tarball, "w:gz") as tf:
        tf.add(folder, arcname="ofa-tiny")
    with pytest.raises(StoreError, match="already installed"):
        import_model(store, tarball)
    replaced = import_model(store, tarball, replace=True)
    assert (replaced.path / "pytorch_model.bin").read_bytes() == files["pytorch_model.bin"]
    assert sorted(m.name for m in store.installed()) == ["ofa-tiny", "ofa-zip"]
    assert not (store.root / ".tmp").exists()


def test_import_checks_the_manifest_that_comes_with_a_model(tmp_path):
    store = ModelStore.open(tmp_path / "models")
    other = ModelStore.open(tmp_path / "other")
    source = import_model(other, _write_folder(tmp_path / "ofa-tiny", _ofa_files(seed=6)))
    # Copied from another kiosk: its manifest travels with it and is checked.
    copy = tmp_path / "usb" / "ofa-tiny"
    copy.parent.mkdir()
    import shutil

    shutil.copytree(source.path, copy)
    assert import_model(store, copy).manifest.source == source.manifest.source
    store.remove("ofa-tiny")
    (copy / "vocab.json").write_bytes(b"{}")
    with pytest.raises(ManifestError, match="vocab.json has the wrong sha256"):
        import_model(store, copy)
    assert store.find("ofa-tiny") is None


def test_import_argosmodel_and_piper_voice_through_the_cli(tmp_path, tiny_argos, capsys):
    models = tmp_path / "models"
    assert cli_main(["models", "--models-dir", str(models), "import", str(tiny_argos)]) == 0
    voice_dir = tmp_path / "usb"
    voice_dir.mkdir()
    (voice_dir / "es_MX-joe-medium.onnx").write_bytes(bundled_voice_path().read_bytes())
    (voice_dir / "es_MX-joe-medium.onnx.json").write_bytes(_voice_config("es_MX"))
    assert cli_main(["models", "--models-dir", str(models), "import",
                     str(voice_dir / "es_MX-joe-medium.onnx")]) == 0
    capsys.readouterr()

    assert cli_main(["models", "--models-dir", str(models), "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    installed = {m["name"]: m for m in listing["installed"]}
    assert installed["argos-en_es"]["kind"] == "translation"
    assert installed["es_MX-joe-medium"]["details"]["language"] == "es_MX"
    available = {m["name"] for m in listing["available"]}
    assert "ofa-tiny" in available and "argos-en_es" not in available

    assert cli_main(["models", "--models-dir", str(models), "list"]) == 0
    text = capsys.readouterr().out
    assert "argos-en_es" in text and "en → es" in text and "voice for es_MX" in text

    assert cli_main(["models", "--models-dir", str(models), "verify"]) == 0
    assert "argos-en_es: ok (6 files)" in capsys.readouterr().out
    with (models / "argos-en_es" / "model" / "model.bin").open("ab") as fh:
        fh.write(b"\0")
    assert cli_main(["models", "--models-dir", str(models), "verify", "argos-en_es"]) == 1
    assert "model/model.bin has the wrong sha256" in capsys.readouterr().out

    assert cli_main(["models", "--models-dir", str(models), "remove", "es_MX-joe-medium"]) == 0
    assert not (models / "es_MX-joe-medium").exists()
    assert cli_main(["models", "--models-dir", str(models), "remove", "es_MX-joe-medium"]) == 4


@pytest.mark.parametrize("case", ["random folder", "voice without config", "traversal zip",
                                  "not an archive", "symlink tar", "bad name", "caption without weights"])
def test_import_refuses_what_is_not_a_usable_model(tmp_path, case):
    store = ModelStore.open(tmp_path / "models")
    path = tmp_path / "thing"
    expected: type[Exception] = NotAModel
    name = None
    if case == "random folder":
        _write_folder(path, {"notes.txt": b"hello", "config.json": b'{"model_type": "bert"}'})
    elif case == "voice without config":
        path = tmp_path / "x.onnx"
        path.write_bytes(b"\0" * 2048)
    elif case == "traversal zip":
        path = tmp_path / "evil.zip"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("../../escaped.txt", "boo")
    elif case == "not an archive":
        path = tmp_path / "model.argosmodel"
        path.write_bytes(b"not a zip")
    elif case == "symlink tar":
        path = tmp_path / "link.tar"
        with tarfile.open(path, "w") as tf:
            info = tarfile.TarInfo("model/config.json")
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tf.addfile(info)
    elif case == "caption without weights":
        _write_folder(path, {k: v for k, v in _ofa_files().items() if k != "pytorch_model.bin"})
    else:
        _write_folder(path, _ofa_files())
        name = "../escape"
        expected = StoreError
    with pytest.raises(expected):
        import_model(store, path, name=name)
    assert store.installed() == []
    assert not (tmp_path / "escaped.txt").exists()


def test_file_system_errors_are_one_line(tmp_path, capsys):
    not_a_folder = tmp_path / "models"
    not_a_folder.write_text("a file where the store should be")
    assert cli_main(["models", "--models-dir", str(not_a_folder), "list"]) == StoreError.exit_code
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "check the space and permissions of the model store" in lines[0]


def test_remove_refuses_unknown_and_unsafe_names(tmp_path):
    store = ModelStore.open(tmp_path / "models")
    with pytest.raises(Exception, match="no model called"):
        store.remove("ofa-tiny")
    with pytest.raises(StoreError):
        store.remove("..")


# -- helpers -----------------------------------------------------------------------------


def _voice_config(language: str) -> bytes:
    config = json.loads(bundled_voice_path().with_suffix(".onnx.json").read_text(encoding="utf-8"))
    config["language"]["code"] = language
    return json.dumps(config).encode()


@pytest.fixture(scope="module")
def tiny_argos(tmp_path_factory) -> Path:
    from make_tiny_argos import make_package

    return make_package(tmp_path_factory.mktemp("argos") / "translate-en_es.argosmodel")

