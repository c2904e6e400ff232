"""How soon the listener hears the first words: streamed against plain descriptions on a real server.

Starts ``serve``'s app on 127.0.0.1 (a free port) with the caption model given, then for each
photo (the shared phone photos of text in the world and the signs, ``--repeats`` times, streamed
and plain taking turns) times, from the POST being sent (the photos are a few hundred KB on
loopback: the upload itself takes milliseconds):

- streamed (``stream=true``): the answer with the URLs, the first byte of ``audio_url``, and the
  ``done`` event;
- plain: the answer (the whole description), and the first byte of its ``audio_url``.

Prints the median and the worst of each, and the targets: first audio median <= 0.5 s and <= half
the time to ``done`` in the same run; ``done`` no slower than the plain answer (within noise).

A random OFA-tiny-sized model (``scripts/make_tiny_models.py OUT --only ofa-tiny --full-vocab``,
then ``describe-local models convert OUT/ofa-tiny``) takes a real model's time but writes only
filler tokens, which are not spoken: its captions are empty, so the first words would wait for the
text stage. ``--say-caption TEXT`` keeps the model's whole run and says TEXT as its caption, as a
real model's caption would be said (the output says so).

    .venv/bin/python scripts/bench_first_audio.py --caption-model /tmp/bench/ofa-tiny \
        --say-caption "a man standing in front of a sign on a city street"
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from describe_local.pipeline import Describer  # noqa: E402
from describe_local.server import create_app  # noqa: E402
from describe_local.server.running import ServerThread  # noqa: E402
from describe_local.settings import Settings  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
FOLDERS = ("ocr/scenes", "ocr/signs")


class _Worded:
    """A caption model whose every caption is ``words``, after its own run (same time, words a listener hears)."""

    def __init__(self, model: object, words: str) -> None:
        self.model, self.words, self.name = model, words, getattr(model, "name", "caption")

    def caption(self, image: object) -> str:
        self.model.caption(image)  # type: ignore[attr-defined]
        return self.words

    def close(self) -> None:
        getattr(self.model, "close", lambda: None)()


def _first_byte(client: httpx.Client, url: str, t0: float) -> float:
    """Seconds from ``t0`` to the first byte of ``url``'s body (the rest is read and dropped)."""
    first = None
    with client.stream("GET", url) as response:
        response.raise_for_status()
        for _chunk in response.iter_bytes():
            first = first or time.perf_counter() - t0
    return first if first is not None else float("nan")


def _streamed(client: httpx.Client, photo: Path) -> dict[str, float]:
    t0 = time.perf_counter()
    answer = client.post("/api/describe", files={"photo": (photo.name, photo.read_bytes())}, data={"stream": "true"})
    answer.raise_for_status()
    urls, accepted = answer.json(), time.perf_counter() - t0
    first: dict[str, float] = {}
    listener = threading.Thread(target=lambda: first.setdefault("audio", _first_byte(client, urls["audio_url"], t0)))
    listener.start()
    done = float("nan")
    with client.stream("GET", urls["events_url"]) as events:
        for line in events.iter_lines():
            if line.startswith("event: done") or line.startswith("event: error"):
                done = time.perf_counter() - t0
    listener.join()
    return {"accepted": accepted, "first_audio": first["audio"], "done": done}


def _plain(client: httpx.Client, photo: Path) -> dict[str, float]:
    t0 = time.perf_counter()
    answer = client.post("/api/describe", files={"photo": (photo.name, photo.read_bytes())})
    answer.raise_for_status()
    answered = time.perf_counter() - t0
    return {"answer": answered, "first_audio": _first_byte(client, answer.json()["audio_url"], t0)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--caption-model", help="caption model name or folder (default: the setting)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over the photos (default 3)")
    parser.add_argument("--say-caption", metavar="TEXT",
                        help="say TEXT as each caption, after the caption model's own run (a random model's is empty)")
    args = parser.parse_args()
    photos = sorted(p for folder in FOLDERS for p in (DATA / folder).glob("*") if p.suffix in (".jpg", ".png"))
    if not photos:
        print(f"needs the real photos in {DATA}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "models").mkdir()
        (root / "faces").mkdir()
        overrides = {"caption_model": args.caption_model} if args.caption_model else {}
        settings = Settings.load(environ={}, models_dir=root / "models", known_faces=root / "faces",
                                 state_dir=root / "state", **overrides)
        with Describer.load(settings) as describer:
            caption = describer.status()["caption"]
            print(f"caption model: {caption.name or 'none'}" + ("" if caption.loaded else f" ({caption.detail})"))
            if args.say_caption and describer.caption is not None:
                describer.caption = _Worded(describer.caption, args.say_caption)
                print(f"captions said: {args.say_caption!r} (the model runs in full; its own words are not used)")
            server = ServerThread(create_app(settings, describer)).start()
            try:
                with httpx.Client(base_url=server.url, timeout=120) as client:
                    _plain(client, photos[0])  # warm up; the first description also says what is off in full
                    streamed, plain = [], []
                    for round_ in range(args.repeats):
                        for photo in photos:
                            pair = [(_streamed, streamed), (_plain, plain)]
                            for run, into in pair if round_ % 2 == 0 else reversed(pair):
                                into.append(run(client, photo))
            finally:
                server.stop()
    print(f"{len(photos)} photos x {args.repeats}, seconds from the POST (median / worst):")
    rows = [("streamed: answer with the URLs", streamed, "accepted"),
            ("streamed: first audio byte", streamed, "first_audio"),
            ("streamed: done event", streamed, "done"),
            ("plain: the answer", plain, "answer"),
            ("plain: first audio byte", plain, "first_audio")]
    for label, runs, key in rows:
        values = [r[key] for r in runs]
        print(f"  {label:34} {statistics.median(values):6.3f} / {max(values):6.3f}")
    first = statistics.median(r["first_audio"] for r in streamed)
    done = statistics.median(r["done"] for r in streamed)
    ratio = statistics.median(r["first_audio"] / r["done"] for r in streamed)
    answer = statistics.median(r["answer"] for r in plain)
    print(f"targets: first audio median {first:.3f} s <= 0.5 s: {'met' if first <= 0.5 else 'missed'}; "
          f"first audio / done {ratio:.2f} <= 0.5: {'met' if ratio <= 0.5 else 'missed'}; "
          f"done {done:.3f} s vs plain answer {answer:.3f} s ({done / answer:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
