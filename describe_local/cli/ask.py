"""``describe-local ask PHOTO "question"``: answer a question about a photo, out loud.

OFA answers with the same weights that caption (visual question answering);
the answer is printed and spoken into an MP3.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from describe_local.cli._common import load_settings, progress_printer
from describe_local.errors import DescribeLocalError, ModelNotInstalled


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ask",
        help="answer a question about a photo, out loud",
        description=(
            'Answer a question about a photo, e.g. ask car.jpg "what colour is the car?". '
            "Prints the answer and writes it spoken as an MP3."
        ),
    )
    parser.add_argument("photo", type=Path, metavar="PHOTO")
    parser.add_argument("question", metavar="QUESTION", help="the question, in English")
    parser.add_argument(
        "-o", "--output", type=Path, metavar="OUT",
        help="the MP3 to write (default: out/PHOTO-answer.mp3); a folder puts it there",
    )
    parser.add_argument("--no-audio", action="store_true", help="print the answer only; no MP3")
    parser.add_argument("--json", action="store_true", help="print a JSON object")
    parser.add_argument(
        "--caption-model", metavar="NAME_OR_FOLDER",
        help="the OFA model to ask: a name in models/ or a folder (default: ofa-tiny)",
    )
    parser.add_argument("--beam", type=int, metavar="N", help="beam size (default 5; 1 = greedy)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from describe_local.caption import load_captioner
    from describe_local.images import load_photo

    question = " ".join(args.question.split())
    if not question:
        raise DescribeLocalError("the question is empty: ask something about the photo")
    if args.beam is not None and args.beam < 1:
        raise DescribeLocalError("--beam must be 1 or more")
    settings = load_settings(args, caption_model="caption_model", beam="beam")
    photo = load_photo(args.photo, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)
    say = progress_printer()
    say("loading the question-answering model")
    model = load_captioner(settings)
    if not hasattr(model, "answer"):
        raise ModelNotInstalled(
            f"{model.name} cannot answer questions; questions need an OFA model (e.g. --caption-model ofa-tiny)"
        )
    answer = model.answer(photo.image, question) or "I don't know."
    audio_path = None
    if not args.no_audio:
        audio_path = _audio_path(args.output, settings.output_dir, args.photo)
        say("speaking the answer")
        _speak(answer, audio_path, settings.length_scale)
    if args.json:
        print(json.dumps({"path": str(args.photo), "question": question, "answer": answer,
                          "audio": str(audio_path) if audio_path else None}, ensure_ascii=False))
    else:
        print(answer)
        if audio_path:
            print(f"  audio: {audio_path}", file=sys.stderr)
    return 0


def _audio_path(output: Path | None, default_dir: Path, photo: Path) -> Path:
    if output is not None and output.suffix.lower() == ".mp3":
        return output
    return (output or default_dir) / f"{photo.stem}-answer.mp3"


def _speak(text: str, path: Path, length_scale: float) -> None:
    """Speak ``text`` with the bundled English voice into the MP3 at ``path``."""
    from describe_local.audio import encode_mp3
    from describe_local.speech import load_bundled_voice

    voice = load_bundled_voice()
    pcm = voice.synthesize(text, length_scale=length_scale)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_mp3(pcm, voice.sample_rate))
