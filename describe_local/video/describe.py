"""A video in, its audio description out: shots → describer → narration lines → gaps → sound and files.

In: a video path, an output folder, a loaded ``Describer`` (used through its public methods:
``describe`` for each shot's picture, ``speak`` for each narration line, so that a line is spoken
by the voice of the language the describer's plan chose for it, English when a translation is
missing), and the listener's options (language, voice). Out: :class:`VideoReport`, and in the
folder ``NAME.described.vtt``, ``NAME.narration.m4a``, ``NAME.described.mp4`` and ``NAME.html``,
all renamed into place only once all are written.

Memory stays flat with the video's length: frames are decoded one at a time, audio is scored in
32 ms windows, and the spoken clips wait in a temporary file.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from describe_local.audio import resample, time_stretch
from describe_local.images import Photo
from describe_local.results import DescribeOptions
from describe_local.video import frames, mux, narration, outputs, shots, vad

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]  # (what is being done, fraction of the whole job 0..1)
NARRATION_RATE = 22050  # Hz of the narration track; every voice's clips are resampled to it


@dataclass
class VideoReport:
    """What was done: shots, cues placed and dropped, the files, and how long it took."""

    source: str
    duration: float
    shots: list[tuple[float, float]] = field(default_factory=list)
    speech: list[tuple[float, float]] = field(default_factory=list)
    cues: list[narration.Cue] = field(default_factory=list)
    dropped: list[tuple[float, str]] = field(default_factory=list)  # (shot start, text) that did not fit
    read: list[tuple[float, str]] = field(default_factory=list)  # (shot start, all the text read in its picture)
    files: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # a shot the describer could not do
    notes: list[str] = field(default_factory=list)  # the describer's notes, once each (e.g. a fallback to English)
    voices: list[str] = field(default_factory=list)  # the voices that spoke the narration, in order of first use
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source, "duration": round(self.duration, 3),
            "shots": [[round(a, 3), round(b, 3)] for a, b in self.shots],
            "speech": [[round(a, 3), round(b, 3)] for a, b in self.speech],
            "cues": [{"start": round(c.start, 3), "end": round(c.end, 3), "text": c.text, "speed": round(c.speed, 2),
                      "overlaps_dialogue": c.overlaps} for c in self.cues],
            "dropped": [{"at": round(t, 3), "text": text} for t, text in self.dropped],
            "read": [{"at": round(t, 3), "text": text} for t, text in self.read],
            "files": self.files, "errors": self.errors, "notes": self.notes, "voices": self.voices,
            "seconds": round(self.seconds, 2),
        }


def describe_video(source: Path, out_dir: Path, describer: Any, options: DescribeOptions | None = None, *,
                   allow_overlap: bool = False, max_speed: float = narration.MAX_SPEED,
                   progress: Progress | None = None) -> VideoReport:
    """Describe ``source`` into ``out_dir`` (see the module's docstring) in the language and voice of
    ``options``; ``describer`` must be loaded with speech. Raises ``VideoError`` for a file that is
    not a video with pictures; nothing is left in ``out_dir`` when anything fails."""
    options = dataclasses.replace(options or DescribeOptions(), audio=False)  # spoken line by line below
    started = time.perf_counter()
    tell = progress or (lambda _what, _done: None)
    info = frames.probe(source)
    report = VideoReport(str(source), info.duration)
    length = max(info.duration, 1e-3)
    # Weights of the passes in the time the whole job takes, for the progress line.
    tell("finding the dialogue", 0.0)
    report.speech = vad.speech_in(source, lambda t: tell("finding the dialogue", 0.05 * min(1, t / length)))
    placer = narration.Placer(vad.gaps(report.speech, info.duration), max_speed=max_speed,
                              allow_overlap=allow_overlap)
    writer = narration.Writer()
    store = mux.ClipStore(NARRATION_RATE)
    language = options.lang or "en"
    try:
        for shot in shots.iter_shots(frames.iter_frames(source), info.duration):
            report.shots.append((shot.start, shot.end))
            tell("describing shots", 0.05 + 0.8 * min(1, shot.end / length))
            found = _findings(describer, shot, options, report)
            if found is None:
                continue
            language = found.language
            if found.text_found:
                report.read.append((shot.start, found.text_found))
            line = writer.line(shot.start, shot.end, found)
            if line is None:
                continue
            spoken = {text: describer.speak(text, found.language, options) for text in {line.full, line.short} if text}
            line.durations = {text: speech.seconds for text, speech in spoken.items()}
            cue = placer.place(line)
            if cue is None:
                report.dropped.append((line.start, line.full))
                log.info("no pause for %r at %.1f s", line.full, line.start)
                continue
            speech = spoken[cue.text]
            if speech.voice not in report.voices:
                report.voices.append(speech.voice)
            pcm = resample(speech.pcm, speech.sample_rate, store.rate)
            if cue.speed != 1.0:
                pcm = time_stretch(pcm, 1.0 / cue.speed, store.rate)
            store.add(cue.start, pcm)
            report.cues.append(cue)
        tell("writing the audio", 0.85)
        name = source.stem
        with outputs.OutputSet(out_dir) as files:
            mux.write_narration(store, info.duration, files.temp(f"{name}.narration.m4a"), language)
            mux.write_described(source, store, info.duration, files.temp(f"{name}.described.mp4"), language,
                                lambda t: tell("writing the video", 0.87 + 0.13 * min(1, t / length)))
            files.temp(f"{name}.described.vtt").write_text(outputs.webvtt(report.cues), encoding="utf-8")
            page = outputs.html_page(name, f"{name}.described.mp4", f"{name}.described.vtt",
                                     f"{name}.narration.m4a", language, report.cues, report.dropped)
            files.temp(f"{name}.html").write_text(page, encoding="utf-8")
            report.files = [str(p) for p in files.commit()]
    finally:
        store.close()
    tell("done", 1.0)
    report.seconds = time.perf_counter() - started
    return report


def _findings(describer: Any, shot: shots.Shot, options: DescribeOptions,
              report: VideoReport) -> narration.Findings | None:
    """What the describer finds in the shot's picture (``None``: a black shot, or it failed)."""
    if shot.picture is None:
        return None
    photo = Photo(shot.picture, source=f"frame@{shot.picture_time:.1f}s")
    try:
        result = describer.describe(photo, options)
    except Exception as exc:  # one shot the describer cannot do does not stop the video
        report.errors.append(f"shot at {shot.start:.1f} s: {exc}")
        log.warning("shot at %.1f s not described: %s", shot.start, exc)
        return None
    for stage, state in result.stages.items():
        if state.went_wrong:  # a stage that is off is off for every shot: not a shot's error
            report.errors.append(f"shot at {shot.start:.1f} s: {stage}: {state.detail}")
    report.notes += [note for note in result.notes if note not in report.notes]
    return narration.Findings(
        caption=result.caption, people=tuple(result.people), unknown_faces=result.unknown_faces,
        text_found=result.text_found, spoken=result.text, language=result.language,
    )
