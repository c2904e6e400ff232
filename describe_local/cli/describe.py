"""``describe-local describe PHOTO...``: describe photos, print the text, write one MP3 each."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from describe_local.cli._choices import (
    caption_model_given,
    check_caption_model,
    check_folders,
    check_speech_options,
)
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
from describe_local.errors import ConfigError, DescribeLocalError, ImageError, ModelNotInstalled, OutputError


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
                        help=f"language to speak, e.g. es (default: {setting_default('lang')}; "
                        "`describe-local languages` lists them)")
    parser.add_argument("--voice", metavar="KEY",
                        help="an installed voice to speak with, e.g. en_US-joe-medium (`describe-local languages`)")
    parser.add_argument(
        "--speed", type=float, metavar="X",
        help="speaking speed, 0.25 to 4: 1 is the voice's own pace, 2 takes half as long",
    )
    parser.add_argument(
        "--progress", action="store_true",
        help="print n/N as each photo starts, on stderr (the default for several photos when stderr is a terminal)",
    )


def run(args: argparse.Namespace) -> int:
    """Describe (or with ``args.read``, read the text of) each photo; the exit code."""
    from describe_local.pipeline import ANALYSIS_STAGES, DescribeOptions, Describer
    from describe_local.say.speech import length_scale_for

    if not args.read:
        check_beam(args)
    if args.speed is not None and not 0.25 <= args.speed <= 4:  # NaN fails this too
        raise ConfigError(f"--speed {args.speed:g} is out of range: give 0.25 to 4 (1: the voice's own pace)")
    settings = load_settings(
        args, known_faces="gallery", caption_model="caption_model", beam="beam", lang="lang", voice="voice"
    )
    stages = ("text",) if args.read else ANALYSIS_STAGES
    photos = expand_photos(args.photos)
    if not photos:
        raise ImageError("no photos found in the given folder(s)")
    # Checked before any model loads, so that a bad -o, model, language or voice costs nothing.
    audio_target = mp3_namer(args.output, settings.output_dir, photos) if not args.no_audio else None
    check_folders(args, settings)
    wanted_caption = None if args.read else caption_model_given(args, settings)
    if wanted_caption is not None:
        check_caption_model(wanted_caption, settings.models_dir)
    check_speech_options(args, settings)

    options = DescribeOptions(
        lang=args.lang,
        voice=args.voice,
        length_scale=length_scale_for(args.speed) if args.speed else None,
        audio=not args.no_audio,
        sequential=getattr(args, "sequential", False),
    )
    failures: list[DescribeLocalError] = []
    with Describer.load(settings, stages=stages, speech=options.audio, progress=progress_printer()) as describer:
        caption = describer.status()["caption"]
        if not args.read and not caption.loaded:
            if wanted_caption is not None:  # asked for by name: its absence is an error, not a note
                raise ModelNotInstalled((caption.detail or "no caption model loaded").removeprefix("not installed: "))
            if not args.json:
                print(
                    "note: no caption model is installed, so descriptions have no caption; "
                    "install one with `describe-local models pull ofa-tiny` "
                    "(or `describe-local models import FOLDER` offline).",
                    file=sys.stderr,
                )
        started = time.perf_counter()
        announced = _announced(photos, args.progress or (len(photos) > 1 and sys.stderr.isatty()))
        for path, result in describer.describe_all(announced, options, read=args.read):
            failure = result if isinstance(result, DescribeLocalError) else None
            if not isinstance(result, DescribeLocalError) and result.mp3 is not None and audio_target:
                try:
                    result.audio = str(write_mp3(audio_target(path), result.mp3))
                except OutputError as exc:  # e.g. a full disk: say so, go on with the next photo
                    failure = exc
                    result.errors["output"] = shown(exc)
            if failure is not None:
                failures.append(failure)
                print(f"describe-local: error: {shown(failure)}", file=sys.stderr, flush=True)
            if isinstance(result, DescribeLocalError):
                if args.json:
                    print(json_line({"path": str(path), "errors": {_failed_step(result): shown(result)}}),
                          flush=True)
                continue
            _print_result(result, as_json=args.json)
        _print_summary(len(photos), len(failures), time.perf_counter() - started, read=args.read)
    if not failures:
        return 0
    # A photo that cannot be written is a setup problem; one that cannot be read, the photo's.
    if any(isinstance(f, OutputError) for f in failures):
        return OutputError.exit_code
    if all(isinstance(f, ImageError) for f in failures):
        return ImageError.exit_code
    return max(f.exit_code for f in failures if not isinstance(f, ImageError))


def _announced(photos: list[Path], show: bool) -> Iterator[Path]:
    """``photos`` one by one, printing ``n/N photo`` on stderr as each is taken (when ``show``)."""
    for index, photo in enumerate(photos, 1):
        if show:
            print(f"{index}/{len(photos)} {shown(photo)}", file=sys.stderr, flush=True)
        yield photo


def _failed_step(error: DescribeLocalError) -> str:
    """The ``errors`` key of a photo that failed as a whole: what could not be done."""
    return "decode" if isinstance(error, ImageError) else "describe"


def _print_summary(total: int, failed: int, seconds: float, *, read: bool) -> None:
    """One closing line on stderr for more than one photo: how many, how many failed, how long each."""
    if total < 2:
        return
    done = total - failed
    line = f"{done} photo{'' if done == 1 else 's'} {'read' if read else 'described'}"
    if failed:
        line += f", {failed} failed"
    print(f"{line}, {seconds / total:.1f} s each on average", file=sys.stderr, flush=True)


def _print_result(result, *, as_json: bool) -> None:
    if as_json:
        print(json_line(result.to_json()), flush=True)
        return
    print(f"{shown(result.path)}: {shown(result.text)}")
    for stage, error in result.errors.items():
        if stage != "output" and not error.startswith("not installed"):
            print(f"  ({stage} failed: {shown(error)})")
    for note in result.notes:
        print(f"  ({shown(note)})")
    if result.audio:
        print(f"  audio: {shown(result.audio)}")
    sys.stdout.flush()
