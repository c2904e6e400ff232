"""Helpers shared by the subcommands: settings from arguments, photos from paths, output names,
text that is safe to print, progress."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from describe_local.errors import ConfigError, DescribeLocalError, OutputError
from describe_local.images import is_image_path
from describe_local.names import undecodable_escaped
from describe_local.settings import Settings

OUTPUT_NAMING_HELP = (
    "MP3s are named after the photo: x.jpg -> x.mp3; photos that share a stem keep their suffix "
    "(x.jpg.mp3, x.png.mp3) and the same name in two folders gets a number (x.jpg-2.mp3), so no MP3 "
    "of a run is written over by another; an MP3 left by an earlier run is replaced"
)


def add_gallery_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gallery",
        type=Path,
        metavar="DIR",
        help="known-faces folder, one subfolder per person (default: known_faces/; "
        "env DESCRIBE_LOCAL_KNOWN_FACES)",
    )


def add_caption_options(parser: argparse.ArgumentParser, what: str = "caption model") -> None:
    """``--caption-model`` and ``--beam``, with the settings' defaults in their help."""
    parser.add_argument(
        "--caption-model", metavar="NAME_OR_FOLDER",
        help=f"{what}: a name in models/ or a folder (default: {setting_default('caption_model')})",
    )
    parser.add_argument(
        "--beam", type=int, metavar="N",
        help=f"beam size (default {setting_default('beam')}; 1 = plain greedy search, no constraints)",
    )


def check_beam(args: argparse.Namespace) -> None:
    if args.beam is not None and args.beam < 1:
        raise DescribeLocalError("--beam must be 1 or more")


def setting_default(name: str) -> object:
    """The built-in default of a setting, for help texts (defaults are written once, in settings.py)."""
    return Settings.__dataclass_fields__[name].default


def load_settings(args: argparse.Namespace, **mapping: str) -> Settings:
    """Settings with the command-line values in ``mapping`` (setting name -> argument name) applied."""
    overrides = {setting: getattr(args, arg, None) for setting, arg in mapping.items()}
    return Settings.load(**overrides)


# -- text that is safe on a terminal and in JSON ------------------------------------------------

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Format characters that scripts need between letters (Persian, Indic, emoji sequences).
_JOINERS = {"\u200c", "\u200d"}


def shown(value: object) -> str:
    """``value`` (text, a path, an exception) as one printable line.

    Bytes that are not UTF-8 become ``\\xNN``; control and format characters
    (escape sequences, newlines, right-to-left overrides) become ``\\n``,
    ``\\x1b``, ``\\u202e``..., so that a file or folder name cannot move the
    cursor, recolour the terminal or split one message into two lines.
    """
    text = undecodable_escaped(os.fspath(value) if isinstance(value, os.PathLike) else str(value))
    out = []
    for char in text:
        if char in _NAMED:
            out.append(_NAMED[char])
        elif char not in _JOINERS and unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"}:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def json_line(record: dict[str, Any], *, ascii_only: bool | None = None) -> str:
    """``record`` as one line of JSON that is valid UTF-8 whatever the file names.

    Top-level text fields that held bytes of a non-UTF-8 name (see
    :func:`undecodable_escaped`) are listed in ``"escaped"``. ``ascii_only``
    (default: when stdout does not write UTF-8) escapes every non-ASCII
    character, so the line is UTF-8 on any terminal.
    """
    data = {undecodable_escaped(str(k)): json_safe(v) for k, v in record.items()}
    escaped = [k for k, v in record.items() if isinstance(v, str) and json_safe(v) != v]
    if escaped:
        data["escaped"] = escaped
    return json_text(data, ascii_only=ascii_only)


def json_text(value: Any, *, ascii_only: bool | None = None, indent: int | None = None) -> str:
    """``value`` as JSON for stdout: names that are not UTF-8 escaped (:func:`json_safe`), ASCII
    only when stdout does not write UTF-8 (or ``ascii_only``)."""
    if ascii_only is None:
        ascii_only = not _writes_utf8(sys.stdout)
    return json.dumps(json_safe(value), ensure_ascii=ascii_only, indent=indent)


def json_safe(value: Any) -> Any:
    """``value`` with every string (keys too, in lists and dicts) passed through :func:`undecodable_escaped`."""
    if isinstance(value, str):
        return undecodable_escaped(value)
    if isinstance(value, dict):
        return {undecodable_escaped(str(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _writes_utf8(stream: Any) -> bool:
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    return encoding in {"utf8", "utf8sig"}


# -- photos in, MP3s out ------------------------------------------------------------------------


def photos_in(folder: Path) -> list[Path]:
    """The photos in ``folder`` (by suffix; not hidden, not in subfolders), sorted."""
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_path(p) and not p.name.startswith("."))


def expand_photos(paths: list[Path], empty_folder: type[DescribeLocalError] | None = None) -> list[Path]:
    """``paths`` with each folder replaced by the photos in it (:func:`photos_in`).

    A folder with no photos raises ``empty_folder`` when given, else adds nothing.
    Files named directly are kept whatever their suffix: decoding decides.
    """
    photos: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = photos_in(path)
            if not found and empty_folder is not None:
                raise empty_folder(f"{path}: no photos in this folder")
            photos.extend(found)
        else:
            photos.append(path)
    return photos


def mp3_namer(
    output: Path | None, default_dir: Path, photos: Sequence[Path], suffix: str = ""
) -> Callable[[Path], Path]:
    """A function giving the MP3 path of each photo in ``photos``, checked before any model loads.

    ``output`` is a folder (made when the first MP3 is written; default
    ``default_dir``) or, for one photo, a path ending in ``.mp3``. Names follow
    :data:`OUTPUT_NAMING_HELP` (``suffix`` goes before ``.mp3``: ``car-answer.mp3``);
    they are decided for the whole run at once, so no two photos share one.
    Raises :class:`OutputError` (one line) for an output that cannot be used.
    """
    what = (f"-o {shown(output)}" if output is not None
            else f"the output folder {shown(default_dir)} (setting output_dir)")
    if output is not None and output.suffix.lower() == ".mp3" and not output.is_dir():
        if len(photos) > 1:
            raise OutputError(f"{what} names one MP3, for one photo, and there are {len(photos)} photos; "
                              "give a folder for several")
        if output.exists() and not output.is_file():
            raise OutputError(f"{what}: something that is not a file is there; give another path")
        _check_can_make(output.parent, what)
        return lambda _photo: output
    folder = output if output is not None else default_dir
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{what} is a file, not a folder; give a folder, or a path ending in .mp3 for one photo")
    _check_can_make(folder, what)
    names: dict[Path, list[Path]] = {}
    for photo, name in zip(photos, _unique_names(photos, suffix), strict=True):
        names.setdefault(photo, []).append(folder / name)

    def name_of(photo: Path) -> Path:
        queue = names.get(photo)
        if not queue:  # not in the list it was made for: its own name, checked against nothing
            return folder / f"{undecodable_escaped(photo.stem)}{suffix}.mp3"
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return name_of


def _unique_names(photos: Sequence[Path], suffix: str) -> list[str]:
    """One MP3 file name per photo, distinct even on a case-insensitive disk. Bytes of a photo's
    name that are not UTF-8 are written ``\\xNN`` (:func:`undecodable_escaped`), so the path the
    JSON and the terminal show is the file's real path."""
    stems = Counter(undecodable_escaped(p.stem).casefold() for p in photos)
    taken: set[str] = set()
    names = []
    for photo in photos:
        stem = undecodable_escaped(photo.stem)
        base = stem if stems[stem.casefold()] == 1 else undecodable_escaped(photo.name)
        name, n = f"{base}{suffix}.mp3", 2
        while name.casefold() in taken:
            name, n = f"{base}-{n}{suffix}.mp3", n + 1
        taken.add(name.casefold())
        names.append(name)
    return names


def _check_can_make(folder: Path, what: str) -> None:
    """Raise :class:`OutputError` unless ``folder`` exists as a folder we can write in, or can be made."""
    nearest = Path(os.path.abspath(folder))
    while not nearest.exists() and nearest != nearest.parent:
        if nearest.is_symlink():
            raise OutputError(f"{what}: {shown(nearest)} is a broken link; give another folder")
        nearest = nearest.parent
    if not nearest.is_dir():
        raise OutputError(f"{what}: cannot make a folder there, {shown(nearest)} is a file")
    if not os.access(nearest, os.W_OK | os.X_OK):
        raise OutputError(f"{what}: {shown(nearest)} is not writable; give another folder")


def write_mp3(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` (making its folder) whole or not at all; returns ``path``.

    Raises :class:`OutputError` (one line) when it cannot be written.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "xb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise OutputError(f"cannot write {shown(path)}: {exc.strerror or exc}") from None
    return path


def progress_printer() -> Callable[[str], None]:
    """Prints loading progress to stderr on a terminal; silent when piped."""
    if not sys.stderr.isatty():
        return lambda _msg: None

    def say(message: str) -> None:
        print(f"… {shown(message)}", file=sys.stderr, flush=True)

    return say


# -- big collections (--jobs, --ray, --jsonl, --resume) ------------------------------------------


def add_collection_options(parser: argparse.ArgumentParser, noun: str = "photo") -> None:
    """The options for describing a large collection, shared by ``describe``, ``read`` and ``alt-text``."""
    group = parser.add_argument_group("big collections")
    group.add_argument(
        "--jobs", type=int, metavar="N",
        help=f"N worker processes, each with its own models (default {setting_default('jobs')}; at most one "
        f"per core); {noun}s are taken from one queue and printed in the order given",
    )
    group.add_argument(
        "--ray", metavar="ADDRESS",
        help="describe on a Ray cluster instead: the head's address (e.g. 192.168.1.5:6379) or auto; needs "
        "`pip install 'describe-local[ray]'` and the same models on every machine (see README)",
    )
    group.add_argument(
        "--jsonl", type=Path, metavar="FILE",
        help=f"also write one JSON line per {noun} to FILE as each finishes, keyed by its sha256 and path "
        "(a new or empty file, unless --resume)",
    )
    group.add_argument(
        "--resume", action="store_true",
        help=f"skip the {noun}s already in --jsonl FILE: an interrupted run goes on where it stopped",
    )
    group.add_argument("--quiet", action="store_true",
                       help="no progress, notes or summary on stderr (errors are still printed)")


def check_collection_options(args: argparse.Namespace) -> None:
    """Refuse combinations that cannot work, before anything loads."""
    if args.resume and args.jsonl is None:
        raise ConfigError("--resume needs the file to resume: give --jsonl FILE too")
    if args.ray is not None:
        if args.jobs is not None:
            raise ConfigError("give --jobs or --ray, not both: on Ray the cluster's CPUs decide how many workers")
        if not args.ray.strip():
            raise ConfigError("--ray needs the cluster's address (HOST:PORT of its head) or auto")
    if args.jsonl is not None and args.jsonl.is_dir():
        raise ConfigError(f"--jsonl {shown(args.jsonl)} is a folder; give a file")


def as_collection(args: argparse.Namespace, settings: Settings) -> bool:
    """Whether this run goes through the collection engine (workers, Ray, or a JSON-lines file)
    rather than the one-process loop."""
    return settings.jobs > 1 or args.ray is not None or args.jsonl is not None


def bar_wanted(args: argparse.Namespace) -> bool | None:
    """The progress bar: off with --quiet, on with --progress, else only on a terminal (``None``)."""
    if args.quiet:
        return False
    return True if args.progress else None


def caption_installed(settings: Settings) -> bool:
    """Whether the caption model of ``settings`` is there (a folder, or a folder in the store),
    without loading it."""
    name = settings.caption_model
    return Path(name).expanduser().is_dir() or (bool(name) and (settings.models_dir / name).is_dir())


def needed_on_every_node(settings: Settings) -> tuple[str, ...]:
    """What a Ray node must have for its descriptions to match this machine's: every model in the
    store, a caption model given as a folder, and each person of the gallery."""
    needed: list[str] = []
    for folder in (settings.models_dir, settings.known_faces):
        with contextlib.suppress(OSError):
            needed += sorted(str(p) for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    caption = Path(settings.caption_model).expanduser()
    if caption.is_dir() and str(caption) not in needed:
        needed.append(str(caption.resolve()))
    return tuple(needed)
