"""``describe-local describe PHOTO...``: describe photos, print the text, write one MP3 each."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from describe_local.cli._caption import check_caption, note_if_missing
from describe_local.cli._choices import (
    caption_model_given,
    check_caption_model,
    check_folders,
    check_speech_options,
)
from describe_local.cli._common import (
    OUTPUT_NAMING_HELP,
    add_caption_options,
    add_collection_options,
    add_gallery_option,
    as_collection,
    bar_wanted,
    check_beam,
    check_collection_options,
    expand_photos,
    json_line,
    load_settings,
    mp3_namer,
    needed_on_every_node,
    progress_printer,
    setting_default,
    shown,
    write_mp3,
)
from describe_local.cli._player import Player, player_command
from describe_local.errors import ConfigError, DescribeLocalError, ImageError, OutputError
from describe_local.results import Description, Said, Status

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from describe_local.pipeline import DescribeOptions, Describer
    from describe_local.settings import Settings

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
        "--play", action="store_true",
        help="also speak each description through this machine's speaker as it is made, the first words "
        "first (a kiosk); needs a player program (aplay, paplay or pw-cat, or the play_command setting)",
    )
    parser.add_argument(
        "--progress", action="store_true",
        help="print n/N as each photo starts, on stderr (the default for several photos when stderr is a terminal; "
        "with --jobs, --ray or --jsonl, a progress bar with the rate and the time left)",
    )
    add_collection_options(parser)


def run(args: argparse.Namespace) -> int:
    """Describe (or with ``args.read``, read the text of) each photo; the exit code."""
    from describe_local.pipeline import ANALYSIS_STAGES, DescribeOptions, Describer

    if not args.read:
        check_beam(args)
    if args.speed is not None and not 0.25 <= args.speed <= 4:  # NaN fails this too
        raise ConfigError(f"--speed {args.speed:g} is out of range: give 0.25 to 4 (1: the voice's own pace)")
    check_collection_options(args)
    if args.play and (args.no_audio or args.jobs is not None or args.ray is not None):
        raise ConfigError("--play speaks here, one photo at a time: not with --no-audio, --jobs or --ray")
    settings = load_settings(
        args, known_faces="gallery", caption_model="caption_model", beam="beam", lang="lang", voice="voice",
        jobs="jobs",
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
        speed=args.speed,
        audio=not args.no_audio,
        sequential=getattr(args, "sequential", False),
    )
    if as_collection(args, settings):
        return _run_collection(args, settings, photos, options, audio_target)
    player = Player(player_command(settings.play_command)) if args.play else None
    failures: list[DescribeLocalError] = []
    loading = progress_printer() if not args.quiet else None
    # One photo needs each model once: loaded as it runs and let go after, one at a time (the least memory;
    # not with --play, whose first words come before the last stage ends).
    on_demand = settings.models_in_memory == "one" or (
        settings.models_in_memory == "auto" and len(photos) == 1 and not args.play)
    with Describer.load(settings, stages=stages, speech=options.audio, progress=loading,
                        on_demand=on_demand) as describer:
        if not args.read:
            check_caption(describer, settings, "describe", wanted=wanted_caption, note=not args.json and not args.quiet)
        started = time.perf_counter()
        show = not args.quiet and (args.progress or (len(photos) > 1 and sys.stderr.isatty()))
        announced = _announced(photos, show)
        described = (_played(describer, announced, options, args.read, player) if player is not None
                     else describer.describe_all(announced, options, read=args.read))
        for path, result in described:
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
            _print_record(result.to_json(), as_json=args.json)
        if not args.quiet:
            _print_summary(len(photos), len(failures), time.perf_counter() - started, read=args.read)
    if not failures:
        return 0
    # A photo that cannot be written is a setup problem; one that cannot be read, the photo's.
    if any(isinstance(f, OutputError) for f in failures):
        return OutputError.exit_code
    if all(isinstance(f, ImageError) for f in failures):
        return ImageError.exit_code
    return max(f.exit_code for f in failures if not isinstance(f, ImageError))


def _played(describer: Describer, photos: Iterator[Path], options: DescribeOptions, read: bool,
            player: Player) -> Iterator[tuple[Path, Description | DescribeLocalError]]:
    """As ``describe_all``, each part of each description played as soon as it is spoken."""
    try:
        for path in photos:
            try:
                parts = describer.tell(path, options, read=read)  # decodes the photo, or raises
            except DescribeLocalError as exc:
                yield path, exc
                continue
            for part in parts:
                if not isinstance(part, Said):
                    yield path, part
                elif part.pcm is not None:
                    player.play(part.pcm, part.sample_rate)
        player.close()  # the last words are heard before the command ends
    finally:
        player.close()


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


def _print_record(record: dict[str, Any], *, as_json: bool) -> None:
    """A description (its JSON fields) on stdout: one JSON line, or its text, failures, notes and MP3."""
    if as_json:
        print(json_line(record), flush=True)
        return
    print(f"{shown(record['path'])}: {shown(record.get('text') or '')}")
    for stage, state in (record.get("stages") or {}).items():
        if state["status"] in (Status.FAILED, Status.TIMED_OUT):  # off for every photo: said once, not here
            print(f"  ({stage} failed: {shown(state['detail'] or state['status'])})")
    if "speech" in (record.get("errors") or {}):
        print(f"  (speech failed: {shown(record['errors']['speech'])})")
    for note in record.get("notes") or []:
        print(f"  ({shown(note)})")
    if record.get("audio"):
        print(f"  audio: {shown(record['audio'])}")
    sys.stdout.flush()


# -- big collections ----------------------------------------------------------------------------


def _run_collection(args: argparse.Namespace, settings: Settings, photos: list[Path], options: DescribeOptions,
                    audio_target: Callable[[Path], Path] | None) -> int:
    """Describe ``photos`` with worker processes, on Ray, or into a JSON-lines file; the exit code."""
    from describe_local.collection import TaskSpec, failed, run_collection

    if not args.read:
        note_if_missing(settings, "describe", note=not args.json and not args.quiet)
    spec = TaskSpec(
        "describe_local.collection.tasks:describe_photos", settings,
        {"read": args.read, "lang": options.lang, "voice": options.voice, "speed": options.speed,
         "audio": options.audio, "sequential": options.sequential},
        needs=needed_on_every_node(settings) if args.ray is not None else (),
    )
    # Named for all photos up front, in order, exactly as the one-process loop names them.
    names = [audio_target(p) for p in photos] if audio_target is not None else None

    def save(index: int, _photo: Path, _field: str, data: bytes) -> str:
        assert names is not None
        return str(write_mp3(names[index], data))

    kinds: list[set[str]] = []
    started, count = time.perf_counter(), 0
    records = run_collection(photos, spec, jobs=settings.jobs, ray=args.ray, output=args.jsonl,
                             resume=args.resume, progress=bar_wanted(args),
                             save_file=save if names is not None else None, include_done=False)
    with contextlib.closing(records):
        for record in records:
            count += 1
            failure = failed(record)
            if failure:
                kinds.append(failure)
                for key in sorted(failure):
                    print(f"describe-local: error: {shown(record['errors'][key])}", file=sys.stderr, flush=True)
            if "output" in failure or not failure or args.json:
                _print_record(record, as_json=args.json)
    if not args.quiet:
        if count < len(photos):
            print(f"{len(photos) - count} of {len(photos)} photos were already in {shown(args.jsonl)}",
                  file=sys.stderr)
        _print_summary(count, len(kinds), time.perf_counter() - started, read=args.read)
    if not kinds:
        return 0
    if any("output" in k for k in kinds):
        return OutputError.exit_code
    return ImageError.exit_code if all(k == {"decode"} for k in kinds) else 1
