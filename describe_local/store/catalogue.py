"""Models describe-local knows how to fetch, and where each hub keeps their files.

Four sources: OFA and Florence-2 caption checkpoints on the Hugging Face hub (``OFA-Sys/…``, ``florence-community/…``)
and on ModelScope (``damo/ofa_image-caption_…``), Argos Translate packages
from the Argos package index, and Piper voices from the ``rhasspy/piper-voices``
repository on the Hugging Face hub. Listing a model's files is the first
network call of a pull; each file comes with whatever checksum its hub
publishes (sha256 for large files, the git blob id for small ones on the
Hugging Face hub, md5 for Piper voices), and the download is checked against it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from describe_local.errors import DownloadError, UnknownModel
from describe_local.store import formats
from describe_local.store.download import RemoteFile, fetch_json

if TYPE_CHECKING:
    from describe_local.settings import Settings

PIPER_REPO = "rhasspy/piper-voices"
MODEL_CARD = "README.md"  # fetched with a checkpoint: it states the licence
_ARGOS_NAME = re.compile(r"^argos-([a-z]{2,3})_([a-z]{2,3})$")
_VOICE_NAME = re.compile(r"^([a-z]{2,3})_([A-Z]{2})-([A-Za-z0-9_]+)-(x_low|low|medium|high)$")


@dataclass(frozen=True)
class CatalogueEntry:
    """A model that ``describe-local models pull NAME`` can fetch."""

    name: str
    kind: str  # caption, translation, voice
    hub: str  # huggingface, modelscope, argos, piper
    repo: str  # hub repository, language pair ("en_es") or voice key
    licence: str
    about: str
    files: tuple[str, ...] = formats.OFA_FILES  # a hub repository's files to fetch besides the card and weights


CAPTION_MODELS = (
    CatalogueEntry("ofa-tiny", "caption", "huggingface", "OFA-Sys/ofa-tiny", "Apache-2.0",
                   "OFA tiny, 33M parameters, 256 px (the default)"),
    CatalogueEntry("ofa-medium", "caption", "huggingface", "OFA-Sys/ofa-medium", "Apache-2.0",
                   "OFA medium, 93M parameters, 256 px"),
    CatalogueEntry("ofa-base", "caption", "huggingface", "OFA-Sys/ofa-base", "Apache-2.0",
                   "OFA base, 180M parameters, 384 px"),
    CatalogueEntry("ofa-large", "caption", "huggingface", "OFA-Sys/ofa-large", "Apache-2.0",
                   "OFA large, 470M parameters, 480 px"),
    CatalogueEntry("ofa-large-caption", "caption", "huggingface", "OFA-Sys/OFA-large-caption",
                   "Apache-2.0", "OFA large fine-tuned for COCO captions"),
    CatalogueEntry("ofa-caption-distilled-en", "caption", "modelscope",
                   "damo/ofa_image-caption_coco_distilled_en", "Apache-2.0",
                   "OFA distilled COCO caption model (ModelScope)"),
    CatalogueEntry("ofa-caption-large-en", "caption", "modelscope",
                   "damo/ofa_image-caption_coco_large_en", "Apache-2.0",
                   "OFA large COCO caption model (ModelScope)"),
    # Microsoft's Florence-2 weights (MIT) in the layout transformers' own Florence2 reads (microsoft/Florence-2-*
    # hold them for its remote code, which transformers cannot load natively); converted to ONNX after the pull.
    CatalogueEntry("florence-2-base", "caption", "huggingface", "florence-community/Florence-2-base", "MIT",
                   "Florence-2 base, 0.23B parameters, 768 px, MIT, ~0.5 GB; detailed captions",
                   formats.FLORENCE_FILES),
    CatalogueEntry("florence-2-base-ft", "caption", "huggingface", "florence-community/Florence-2-base-ft", "MIT",
                   "Florence-2 base fine-tuned (COCO 140 CIDEr), 0.23B, MIT, ~0.5 GB", formats.FLORENCE_FILES),
    CatalogueEntry("florence-2-large-ft", "caption", "huggingface", "florence-community/Florence-2-large-ft",
                   "MIT", "Florence-2 large fine-tuned, 0.77B parameters, MIT, ~1.5 GB", formats.FLORENCE_FILES),
)

# A few common pairs and voices to show in `models list`; any Argos pair
# (argos-XX_YY) and any Piper voice key can be pulled.
_ARGOS_EXAMPLES = ("en_es", "es_en", "en_fr", "fr_en", "en_de", "de_en", "en_pt", "pt_en", "en_it", "it_en")
_VOICE_EXAMPLES = (
    "es_ES-davefx-medium", "es_MX-ald-medium", "fr_FR-siwis-medium", "de_DE-thorsten-medium",
    "en_GB-alan-medium", "pt_BR-faber-medium", "it_IT-riccardo-x_low",
)


def known_models() -> list[CatalogueEntry]:
    """The built-in catalogue, as shown by ``models list``."""
    entries = list(CAPTION_MODELS)
    entries += [_argos_entry(pair) for pair in _ARGOS_EXAMPLES]
    entries += [_voice_entry(key) for key in _VOICE_EXAMPLES]
    return entries


def resolve(name: str) -> CatalogueEntry:
    """The catalogue entry for ``name``: a caption model, ``argos-XX_YY``, or a Piper voice key."""
    for entry in CAPTION_MODELS:
        if entry.name == name:
            return entry
    if _ARGOS_NAME.match(name):
        return _argos_entry(name.removeprefix("argos-"))
    if _VOICE_NAME.match(name):
        return _voice_entry(name)
    raise UnknownModel(
        f"unknown model {name!r}: pull a caption model ({', '.join(e.name for e in CAPTION_MODELS)}), "
        "a translation (argos-en_es) or a Piper voice (es_ES-davefx-medium)"
    )


def remote_files(entry: CatalogueEntry, settings: Settings, *, timeout: float) -> tuple[list[RemoteFile], str]:
    """The files to download for ``entry`` and the URL they come from (network)."""
    if entry.hub == "huggingface":
        return _huggingface_files(entry.repo, settings.hf_endpoint, timeout, entry.files)
    if entry.hub == "modelscope":
        return _modelscope_files(entry.repo, settings.modelscope_endpoint, timeout)
    if entry.hub == "argos":
        return _argos_files(entry.repo, settings.argos_index_url, timeout)
    if entry.hub == "piper":
        return _piper_files(entry.repo, settings.hf_endpoint, timeout)
    raise UnknownModel(f"{entry.name}: unknown hub {entry.hub!r}")


def _argos_entry(pair: str) -> CatalogueEntry:
    source, target = pair.split("_")
    return CatalogueEntry(f"argos-{pair}", "translation", "argos", pair, "see the package README",
                          f"Argos Translate {source} → {target}")


def _voice_entry(key: str) -> CatalogueEntry:
    language = key.split("-")[0]
    return CatalogueEntry(key, "voice", "piper", key, "see the voice's MODEL_CARD",
                          f"Piper voice ({language})")


def _huggingface_files(repo: str, endpoint: str, timeout: float,
                       extra: tuple[str, ...] = formats.OFA_FILES) -> tuple[list[RemoteFile], str]:
    base = endpoint.rstrip("/")
    listing = fetch_json(f"{base}/api/models/{repo}/tree/main?recursive=true", timeout=timeout)
    by_path = {item["path"]: item for item in _as_list(listing) if item.get("type") == "file"}
    # One weights file, the preferred format when a repo carries both (the rest of a repo,
    # e.g. TensorFlow or Flax copies, is not needed to caption).
    weights = next((w for w in formats.WEIGHT_FILES if w in by_path), None)
    if weights is None:
        raise DownloadError(f"{repo} on the Hugging Face hub has no {' or '.join(formats.WEIGHT_FILES)}")
    wanted = [p for p in (*extra, MODEL_CARD, weights) if p in by_path]
    files = [_hf_file(base, repo, by_path[p], p) for p in wanted]
    return files, f"{base}/{repo}"


def _hf_file(base: str, repo: str, item: dict[str, Any], dest: str) -> RemoteFile:
    lfs = item.get("lfs") or {}
    return RemoteFile(
        url=f"{base}/{repo}/resolve/main/{quote(item['path'])}",
        path=dest,
        size=int(item["size"]) if "size" in item else None,
        sha256=lfs.get("oid") or lfs.get("sha256"),
        git_sha1=None if lfs else item.get("oid"),
    )


def _modelscope_files(model_id: str, endpoint: str, timeout: float) -> tuple[list[RemoteFile], str]:
    base = endpoint.rstrip("/")
    listing = fetch_json(
        f"{base}/api/v1/models/{model_id}/repo/files?Revision=master&Recursive=true", timeout=timeout
    )
    try:
        items = listing["Data"]["Files"]
    except (KeyError, TypeError):
        raise DownloadError(f"ModelScope did not list the files of {model_id}") from None
    files = []
    for item in items:
        path = item.get("Path", "")
        if item.get("Type") != "blob" or not path or path.startswith("."):
            continue
        query = urlencode({"Revision": "master", "FilePath": path})
        files.append(
            RemoteFile(
                url=f"{base}/api/v1/models/{model_id}/repo?{query}",
                path=path,
                size=int(item["Size"]) if "Size" in item else None,
                sha256=item.get("Sha256") or None,
            )
        )
    if not files:
        raise DownloadError(f"ModelScope lists no files for {model_id}")
    return files, f"{base}/models/{model_id}"


def _argos_files(pair: str, index_url: str, timeout: float) -> tuple[list[RemoteFile], str]:
    source, target = pair.split("_")
    index = _as_list(fetch_json(index_url, timeout=timeout))
    matches = [
        package for package in index
        if package.get("type", "translate") == "translate"
        and package.get("from_code") == source and package.get("to_code") == target
        and package.get("links")
    ]
    if not matches:
        raise DownloadError(f"the Argos package index has no {source} → {target} translation package")
    newest = max(matches, key=lambda package: _version(package.get("package_version", "")))
    link = newest["links"][0]
    # The index publishes no checksum; the package is checked when it is imported.
    return [RemoteFile(url=link, path=f"translate-{pair}.argosmodel")], link


def _version(text: str) -> tuple[int, ...]:
    """"1.9" -> (1, 9); anything unparsable sorts first."""
    try:
        return tuple(int(part) for part in str(text).split("."))
    except ValueError:
        return ()


def _piper_files(key: str, endpoint: str, timeout: float) -> tuple[list[RemoteFile], str]:
    base = endpoint.rstrip("/")
    voices = fetch_json(f"{base}/{PIPER_REPO}/resolve/main/voices.json", timeout=timeout)
    voice = voices.get(key) if isinstance(voices, dict) else None
    if not voice:
        raise DownloadError(f"the Piper voice repository has no voice {key!r}")
    paths = dict(voice.get("files", {}))
    folder = next((p.rsplit("/", 1)[0] for p in paths if p.endswith(".onnx")), "")
    # The folder listing gives the sha256 of the large files (md5 comes from voices.json).
    tree = _as_list(fetch_json(f"{base}/api/models/{PIPER_REPO}/tree/main/{folder}", timeout=timeout))
    sha256 = {item["path"]: (item.get("lfs") or {}).get("oid") for item in tree if "path" in item}
    files = [
        RemoteFile(
            url=f"{base}/{PIPER_REPO}/resolve/main/{quote(path)}",
            path=path.rsplit("/", 1)[-1],
            size=info.get("size_bytes"),
            md5=info.get("md5_digest"),
            sha256=sha256.get(path),
        )
        for path, info in sorted(paths.items())
    ]
    return files, f"{base}/{PIPER_REPO}/tree/main/{folder}"


def _as_list(data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, list):
        raise DownloadError("the hub answered with something other than a file list")
    return [item for item in data if isinstance(item, dict)]
