"""The narration as sound: clips kept on disk, narration-only audio files, and the described MP4s.

In: spoken clips (int16 PCM with their start times, :class:`ClipStore`) and the source video.
Out: ``write_narration`` (an .m4a of the narration alone, timed to the video),
``write_clips`` (an MP3 of the clips one after another, for the page's player), and
``write_video`` (an MP4 of the source's picture, copied packet for packet, with the audio tracks
asked for in order: the description mix, the original sound ducked under the narration, flagged
for the visually impaired, and the original sound as it was, its language kept). With holds
(extended description) the picture freezes while narration plays, and both audio tracks are
padded in step. All stream: a chunk of audio at a time.
"""

from __future__ import annotations

import enum
import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import av
import numpy as np

from describe_local.audio import resample
from describe_local.languages import language_name
from describe_local.video.extend import Hold, packet_shift
from describe_local.video.frames import ffmpeg_name, picture_stream

log = logging.getLogger(__name__)

DUCK_GAIN = 0.3  # the original sound under narration (about -10 dB)
RAMP_S = 0.15  # how long the ducking takes to fade in and out
CHUNK_S = 1.0
AUDIO_TITLE = "Audio description"
CLIP_GAP_S = 0.3  # silence between two clips in the page's narration file
_LANG3 = {"en": "eng", "es": "spa", "fr": "fra", "de": "deu", "it": "ita", "pt": "por", "nl": "nld", "pl": "pol",
          "ru": "rus", "uk": "ukr", "zh": "zho", "ja": "jpn", "ko": "kor", "ar": "ara", "hi": "hin", "tr": "tur",
          "sv": "swe", "da": "dan", "fi": "fin", "no": "nor", "cs": "ces", "el": "ell", "hu": "hun", "ca": "cat"}


def language3(code: str) -> str:
    """The ISO 639-2 code MP4 files carry for an ISO 639-1 ``code`` ("und" when unknown)."""
    return _LANG3.get(code.split("_")[0].split("-")[0].lower(), "und")


@dataclass(frozen=True)
class Clip:
    start: float  # seconds on the video's timeline
    offset: int  # first sample in the store
    length: int  # samples

    def end(self, rate: int) -> float:
        return self.start + self.length / rate


class ClipStore:
    """Narration clips appended to a temporary file, so memory holds none of them."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.clips: list[Clip] = []
        self._file = tempfile.TemporaryFile(prefix="describe-local-narration-")  # noqa: SIM115 - closed by close()
        self._samples = 0

    def add(self, start: float, pcm: np.ndarray) -> Clip:
        """Keep mono int16 ``pcm`` (at :attr:`rate`) to be heard from ``start`` seconds."""
        clip = Clip(start, self._samples, len(pcm))
        self._file.write(np.ascontiguousarray(pcm, np.int16).tobytes())
        self._samples += len(pcm)
        self.clips.append(clip)
        return clip

    def pcm(self, clip: Clip) -> np.ndarray:
        self._file.seek(clip.offset * 2)
        return np.frombuffer(self._file.read(clip.length * 2), np.int16)

    def close(self) -> None:
        self._file.close()

    def moved(self, starts: Sequence[float]) -> ClipStore:
        """The same clips (same file) heard from ``starts`` instead; closing the original closes both."""
        other = ClipStore.__new__(ClipStore)
        other.rate, other._file, other._samples = self.rate, self._file, self._samples
        other.clips = [replace(clip, start=start) for clip, start in zip(self.clips, starts, strict=True)]
        return other

    def only(self, keep: Sequence[bool]) -> ClipStore:
        """The clips where ``keep`` is true (same file)."""
        other = self.moved([c.start for c in self.clips])
        other.clips = [clip for clip, kept in zip(self.clips, keep, strict=True) if kept]
        return other

    def mix_into(self, out: np.ndarray, t0: float, rate: int) -> None:
        """Add the narration heard from ``t0`` (seconds) into float ``out`` (samples x channels at ``rate``)."""
        t1 = t0 + len(out) / rate
        for clip in self.clips:
            if clip.start >= t1 or clip.end(self.rate) <= t0:
                continue
            # Only the part of the clip inside this chunk is read and resampled.
            a = max(0, int((t0 - clip.start) * self.rate) - 2)
            b = min(clip.length, int((t1 - clip.start) * self.rate) + 2)
            part = self.pcm(Clip(clip.start, clip.offset + a, b - a))
            part = resample(part, self.rate, rate).astype(np.float32) / 32768.0
            first = round((clip.start + a / self.rate - t0) * rate)
            lo, hi = max(0, first), min(len(out), first + len(part))
            if hi > lo:
                out[lo:hi] += part[lo - first : hi - first, None]


def duck_gain(times: np.ndarray, spans: Sequence[tuple[float, float]]) -> np.ndarray:
    """The gain (``DUCK_GAIN``..1) of the original sound at ``times``: lowered over each narration
    span, with :data:`RAMP_S` ramps just outside it so the first word is heard clearly."""
    gain = np.ones(len(times), np.float32)
    for a, b in spans:
        # 0 inside the span, rising linearly to 1 at RAMP_S away.
        distance = np.maximum(a - times, times - b).clip(min=0)
        gain = np.minimum(gain, DUCK_GAIN + (1 - DUCK_GAIN) * np.clip(distance / RAMP_S, 0, 1))
    return gain


def described_title(language: str) -> str:
    """The described track's name, as players list it: "English (audio description)"."""
    return f"{language_name(language)} (audio description)"


def _encoder(container: av.container.OutputContainer, rate: int, layout: str,
             language: str, title: str, codec: str = "aac") -> av.audio.stream.AudioStream:
    stream = container.add_stream(codec, rate=rate)
    stream.layout = layout
    stream.bit_rate = (96_000 if layout == "mono" else 128_000) if codec == "aac" else 64_000
    stream.metadata["language"] = language3(language)
    stream.metadata["title"] = title
    stream.metadata["handler_name"] = title
    return stream


class _AacWriter:
    """Float chunks in, audio packets (AAC, MP3) muxed, with sample-exact timestamps."""

    def __init__(self, container: av.container.OutputContainer, stream: av.audio.stream.AudioStream) -> None:
        self.container, self.stream = container, stream
        self.layout = stream.layout.name
        self.channels = stream.layout.nb_channels
        self.fifo = av.AudioFifo()
        self.samples = 0

    def write(self, chunk: np.ndarray) -> None:
        """``chunk``: samples x channels float32, -1..1."""
        if not len(chunk):
            return
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(np.clip(chunk, -1, 1).T, np.float32),
                                           format="fltp", layout=self.layout)
        frame.sample_rate = self.stream.rate
        frame.pts = self.samples
        self.samples += len(chunk)
        self.fifo.write(frame)
        size = self.stream.codec_context.frame_size or 1024
        while self.fifo.samples >= size:
            self._encode(self.fifo.read(size))

    def close(self) -> None:
        rest = self.fifo.read()
        if rest is not None:
            self._encode(rest)
        for packet in self.stream.encode(None):
            self.container.mux(packet)

    def _encode(self, frame: av.AudioFrame | None) -> None:
        for packet in self.stream.encode(frame):
            self.container.mux(packet)


def write_clips(store: ClipStore, path: Path, language: str) -> list[tuple[float, float]]:
    """Every clip once, in order, :data:`CLIP_GAP_S` apart, as an MP3 (every browser plays it);
    each clip's (from, to) seconds in the file, for the page to play it at its cue."""
    spans = []
    with av.open(ffmpeg_name(path), "w", format="mp3") as container:
        writer = _AacWriter(container, _encoder(container, store.rate, "mono", language,
                                                described_title(language), codec="libmp3lame"))
        gap = np.zeros((round(CLIP_GAP_S * store.rate), 1), np.float32)
        writer.write(gap)
        for clip in store.clips:
            start = writer.samples / store.rate
            writer.write(store.pcm(clip).astype(np.float32)[:, None] / 32768.0)
            spans.append((start, writer.samples / store.rate))
            writer.write(gap)
        writer.close()
    return spans


def write_narration(store: ClipStore, duration: float, path: Path, language: str) -> None:
    """The narration alone, silence between clips, ``duration`` seconds long, as AAC in ``path`` (.m4a)."""
    with av.open(ffmpeg_name(path), "w", format="ipod") as container:
        writer = _AacWriter(container, _encoder(container, store.rate, "mono", language, AUDIO_TITLE))
        total = max(duration, *(c.end(store.rate) for c in store.clips)) if store.clips else duration
        step = int(CHUNK_S * store.rate)
        for first in range(0, round(total * store.rate), step):
            chunk = np.zeros((min(step, round(total * store.rate) - first), 1), np.float32)
            store.mix_into(chunk, first / store.rate, store.rate)
            writer.write(chunk)
        writer.close()


class Track(enum.Enum):
    """An audio track of a written MP4."""

    DESCRIBED = "described"  # the original ducked under the narration (the narration alone without sound)
    ORIGINAL = "original"  # the source's own sound (copied as it is unless the picture holds)


class _TimedTrack:
    """Audio on the source's timeline in, an output track out: silence at each hold, and (``mix``)
    the original ducked under the narration, both timed on the output's timeline."""

    def __init__(self, writer: _AacWriter, holds: Sequence[Hold], store: ClipStore | None) -> None:
        self.writer, self.store = writer, store
        rate = writer.stream.rate
        self.rate = rate
        self.holds = [(round(h.at * rate), round(h.seconds * rate)) for h in holds]
        self.spans = [(c.start, c.end(store.rate)) for c in store.clips] if store is not None else []
        self.next = 0
        self.source_samples = 0  # samples of the source's timeline written so far

    def write(self, samples: np.ndarray) -> None:
        """``samples`` (samples x channels float32) continue the source's timeline."""
        while len(samples):
            if self.next < len(self.holds) and self.holds[self.next][0] <= self.source_samples:
                self._silence(self.holds[self.next][1])
                self.next += 1
                continue
            room = self.holds[self.next][0] - self.source_samples if self.next < len(self.holds) else len(samples)
            part, samples = samples[:room], samples[room:]
            self._emit(part)
            self.source_samples += len(part)

    def fill_to(self, source_time: float) -> None:
        """Silence (and narration) until ``source_time`` on the source's timeline: a hole, or no sound."""
        while self.source_samples < round(source_time * self.rate) - 1:
            n = min(int(CHUNK_S * self.rate), round(source_time * self.rate) - self.source_samples)
            self.write(np.zeros((n, self.writer.channels), np.float32))

    def finish(self, source_duration: float) -> None:
        """To the end of the source, every hold left, and the last narration heard out."""
        self.fill_to(source_duration)
        while self.next < len(self.holds):
            self._silence(self.holds[self.next][1])
            self.next += 1
        last = max((b for _, b in self.spans), default=0.0)
        while self.writer.samples < round(last * self.rate):
            self._emit(np.zeros((min(int(CHUNK_S * self.rate), round(last * self.rate) - self.writer.samples),
                                 self.writer.channels), np.float32))
        self.writer.close()

    def _silence(self, length: int) -> None:
        step = int(CHUNK_S * self.rate)
        for first in range(0, length, step):
            self._emit(np.zeros((min(step, length - first), self.writer.channels), np.float32))

    def _emit(self, chunk: np.ndarray) -> None:
        if self.store is not None and len(chunk):
            chunk = chunk.copy()
            start = self.writer.samples
            times = (start + np.arange(len(chunk))) / self.rate
            chunk *= duck_gain(times, self.spans)[:, None]
            self.store.mix_into(chunk, start / self.rate, self.rate)
        self.writer.write(chunk)


def _keep_names(stream: av.stream.Stream, source: av.stream.Stream) -> None:
    """The source track's language and name on ``stream`` (a template copy does not bring them)."""
    for key in ("language", "title", "handler_name"):
        stream.metadata.pop(key, None)
        if source.metadata.get(key):
            stream.metadata[key] = source.metadata[key]


def write_video(source: Path, path: Path, tracks: Sequence[Track], *, store: ClipStore | None = None,
                duration: float, language: str, holds: Sequence[Hold] = (),
                progress: Callable[[float], None] | None = None) -> None:
    """``source``'s picture copied into ``path`` (MP4) with the audio ``tracks`` in that order, the first
    the default. :data:`Track.DESCRIBED` needs ``store`` (clips timed on the output's timeline) and is
    flagged for the visually impaired; :data:`Track.ORIGINAL` keeps the source's language. With
    ``holds`` (snapped to clean points) the picture freezes at each and both tracks get silence there."""
    with (av.open(ffmpeg_name(source), metadata_errors="replace") as src,
          av.open(ffmpeg_name(path), "w", format="mp4") as out):
        picture = picture_stream(src)
        assert picture is not None  # probed before
        video = out.add_stream_from_template(picture)
        original = src.streams.audio[0] if src.streams.audio else None
        rate = original.rate if original is not None and original.rate else 48_000
        layout = "stereo" if original is not None and original.channels >= 2 else "mono"
        copied: dict[int, av.stream.Stream] = {picture.index: video}
        timed: list[_TimedTrack] = []
        tracks = [t for t in tracks if t is Track.DESCRIBED or original is not None]  # the first is the default
        for number, track in enumerate(tracks):
            default = av.stream.Disposition.default if number == 0 else av.stream.Disposition(0)
            if track is Track.DESCRIBED:
                stream = _encoder(out, rate, layout, language, described_title(language))
                stream.disposition = default | av.stream.Disposition.visual_impaired
                timed.append(_TimedTrack(_AacWriter(out, stream), holds, store))
            else:
                assert original is not None
                if holds:  # padded in step with the picture: decoded and encoded again
                    stream = _encoder(out, rate, layout, "und", "")
                    timed.append(_TimedTrack(_AacWriter(out, stream), holds, None))
                else:
                    stream = copied[original.index] = out.add_stream_from_template(original)
                _keep_names(stream, original)
                stream.disposition = default
        others = [s for s in src.streams.audio if original is not None and s.index != original.index]
        for other in others if not holds else ():  # other languages' tracks, as they were, chosen by no one
            copied[other.index] = out.add_stream_from_template(other)
            _keep_names(copied[other.index], other)
            copied[other.index].disposition = av.stream.Disposition(0)
        if holds and others:
            log.info("the extended video leaves out %d more audio track(s): they would not hold in step", len(others))
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)

        def add_original(frame: av.AudioFrame | None) -> None:
            for part in resampler.resample(frame):
                samples = part.to_ndarray().T.astype(np.float32)  # samples x channels
                if part.time is not None and part.time < 0:  # before the picture starts (priming): not heard
                    samples = samples[min(len(samples), round(-part.time * rate)):]
                if part.pts is not None and part.time is not None:
                    for track in timed:
                        # A hole in the original (a dropped packet): silence, so later sound stays in sync.
                        if round(part.time * rate) - track.source_samples > rate // 10:
                            track.fill_to(part.time)
                for track in timed:
                    track.write(samples)

        shift_ticks = 0
        packets = 0
        demuxed = [picture] + ([original] if original is not None else []) + (others if not holds else [])
        for packet in src.demux(*demuxed):
            if packet.dts is None:
                continue  # the demuxer's flush packet
            in_stream = packet.stream
            if original is not None and in_stream.index == original.index and timed:
                try:
                    for frame in packet.decode():
                        add_original(frame)
                except (av.error.FFmpegError, ValueError) as exc:
                    log.warning("a damaged audio packet is left silent in the described track: %s", exc)
            if in_stream.index == picture.index:
                if holds:
                    shift_ticks = round(packet_shift(holds, packets) / float(in_stream.time_base))
                    packet.dts += shift_ticks
                    if packet.pts is not None:
                        packet.pts += shift_ticks
                packets += 1
                if original is None and packet.pts is not None:
                    for track in timed:  # narration alone, kept level with the picture
                        track.fill_to(float((packet.pts - shift_ticks) * in_stream.time_base))
                if progress is not None and packet.pts is not None:
                    progress(float((packet.pts - shift_ticks) * in_stream.time_base))
            if in_stream.index in copied:
                packet.stream = copied[in_stream.index]
                out.mux(packet)
        if original is not None and timed:
            add_original(None)
        for track in timed:
            track.finish(duration)
