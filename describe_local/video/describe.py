"""A video in, its audio description out: shots → describer → narration lines → gaps → sound and files.

In: a video path, an output folder, a loaded ``Describer`` (used through its public methods:
``describe`` for each shot's picture, ``speak`` for each narration line, so that a line is spoken
by the voice of the language the describer's plan chose for it, English when a translation is
missing), and the listener's options (language, voice). Out: :class:`VideoReport`, and in the
folder (all renamed into place only once all are written):

- ``NAME.described.mp4``: the picture copied, the description mix as the first, default audio track
  (flagged for the visually impaired), the original sound second (``original_first``: the other way);
- ``NAME.described.vtt``: the narrations heard in it, and ``NAME.narration.m4a``: them alone, in time;
- ``NAME.html``: a player with an audio description switch, playing ``NAME.description.mp3`` (every
  narration, one after another) at the cue times over ``NAME.original.mp4`` (the picture and original
  sound, copied; the described MP4 itself when its original track is first), pausing the video for
  the narrations that find no pause;
- with ``extended``: ``NAME.extended.mp4`` and ``NAME.extended.vtt``, where every narration that finds
  no pause is spoken while the picture holds still (both audio tracks padded in step).

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
from describe_local.errors import VideoError
from describe_local.images import Photo
from describe_local.results import DescribeOptions
from describe_local.video import extend, frames, mux, narration, outputs, shots, vad
from describe_local.video.mux import Track

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
    extended_duration: float | None = None  # the extended MP4's length, when one was written
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
                      "overlaps_dialogue": c.overlaps, "hold": round(c.hold, 3),
                      "extended": None if c.fuller is None else {"text": c.fuller.text,
                                                                 "hold": round(c.fuller.hold, 3)}}
                     for c in self.cues],
            "extended_duration": None if self.extended_duration is None else round(self.extended_duration, 3),
            "dropped": [{"at": round(t, 3), "text": text} for t, text in self.dropped],
            "read": [{"at": round(t, 3), "text": text} for t, text in self.read],
            "files": self.files, "errors": self.errors, "notes": self.notes, "voices": self.voices,
            "seconds": round(self.seconds, 2),
        }


def describe_video(source: Path, out_dir: Path, describer: Any, options: DescribeOptions | None = None, *,
                   allow_overlap: bool = False, max_speed: float = narration.MAX_SPEED,
                   extended: bool = False, original_first: bool = False,
                   progress: Progress | None = None) -> VideoReport:
    """Describe ``source`` into ``out_dir`` (see the module's docstring) in the language and voice of
    ``options``; ``describer`` must be loaded with speech. Raises ``VideoError`` for a file that is
    not a video with pictures; nothing is left in ``out_dir`` when anything fails."""
    options = dataclasses.replace(options or DescribeOptions(), audio=False,  # spoken line by line below
                                  check_picture=False)  # a title card is a frame of the film, not a screenshot
    started = time.perf_counter()
    tell = progress or (lambda _what, _done: None)
    info = frames.probe(source)
    report = VideoReport(str(source), info.duration)
    length = max(info.duration, 1e-3)
    # Weights of the passes in the time the whole job takes, for the progress line.
    tell("finding the dialogue", 0.0)
    report.speech = vad.speech_in(source, lambda t: tell("finding the dialogue", 0.05 * min(1, t / length)))
    placer = narration.Placer(vad.gaps(report.speech, info.duration), max_speed=max_speed,
                              allow_overlap=allow_overlap, hold=True)
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
            if cue is None:  # not with hold on (every line is placed, in a pause or held); kept for the report
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
            if cue.fuller is not None:  # the whole line, for the page and the extended MP4
                store.add(cue.start, resample(spoken[line.full].pcm, spoken[line.full].sample_rate, store.rate))
        tell("writing the audio", 0.85)
        _write(source, out_dir, report, store, language, has_audio=info.has_audio, extended=extended,
               original_first=original_first,
               progress=lambda t: tell("writing the video", 0.87 + 0.13 * min(1, t / length)))
    finally:
        store.close()
    tell("done", 1.0)
    report.seconds = time.perf_counter() - started
    return report


def _write(source: Path, out_dir: Path, report: VideoReport, store: mux.ClipStore, language: str, *,
           has_audio: bool, extended: bool, original_first: bool, progress: Callable[[float], None]) -> None:
    """Every output file (see the module's docstring), renamed into place together."""
    name, duration = source.stem, report.duration
    # The store holds each cue's clip, then its fuller one where it has one.
    clips = [(cue, variant) for cue in report.cues for variant in ([cue, cue.fuller] if cue.fuller else [cue])]
    plain = store.only([variant is cue and not cue.held for cue, variant in clips])  # no held narration
    whole = [variant for cue, variant in clips if variant is not cue or cue.fuller is None]  # extended description
    in_whole = [variant is not cue or cue.fuller is None for cue, variant in clips]
    order = [Track.ORIGINAL, Track.DESCRIBED] if original_first else [Track.DESCRIBED, Track.ORIGINAL]
    with outputs.OutputSet(out_dir) as files:
        mux.write_narration(plain, duration, files.temp(f"{name}.narration.m4a"), language)
        mux.write_video(source, files.temp(f"{name}.described.mp4"), order, store=plain, duration=duration,
                        language=language, progress=progress if not extended else None)
        page_video = f"{name}.described.mp4"
        if order[0] is not Track.ORIGINAL:  # the page plays the original sound and adds the narration itself
            page_video = f"{name}.original.mp4"
            mux.write_video(source, files.temp(page_video), [Track.ORIGINAL], duration=duration, language=language)
        spans = mux.write_clips(store, files.temp(f"{name}.description.mp3"), language)
        plain_cues = [cue for cue in report.cues if not cue.held]
        files.temp(f"{name}.described.vtt").write_text(outputs.webvtt(plain_cues), encoding="utf-8")
        if extended:
            holds, timed = _extended(source, whole)
            mux.write_video(source, files.temp(f"{name}.extended.mp4"), order, store=store.only(in_whole).moved(
                [cue.start for cue in timed]), duration=duration, language=language, holds=holds, progress=progress)
            files.temp(f"{name}.extended.vtt").write_text(outputs.webvtt(timed), encoding="utf-8")
            report.extended_duration = duration + sum(hold.seconds for hold in holds)
        page = outputs.html_page(outputs.Page(
            title=name, video=page_video, vtt=f"{name}.described.vtt", narration=f"{name}.description.mp3",
            language=language, cues=[variant for _cue, variant in clips], spans=spans, dropped=report.dropped,
            described_mp4=f"{name}.described.mp4", described_first=order[0] is Track.DESCRIBED, has_audio=has_audio,
            extended_mp4=f"{name}.extended.mp4" if extended else None))
        files.temp(f"{name}.html").write_text(page, encoding="utf-8")
        report.files = [str(p) for p in files.commit()]


def _extended(source: Path, cues: list[narration.Cue]) -> tuple[list[extend.Hold], list[narration.Cue]]:
    """The holds of the extended MP4 (snapped to where the picture can freeze) and every cue on its
    timeline: a held narration inside its hold, the others moved by the holds before them."""
    held = [cue for cue in cues if cue.held]
    holds = extend.snap([extend.Hold(cue.start, cue.hold) for cue in held], extend.clean_points(source))
    if len(holds) != len(held):  # a stream without a single place to freeze (never in a real video)
        raise VideoError(f"{source.name}: the picture cannot be held still for extended description")
    timed, k = [], 0
    for cue in cues:
        length = cue.end - cue.start
        if cue.held:
            start = holds[k].at + sum(h.seconds for h in holds[:k]) + narration.HOLD_PAD_S
            k += 1
        else:
            start = extend.extended_time(holds, cue.start)
        timed.append(dataclasses.replace(cue, start=start, end=start + length))
    return holds, timed


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
