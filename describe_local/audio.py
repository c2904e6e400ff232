"""Sound as mono 16-bit PCM: MP3 in and out, resampling and time-stretching.

Shared by speech (``say/``) and audio description (``video/``), as ``images.py`` is for
pictures. MP3 is encoded in-process with FFmpeg's libmp3lame (bundled in the PyAV wheel):
no temporary WAV file and no system ``ffmpeg`` binary are needed.
"""

from __future__ import annotations

import io

import av
import numpy as np

MP3_BITRATE = 64_000  # speech: 64 kb/s mono is transparent enough and small
MP3_SAMPLE_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


def encode_mp3(pcm: np.ndarray, sample_rate: int, *, bitrate: int = MP3_BITRATE) -> bytes:
    """Encode mono int16 ``pcm`` at ``sample_rate`` Hz as MP3 bytes."""
    stream = Mp3Stream(sample_rate, bitrate=bitrate)
    stream.feed(pcm)
    stream.finish()
    return stream.whole()


class Mp3Stream:
    """MP3 frames as the PCM comes, from one encoder, so that the frames given so far always play
    and, once finished, the whole file (:meth:`whole`) holds the very same frames::

        stream = Mp3Stream(22050)
        frames = stream.feed(pcm)     # raw MP3 frames ready now (the encoder keeps a frame or two back)
        frames = stream.finish()      # the rest
        mp3 = stream.whole()          # the same frames as a file, with the header that gives its exact length

    Raw frames carry no header (it needs the length, unknown while speaking): a decoder hears the
    encoder's few dozen milliseconds of padding that the whole file's header trims.
    """

    def __init__(self, sample_rate: int, *, bitrate: int = MP3_BITRATE) -> None:
        if sample_rate not in MP3_SAMPLE_RATES:
            raise ValueError(f"MP3 cannot carry {sample_rate} Hz; resample first")
        self.sample_rate = sample_rate
        # The encoder belongs to a container's stream, so that its frames can be muxed into a file at
        # the end; that container itself is never written.
        self._template = av.open(io.BytesIO(), mode="w", format="mp3")
        self._stream = self._template.add_stream("libmp3lame", rate=sample_rate)
        self._stream.bit_rate = bitrate
        self._stream.layout = "mono"
        self._codec = self._stream.codec_context
        self._codec.open()
        self._packets: list[av.Packet] = []
        self._pts = 0
        self._finished = False

    def feed(self, pcm: np.ndarray) -> bytes:
        """Encode mono int16 ``pcm``; the MP3 frames that are ready."""
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise ValueError("Mp3Stream expects a 1-D int16 array")
        frames = b""
        frame_size = self._codec.frame_size or 1152
        for start in range(0, len(pcm), frame_size * 16):
            chunk = np.ascontiguousarray(pcm[start : start + frame_size * 16])
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate, frame.pts = self.sample_rate, self._pts
            self._pts += len(chunk)
            frames += self._keep(self._codec.encode(frame))
        return frames

    def finish(self) -> bytes:
        """The last frames; nothing more can be fed."""
        if self._finished:
            return b""
        self._finished = True
        return self._keep(self._codec.encode(None))

    def whole(self) -> bytes:
        """Every frame as one MP3 file (after :meth:`finish`)."""
        buffer = io.BytesIO()
        with av.open(buffer, mode="w", format="mp3") as container:
            stream = container.add_stream_from_template(self._stream)
            for packet in self._packets:
                packet.stream = stream
                container.mux(packet)
        return buffer.getvalue()

    def _keep(self, packets: list[av.Packet]) -> bytes:
        self._packets += packets
        return b"".join(bytes(packet) for packet in packets)


def decode_audio(data: bytes) -> tuple[np.ndarray, int]:
    """Decode an audio file's bytes to mono float32 samples and their rate (for checks and tests)."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        rate = stream.rate
        parts = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
    samples = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    return samples, rate


def resample(pcm: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Linear resampling of int16 speech; enough to join voices with different rates."""
    if src_rate == dst_rate or len(pcm) == 0:
        return pcm
    n_out = round(len(pcm) * dst_rate / src_rate)
    x_old = np.arange(len(pcm), dtype=np.float64)
    x_new = np.linspace(0, len(pcm) - 1, n_out)
    return np.interp(x_new, x_old, pcm.astype(np.float64)).round().astype(np.int16)


def time_stretch(pcm: np.ndarray, factor: float, rate: int) -> np.ndarray:
    """Mono int16 ``pcm`` made ``factor`` times as long (below 1: shorter) at the same pitch.

    WSOLA: 30 ms windowed frames are overlap-added at half a frame apart, each taken from the
    input at ``1 / factor`` that spacing and shifted (within 10 ms) to line up with the natural
    continuation of the frame before it, so that voiced sounds keep their period.
    """
    if abs(factor - 1.0) < 1e-3 or len(pcm) == 0:
        return pcm
    frame = 2 * int(0.015 * rate)
    hop, tolerance = frame // 2, int(0.010 * rate)
    n_out = round(len(pcm) * factor)
    count = n_out // hop + 1
    step = hop / factor
    # Padded so that every frame and search window lies inside; index i of pcm is tolerance + i here.
    tail = frame + 2 * tolerance + int(step) + hop
    padded = np.concatenate([np.zeros(tolerance, np.float32), pcm.astype(np.float32), np.zeros(tail, np.float32)])
    window = np.hanning(frame + 1)[:frame].astype(np.float32)  # periodic: overlapping halves sum to 1
    out = np.zeros(count * hop + frame, np.float32)
    previous = 0
    for k in range(count):
        nominal = min(round(k * step), len(pcm))
        if k == 0:
            start = nominal
        else:
            natural = padded[previous + tolerance + hop : previous + tolerance + hop + frame]
            region = padded[nominal : nominal + frame + 2 * tolerance]
            start = nominal - tolerance + int(np.argmax(np.correlate(region, natural, mode="valid")))
        out[k * hop : k * hop + frame] += padded[start + tolerance : start + tolerance + frame] * window
        previous = start
    return np.clip(np.round(out[:n_out]), -32768, 32767).astype(np.int16)
