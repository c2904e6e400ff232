"""The text outputs (WebVTT descriptions, an HTML page with a transcript) and writing them all at once.

In: cues. Out: ``NAME.described.vtt`` text (:func:`webvtt`), ``NAME.html`` text (:func:`html_page`),
and :class:`OutputSet`, which hands out temporary names in the output folder and renames them all
at the end, or removes them all on failure: nothing half-written is left under a final name.
"""

from __future__ import annotations

import contextlib
import html
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from describe_local.video.narration import Cue


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


def html_page(title: str, video_name: str, vtt_name: str, narration_name: str, language: str,
              cues: Sequence[Cue], dropped: Sequence[tuple[float, str]]) -> str:
    """A page that plays ``video_name`` with the descriptions track, and a transcript of the narration."""
    esc = html.escape
    items = "\n".join(
        f'      <li><a href="#t={c.start:.1f}" data-start="{c.start:.3f}">{esc(timestamp(c.start)[:8])}</a> '
        f"{esc(c.text)}</li>"
        for c in cues
    )
    missed = "\n".join(f"      <li>{esc(timestamp(t)[:8])} {esc(text)}</li>" for t, text in dropped)
    dropped_part = (
        f"    <h2>Not narrated (no pause in the dialogue)</h2>\n    <ul>\n{missed}\n    </ul>\n" if dropped else ""
    )
    return f"""<!doctype html>
<html lang="{esc(language)}">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{esc(title)}: audio description</title>
</head>
<body>
  <main>
    <h1>{esc(title)}</h1>
    <p>The second audio track of this video is the audio description; the narration alone is
      <a href="{esc(narration_name)}">{esc(narration_name)}</a>.</p>
    <video id="video" controls preload="metadata" src="{esc(video_name)}">
      <track kind="descriptions" src="{esc(vtt_name)}" srclang="{esc(language)}" label="Audio description" default>
    </video>
    <h2 id="transcript">Transcript of the audio description</h2>
    <ol aria-labelledby="transcript">
{items}
    </ol>
{dropped_part}  </main>
  <script>
    // A transcript link moves the video there instead of following the URL.
    const video = document.getElementById("video");
    for (const link of document.querySelectorAll("a[data-start]")) {{
      link.addEventListener("click", (event) => {{
        event.preventDefault();
        video.currentTime = Number(link.dataset.start);
        video.focus();
      }});
    }}
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
        """Rename every temporary file to its final name; the final paths."""
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
