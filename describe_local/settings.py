"""All settings in one place.

Precedence, lowest first: the defaults below, the config file
(``describe-local.toml`` in the project root, or the file named by
``DESCRIBE_LOCAL_CONFIG``), environment variables ``DESCRIBE_LOCAL_<FIELD>``
(for example ``DESCRIBE_LOCAL_KNOWN_FACES=/srv/faces``), then command-line
options, which callers pass to :meth:`Settings.load` as overrides.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from describe_local.errors import ConfigError

ENV_PREFIX = "DESCRIBE_LOCAL_"
CONFIG_FILE_NAME = "describe-local.toml"


def project_root() -> Path:
    """The checkout this package runs from, else the current directory.

    Models and the gallery live beside the code in a checkout, never in the
    user's home folder.
    """
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").is_file():
        return here
    return Path.cwd()


@dataclass
class Settings:
    # Where things live.
    models_dir: Path = field(default_factory=lambda: project_root() / "models")
    known_faces: Path = field(default_factory=lambda: project_root() / "known_faces")
    output_dir: Path = field(default_factory=lambda: Path.cwd() / "out")

    # Caption stage.
    caption_model: str = "ofa-tiny"
    beam: int = 5
    max_caption_tokens: int = 16  # as OFA evaluates captions
    device: str = "auto"  # "auto", "cpu", "cuda"
    torch_threads: int = 0  # 0: let torch decide

    # Faces stage.
    face_tolerance: float = 0.55
    face_max_side: int = 1600
    face_upsample: int = 1
    # dlib's face encoder holds the GIL (scripts/measure_overlap.py): run the
    # faces stage in a child process so that caption and text keep running.
    face_subprocess: bool = True

    # Text stage.
    ocr_languages: str = "eng+spa+fra+deu+por+ita"
    ocr_min_confidence: float = 70.0
    text_language_min_confidence: float = 0.8

    # Pipeline.
    stage_timeout_s: float = 60.0
    max_image_bytes: int = 40 * 1024 * 1024
    max_image_pixels: int = 100_000_000

    # Language and speech.
    lang: str = "en"
    voice: str = ""  # empty: the default voice of the language
    length_scale: float = 1.0  # below 1 speaks faster
    # Comma-separated voice keys, each the default voice of its language
    # (e.g. "es_MX-ald-medium,en_GB-alan-medium"); otherwise the best installed one.
    default_voices: str = ""
    translation_beam: int = 4  # beam size of Argos translation (argostranslate's own default); 1 is faster
    # CTranslate2 threads. A description is a handful of short sentences: on 2 cores one
    # thread took 88 ms where two took 286 ms (scripts/bench_translate.py --threads).
    translation_threads: int = 1

    # Model store downloads (`describe-local models pull`).
    hf_endpoint: str = "https://huggingface.co"
    modelscope_endpoint: str = "https://modelscope.cn"
    argos_index_url: str = (
        "https://raw.githubusercontent.com/argosopentech/argospm-index/main/index.json"
    )
    download_timeout_s: float = 20.0

    # Web server.
    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_bytes: int = 20 * 1024 * 1024
    max_queue: int = 4
    request_timeout_s: float = 120.0
    audio_ttl_s: int = 600
    require_token_for_describe: bool = False
    keep_uploads: bool = False
    state_dir: Path = field(default_factory=lambda: project_root() / "state")

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
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
        hints = typing.get_type_hints(cls)
        return cls(**{k: _coerce(k, v, hints[k]) for k, v in values.items()})

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
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    # Accept both a flat file and one with a [describe-local] table.
    return dict(data.get("describe-local", data))


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Turn a config or environment value into the field's type, or say what is wrong."""
    if isinstance(hint, types.UnionType):  # e.g. Path | None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    try:
        if hint is Path:
            return Path(value).expanduser()
        if hint is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError(value)
        if hint in (int, float, str):
            return hint(value)
    except (TypeError, ValueError):
        pass
    else:
        return value
    raise ConfigError(f"setting {name!r}: {value!r} is not a valid {getattr(hint, '__name__', hint)}")
