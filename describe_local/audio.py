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
    if pcm.dtype != np.int16 or pcm.ndim != 1:
        raise ValueError("encode_mp3 expects a 1-D int16 array")
    if sample_rate not in MP3_SAMPLE_RATES:
        raise ValueError(f"MP3 cannot carry {sample_rate} Hz; resample first")

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=sample_rate)
        stream.bit_rate = bitrate
        stream.layout = "mono"
        frame_size = stream.codec_context.frame_size or 1152
        for start in range(0, len(pcm), frame_size * 16):
            chunk = np.ascontiguousarray(pcm[start : start + frame_size * 16])
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = sample_rate
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


class Mp3Stream:
    """MP3 frames as the PCM comes, from one encoder for the whole stream, so that the bytes given
    so far always play and all of them decode to the same speech as :func:`encode_mp3` of the whole.

    Raw frames, no ID3 or Xing header (those need the length, unknown while speaking)::

        stream = Mp3Stream(22050)
        chunk = stream.feed(pcm)      # bytes ready now (the encoder keeps a frame or two back)
        tail = stream.finish()        # the rest
    """

    def __init__(self, sample_rate: int, *, bitrate: int = MP3_BITRATE) -> None:
        if sample_rate not in MP3_SAMPLE_RATES:
            raise ValueError(f"MP3 cannot carry {sample_rate} Hz; resample first")
        self.sample_rate = sample_rate
        self._codec = av.CodecContext.create("libmp3lame", "w")
        self._codec.sample_rate = sample_rate
        self._codec.layout = "mono"
        self._codec.format = "s16p"
        self._codec.bit_rate = bitrate
        self._codec.open()
        self._pts = 0

    def feed(self, pcm: np.ndarray) -> bytes:
        """Encode mono int16 ``pcm``; the MP3 bytes that are ready."""
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise ValueError("Mp3Stream expects a 1-D int16 array")
        if not len(pcm):
            return b""
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm).reshape(1, -1), format="s16p", layout="mono")
        frame.sample_rate, frame.pts = self.sample_rate, self._pts
        self._pts += len(pcm)
        return b"".join(bytes(packet) for packet in self._codec.encode(frame))

    def finish(self) -> bytes:
        """The last frames; the stream is done."""
        return b"".join(bytes(packet) for packet in self._codec.encode(None))


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
