"""The text outputs (WebVTT descriptions, an HTML page with a transcript) and writing them all at once.

In: cues. Out: ``NAME.described.vtt`` text (:func:`webvtt`), ``NAME.html`` text (:func:`html_page`, its
player's script in :mod:`describe_local.video.player`),
and :class:`OutputSet`, which hands out temporary names in the output folder and renames them all
at the end, or removes them all on failure: nothing half-written is left under a final name.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import secrets
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from describe_local.errors import OutputError
from describe_local.video.narration import Cue
from describe_local.video.player import PLAYER_JS


def timestamp(seconds: float) -> str:
    """``seconds`` as a WebVTT timestamp, ``HH:MM:SS.mmm``."""
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{ms:03d}"


def webvtt(cues: Sequence[Cue]) -> str:
    """A WebVTT file with one cue per narration (for a ``<track kind="descriptions">``)."""
    lines = ["WEBVTT", "Kind: descriptions", ""]
    for number, cue in enumerate(cues, 1):
        # "-->" cannot appear in a cue's text; a blank line would end it.
        text = " ".join(cue.text.replace("-->", "->").split())
        lines += [str(number), f"{timestamp(cue.start)} --> {timestamp(cue.end)}", text, ""]
    return "\n".join(lines)


@dataclass
class Page:
    """What the HTML page shows: the files it links (names in the output folder) and the narrations."""

    title: str
    video: str  # the video the page plays: the picture and the original sound
    vtt: str
    narration: str  # every narration one after another (``spans`` says where each is)
    language: str
    cues: Sequence[Cue]
    spans: Sequence[tuple[float, float]]  # (from, to) seconds of each cue's clip in ``narration``
    dropped: Sequence[tuple[float, str]] = ()
    described_mp4: str = ""
    described_first: bool = True  # whether the described MP4's first audio track is the description
    has_audio: bool = True  # whether the video has sound of its own (else the described MP4 has one track)
    extended_mp4: str | None = None


def link(name: str) -> str:
    """A file name as a relative URL for an attribute: percent-encoded (a name like
    ``javascript:alert(1).mp4`` stays a file name, never a scheme) and HTML-escaped."""
    return html.escape(urllib.parse.quote(name, safe=""), quote=True)


def spoken_time(seconds: float) -> str:
    """``seconds`` as words a screen reader says well: "1 min 5 s"."""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _files_part(page: Page) -> str:
    esc = html.escape
    if not page.described_mp4:
        return ""
    if not page.has_audio:
        tracks = "its only audio track is the narration (the video has no sound of its own)"
    elif page.described_first:
        tracks = ("its first audio track, the one players choose, is the audio description; "
                  "the second is the original sound")
    else:
        tracks = "its first audio track is the original sound; the second is the audio description"
    items = [f'<li><a href="{link(page.described_mp4)}">{esc(page.described_mp4)}</a>: {tracks}.</li>']
    if page.extended_mp4:
        items.append(f'<li><a href="{link(page.extended_mp4)}">{esc(page.extended_mp4)}</a>: the same, with the '
                     "picture held still while the descriptions that find no pause are spoken.</li>")
    items.append(f'<li><a href="{link(page.narration)}">{esc(page.narration)}</a>: every description, '
                 "one after another.</li>")
    return "    <h2>Files</h2>\n    <ul class=\"files\">\n      " + "\n      ".join(items) + "\n    </ul>\n"


def html_page(page: Page) -> str:
    """A page that plays ``page.video`` with an audio description switch (the narration file played at
    each cue, the video's own sound lowered under it; the video paused for a narration that finds no
    pause, when extended description is on), the descriptions as text on request, and a transcript."""
    esc = html.escape
    # "short": a line cut to fit its pause, said so only when the video may not pause (its whole text,
    # held, is the next cue).
    table = [{"at": round(c.start, 3), "from": round(a, 3), "to": round(b, 3), "hold": c.held,
              "short": c.fuller is not None, "text": c.text}
             for c, (a, b) in zip(page.cues, page.spans, strict=True)]
    items = "\n".join(
        f'      <li><a href="#t={c.start:.1f}" data-cue="{i}">'
        f'<span class="at">{esc(spoken_time(c.start))}</span> {esc(c.text)}</a>'
        f"{' <span class=note>(the video pauses for it)</span>' if c.held else ''}</li>"
        for i, c in enumerate(page.cues) if c.fuller is None
    )
    missed = "\n".join(f"      <li>{esc(spoken_time(t))}: {esc(text)}</li>" for t, text in page.dropped)
    dropped_part = (
        f"    <h2>Not narrated (no pause in the dialogue)</h2>\n    <ul>\n{missed}\n    </ul>\n" if page.dropped else ""
    )
    cues_json = json.dumps(table, ensure_ascii=False).replace("<", "\\u003c")
    lang = esc(page.language)
    return f"""<!doctype html>
<html lang="{lang}">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{esc(page.title)}: audio description</title>
  <style>
    body {{ font: 1.125rem/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 0 1rem;
           color: #111; background: #fff; }}
    h1, a, li {{ overflow-wrap: anywhere; }}
    video {{ display: block; width: 100%; height: auto; background: #000; }}
    .switches {{ display: flex; flex-wrap: wrap; gap: 0.5rem 1.5rem; border: 1px solid #555; margin: 1rem 0;
                 padding: 0.5rem 1rem; }}
    .switches label {{ display: flex; align-items: center; gap: 0.5rem; min-height: 44px; }}
    .switches input {{ flex: none; width: 44px; height: 44px; margin: 0; }}
    #now {{ background: #111; color: #fff; padding: 0.5rem 1rem; margin: 0; min-height: 3em; }}
    .at {{ font-weight: bold; }}
    a {{ color: #0645ad; }}
    a:focus-visible, input:focus-visible, video:focus-visible {{ outline: 3px solid #c60; outline-offset: 2px; }}
    .transcript li {{ margin: 0.5rem 0; }}
    .transcript a {{ display: inline-block; min-height: 44px; }}
    @media (prefers-color-scheme: dark) {{
      body {{ color: #eee; background: #111; }} a {{ color: #9cf; }} .switches {{ border-color: #aaa; }}
    }}
  </style>
</head>
<body>
  <main>
    <h1>{esc(page.title)}</h1>
    <video id="video" controls preload="auto" playsinline src="{link(page.video)}">
      <track kind="descriptions" src="{link(page.vtt)}" srclang="{lang}" label="Audio description">
    </video>
    <audio id="narration" preload="auto" src="{link(page.narration)}"></audio>
    <fieldset class="switches">
      <legend>Audio description</legend>
      <label><input type="checkbox" id="describe" checked> Hear the audio description</label>
      <label><input type="checkbox" id="extended" checked> Pause the video for descriptions that need it</label>
      <label><input type="checkbox" id="show-text"> Show descriptions as text</label>
    </fieldset>
    <p id="now" aria-live="polite" hidden></p>
    <h2 id="transcript">Transcript of the audio description</h2>
    <ol class="transcript" aria-labelledby="transcript">
{items}
    </ol>
{dropped_part}{_files_part(page)}  </main>
  <script type="application/json" id="cues">{cues_json}</script>
  <script>
{PLAYER_JS}
  </script>
</body>
</html>
"""


class OutputSet:
    """Temporary names in ``folder`` for each final name; :meth:`commit` renames them all,
    :meth:`discard` (or leaving the ``with`` block by an exception) removes them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._tag = secrets.token_hex(4)
        self._pending: dict[Path, Path] = {}

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is not None:
            self.discard()

    def temp(self, name: str) -> Path:
        """Where to write the file that will be ``folder/name`` (hidden, same folder: the rename is atomic)."""
        final = self.folder / name
        # The real suffix is kept last: muxers pick their format from it.
        tmp = self.folder / f".{final.stem}.{self._tag}.part{final.suffix}"
        self._pending[final] = tmp
        return tmp

    def commit(self) -> list[Path]:
        """Rename every temporary file to its final name; the final paths. Renames none (and raises
        :class:`OutputError`) when one of them was never written."""
        missing = [final.name for final, tmp in self._pending.items() if not tmp.is_file()]
        if missing:
            self.discard()
            raise OutputError(f"could not write {', '.join(missing)} in {self.folder}; nothing was written")
        for final, tmp in self._pending.items():
            os.replace(tmp, final)
        done = list(self._pending)
        self._pending.clear()
        return done

    def discard(self) -> None:
        for tmp in self._pending.values():
            with contextlib.suppress(OSError):
                tmp.unlink()
        self._pending.clear()
