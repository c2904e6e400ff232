"""``describe-local describe PHOTO...``: describe photos, print the text, write one MP3 each."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from describe_local.cli._common import (
    OUTPUT_NAMING_HELP,
    add_caption_options,
    add_gallery_option,
    check_beam,
    expand_photos,
    json_line,
    load_settings,
    mp3_namer,
    progress_printer,
    setting_default,
    shown,
    write_mp3,
)
from describe_local.errors import DescribeLocalError, ImageError, OutputError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "describe",
        help="describe photos out loud (text and one MP3 per photo)",
        description=(
            "Describe one or more photos (or folders of photos): a caption, the people "
            "you know, and any text in the picture. Prints each description and writes "
            "an MP3 per photo. Models load once for all photos. " + OUTPUT_NAMING_HELP + "."
        ),
    )
    add_output_options(parser)
    parser.add_argument(
        "--sequential", action="store_true",
        help="run caption, faces and text one after another instead of concurrently (for benchmarks)",
    )
    add_gallery_option(parser)
    add_caption_options(parser, "caption model")
    parser.set_defaults(func=run, read=False)


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """The options ``describe`` and ``read`` share: photos, output, language, voice and speed."""
    parser.add_argument("photos", nargs="+", type=Path, metavar="PHOTO", help="a photo or a folder of photos")
    parser.add_argument(
        "-o", "--output", type=Path, metavar="OUT",
        help="folder for the MP3s (default: ./out); with one photo, a path ending in .mp3 names the file. "
        "Names: x.jpg -> x.mp3; photos that share a stem keep their suffix (x.jpg.mp3, x.png.mp3), "
        "the same name in two folders gets a number (x.jpg-2.mp3)",
    )
    parser.add_argument(
        "--json", action="store_true",
        help="print one JSON object per photo (JSON lines, always UTF-8: bytes of a file name that "
        'is not UTF-8 are written \\xNN and the field is listed in "escaped")',
    )
    parser.add_argument("--no-audio", action="store_true", help="print the text only; no MP3")
    parser.add_argument("--lang", metavar="CODE",
                        help=f"language to speak, e.g. es (default: {setting_default('lang')})")
    parser.add_argument("--voice", metavar="KEY", help="voice to speak with, e.g. en_US-joe-medium")
    parser.add_argument(
        "--speed", type=float, metavar="X",
        help="speaking speed: 1 is the voice's own pace, 1.5 is 50%% faster",
    )


def run(args: argparse.Namespace) -> int:
    """Describe (or with ``args.read``, read the text of) each photo; the exit code."""
    from describe_local.pipeline import ANALYSIS_STAGES, DescribeOptions, Describer

    if not args.read:
        check_beam(args)
    if args.speed is not None and not 0.25 <= args.speed <= 4:
        raise DescribeLocalError("--speed must be between 0.25 and 4")
    settings = load_settings(
        args, known_faces="gallery", caption_model="caption_model", beam="beam", lang="lang", voice="voice"
    )
    stages = ("text",) if args.read else ANALYSIS_STAGES
    photos = expand_photos(args.photos)
    if not photos:
        raise ImageError("no photos found in the given folder(s)")
    # Checked before any model loads, so that a bad -o costs nothing.
    audio_target = mp3_namer(args.output, settings.output_dir, photos) if not args.no_audio else None

    options = DescribeOptions(
        lang=args.lang,
        voice=args.voice,
        length_scale=(1.0 / args.speed) if args.speed else None,
        audio=not args.no_audio,
        sequential=getattr(args, "sequential", False),
    )
    failures: list[DescribeLocalError] = []
    with Describer.load(settings, stages=stages, speech=options.audio, progress=progress_printer()) as describer:
        if not args.read and not describer.status()["caption"].loaded and not args.json:
            print(
                "note: no caption model is installed, so descriptions have no caption; "
                "install one with `describe-local models pull ofa-tiny` "
                "(or `describe-local models import FOLDER` offline).",
                file=sys.stderr,
            )
        for path, result in describer.describe_all(photos, options, read=args.read):
            if not isinstance(result, DescribeLocalError) and result.mp3 is not None and audio_target:
                try:
                    result.audio = str(write_mp3(audio_target(path), result.mp3))
                except OutputError as exc:  # e.g. a full disk: say so, go on with the next photo
                    result = exc
            if isinstance(result, DescribeLocalError):
                failures.append(result)
                print(f"describe-local: error: {shown(result)}", file=sys.stderr, flush=True)
                continue
            _print_result(result, as_json=args.json)
    if not failures:
        return 0
    # A photo that cannot be written is a setup problem; one that cannot be read, the photo's.
    return OutputError.exit_code if any(isinstance(f, OutputError) for f in failures) else ImageError.exit_code


def _print_result(result, *, as_json: bool) -> None:
    if as_json:
        print(json_line(result.to_json()), flush=True)
        return
    print(f"{shown(result.path)}: {shown(result.text)}")
    for stage, error in result.errors.items():
        if not error.startswith("not installed"):
            print(f"  ({stage} failed: {shown(error)})")
    for note in result.notes:
        print(f"  ({shown(note)})")
    if result.audio:
        print(f"  audio: {shown(result.audio)}")
    sys.stdout.flush()
