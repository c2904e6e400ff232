"""The narration as sound: clips kept on disk, a narration-only AAC file, and the described MP4.

In: spoken clips (int16 PCM with their start times, :class:`ClipStore`) and the source video.
Out: ``write_narration`` (an .m4a of the narration alone, timed to the video) and
``write_described`` (the source's streams copied packet for packet, plus an AAC track of the
original sound ducked under the narration). Both stream: a chunk of audio at a time.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from describe_local.audio import resample

log = logging.getLogger(__name__)

DUCK_GAIN = 0.3  # the original sound under narration (about -10 dB)
RAMP_S = 0.15  # how long the ducking takes to fade in and out
CHUNK_S = 1.0
AUDIO_TITLE = "Audio description"
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


def _encoder(container: av.container.OutputContainer, rate: int, layout: str,
             language: str, title: str) -> av.audio.stream.AudioStream:
    stream = container.add_stream("aac", rate=rate)
    stream.layout = layout
    stream.bit_rate = 96_000 if layout == "mono" else 128_000
    stream.metadata["language"] = language3(language)
    stream.metadata["title"] = title
    stream.metadata["handler_name"] = title
    return stream


class _AacWriter:
    """Float chunks in, AAC packets muxed, with sample-exact timestamps."""

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


def write_narration(store: ClipStore, duration: float, path: Path, language: str) -> None:
    """The narration alone, silence between clips, ``duration`` seconds long, as AAC in ``path`` (.m4a)."""
    with av.open(str(path), "w", format="ipod") as container:
        writer = _AacWriter(container, _encoder(container, store.rate, "mono", language, AUDIO_TITLE))
        total = max(duration, *(c.end(store.rate) for c in store.clips)) if store.clips else duration
        step = int(CHUNK_S * store.rate)
        for first in range(0, round(total * store.rate), step):
            chunk = np.zeros((min(step, round(total * store.rate) - first), 1), np.float32)
            store.mix_into(chunk, first / store.rate, store.rate)
            writer.write(chunk)
        writer.close()


def write_described(source: Path, store: ClipStore, duration: float, path: Path, language: str,
                    progress: Callable[[float], None] | None = None) -> None:
    """``source`` remuxed into ``path`` (MP4): its video and audio copied, plus a second audio track,
    the original sound ducked under the narration, titled :data:`AUDIO_TITLE`."""
    spans = [(c.start, c.end(store.rate)) for c in store.clips]
    with av.open(str(source), metadata_errors="replace") as src, av.open(str(path), "w", format="mp4") as out:
        copied = {}
        for stream in src.streams:
            if stream.type in ("video", "audio"):
                copied[stream.index] = out.add_stream_from_template(stream)
        original = src.streams.audio[0] if src.streams.audio else None
        rate = original.rate if original is not None and original.rate else 48_000
        layout = "stereo" if original is not None and original.channels >= 2 else "mono"
        described = _encoder(out, rate, layout, language, AUDIO_TITLE)
        writer = _AacWriter(out, described)
        channels = writer.channels
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)

        def add_original(frame: av.AudioFrame) -> None:
            for part in resampler.resample(frame):
                samples = part.to_ndarray().T.astype(np.float32)  # samples x channels
                start = writer.samples
                if part.pts is not None and part.time is not None:
                    # A hole in the original (a dropped packet): silence, so later sound stays in sync.
                    hole = round(part.time * rate) - start
                    if hole > rate // 10:
                        add_silence(start / rate + hole / rate)
                        start = writer.samples
                times = (start + np.arange(len(samples))) / rate
                samples *= duck_gain(times, spans)[:, None]
                store.mix_into(samples, start / rate, rate)
                writer.write(samples)

        def add_silence(until: float) -> None:
            while writer.samples < round(until * rate):
                n = min(int(CHUNK_S * rate), round(until * rate) - writer.samples)
                chunk = np.zeros((n, channels), np.float32)
                store.mix_into(chunk, writer.samples / rate, rate)
                writer.write(chunk)

        for packet in src.demux(*[src.streams[i] for i in copied]):
            if packet.dts is None:
                continue  # the demuxer's flush packet
            in_stream = packet.stream
            if original is not None and in_stream.index == original.index:
                try:
                    for frame in packet.decode():
                        add_original(frame)
                except (av.error.FFmpegError, ValueError) as exc:
                    log.warning("a damaged audio packet is left silent in the described track: %s", exc)
            elif original is None and packet.pts is not None and in_stream.type == "video":
                add_silence(float(packet.pts * in_stream.time_base))  # narration alone, kept level with the picture
            packet.stream = copied[in_stream.index]
            out.mux(packet)
            if progress is not None and packet.pts is not None and in_stream.type == "video":
                progress(float(packet.pts * in_stream.time_base))
        if original is not None:
            for part in resampler.resample(None):
                writer.write(part.to_ndarray().T.astype(np.float32))
        add_silence(max([duration, *(b for _, b in spans)]))
        writer.close()
