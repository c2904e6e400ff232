"""Helpers shared by the subcommands: settings from arguments, photos from paths, output names, progress."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from describe_local.errors import DescribeLocalError
from describe_local.images import is_image_path
from describe_local.settings import Settings


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


def mp3_namer(output: Path | None, default_dir: Path, n_photos: int, suffix: str = "") -> Callable[[Path], Path]:
    """A function giving the MP3 path for a photo: ``OUT/STEM{suffix}.mp3``, or ``output`` itself
    when it ends in ``.mp3`` (one photo only)."""
    if output is not None and output.suffix.lower() == ".mp3":
        if n_photos > 1:
            raise DescribeLocalError("-o FILE.mp3 works with one photo; give a folder for several")
        return lambda _photo: output
    folder = output or default_dir
    return lambda photo: folder / f"{photo.stem}{suffix}.mp3"


def write_mp3(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path``, making its folder; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def progress_printer() -> Callable[[str], None]:
    """Prints loading progress to stderr on a terminal; silent when piped."""
    if not sys.stderr.isatty():
        return lambda _msg: None

    def say(message: str) -> None:
        print(f"… {message}", file=sys.stderr, flush=True)

    return say
