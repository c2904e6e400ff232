"""Where the video's own speech is: Silero VAD (its ONNX model, run with onnxruntime, no torch).

In: a video file. Out: speech intervals in seconds (:func:`speech_in`). The audio is decoded and
resampled to 16 kHz mono a packet at a time and scored in 32 ms windows as it comes, so memory
holds one float per window, never the audio. :func:`speech_segments` is the pure part: window
probabilities to intervals, with hysteresis and padding.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import av
import numpy as np

from describe_local.errors import ModelNotInstalled
from describe_local.video.frames import ffmpeg_name

log = logging.getLogger(__name__)

RATE = 16_000
WINDOW = 512  # samples per score: what Silero v5 takes at 16 kHz
CONTEXT = 64  # samples of the window before, which the model also reads
WINDOW_S = WINDOW / RATE
ON, OFF = 0.5, 0.35  # speech starts above ON, ends below OFF (Silero's own defaults)
MIN_SPEECH_S = 0.25  # shorter bursts are noise
MIN_SILENCE_S = 0.3  # shorter pauses are breaths inside a line, not room for narration
PAD_S = 0.1  # kept clear around speech, for the consonants the windows blur

Interval = tuple[float, float]
VAD_INSTALL = "pip install --no-deps 'silero-vad>=5'"


def model_path() -> Path:
    """The ``silero_vad.onnx`` shipped in the silero-vad package, found without importing it (that
    would import torch)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalled(f"the voice activity model is missing: {VAD_INSTALL} (--no-deps: its "
                                "metadata asks for torch, which only its own Python code uses)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise ModelNotInstalled(f"the voice activity model is missing: no {path}; reinstall it: {VAD_INSTALL}")
    return path


class SileroVad:
    """Silero VAD v5 in onnxruntime: call :meth:`score` on consecutive 512-sample windows."""

    def __init__(self) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = options.intra_op_num_threads = 1  # tiny model: threads cost more
        self._session = onnxruntime.InferenceSession(str(model_path()), sess_options=options,
                                                     providers=["CPUExecutionProvider"])
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), np.float32)
        self._context = np.zeros((1, CONTEXT), np.float32)

    def score(self, window: np.ndarray) -> float:
        """The probability (0..1) that ``window`` (512 float32 samples, -1..1) holds speech."""
        x = np.concatenate([self._context, window.reshape(1, WINDOW).astype(np.float32)], axis=1)
        out, self._state = self._session.run(None, {"input": x, "state": self._state,
                                                    "sr": np.array(RATE, np.int64)})
        self._context = x[:, -CONTEXT:]
        return float(out.reshape(-1)[0])


def audio_16k(path: Path) -> Iterator[np.ndarray]:
    """The first audio stream of ``path`` as float32 mono 16 kHz chunks (a packet's worth each).

    Nothing when the file has no audio; a packet that fails to decode is skipped (its time is lost,
    so later speech would shift: it is filled with silence of the packet's length instead).
    """
    with av.open(ffmpeg_name(path), metadata_errors="replace") as container:
        if not container.streams.audio:
            return
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        produced = 0  # samples given out, to fill damaged stretches at their time
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except (av.error.FFmpegError, ValueError) as exc:
                log.warning("skipping a damaged audio packet: %s", exc)
                continue
            for frame in frames:
                if frame.pts is not None and frame.time is not None:
                    gap = round(frame.time * RATE) - produced
                    if gap > RATE // 10:  # a hole of over 100 ms: silence, so that times stay true
                        produced += gap
                        yield np.zeros(gap, np.float32)
                for out in resampler.resample(frame):
                    samples = out.to_ndarray().reshape(-1)
                    produced += len(samples)
                    yield samples
        for out in resampler.resample(None):
            yield out.to_ndarray().reshape(-1)


def probabilities(chunks: Iterator[np.ndarray], vad: SileroVad,
                  progress: Callable[[float], None] | None = None) -> np.ndarray:
    """Speech probability per :data:`WINDOW_S` window of the 16 kHz ``chunks`` (float32 array)."""
    scores: list[float] = []
    pending = np.zeros(0, np.float32)
    for chunk in chunks:
        pending = np.concatenate([pending, chunk])
        usable = len(pending) - len(pending) % WINDOW
        for start in range(0, usable, WINDOW):
            scores.append(vad.score(pending[start : start + WINDOW]))
        pending = pending[usable:]
        if progress is not None:
            progress(len(scores) * WINDOW_S)
    if len(pending):
        scores.append(vad.score(np.pad(pending, (0, WINDOW - len(pending)))))
    return np.asarray(scores, np.float32)


def speech_segments(probs: Sequence[float] | np.ndarray, window_s: float = WINDOW_S) -> list[Interval]:
    """Speech intervals (seconds) from per-window probabilities: on above :data:`ON`, off below
    :data:`OFF`, pauses under :data:`MIN_SILENCE_S` bridged, bursts under :data:`MIN_SPEECH_S`
    dropped, each padded by :data:`PAD_S` (clipped at 0)."""
    raw: list[Interval] = []
    start: float | None = None
    for i, p in enumerate(probs):
        t = i * window_s
        if start is None and p >= ON:
            start = t
        elif start is not None and p < OFF:
            raw.append((start, t))
            start = None
    if start is not None:
        raw.append((start, len(probs) * window_s))
    merged: list[Interval] = []
    for a, b in raw:
        if merged and a - merged[-1][1] < MIN_SILENCE_S:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return [(max(0.0, a - PAD_S), b + PAD_S) for a, b in merged if b - a >= MIN_SPEECH_S]


def speech_in(path: Path, progress: Callable[[float], None] | None = None) -> list[Interval]:
    """The speech intervals of ``path``'s first audio stream (none without audio)."""
    return speech_segments(probabilities(audio_16k(path), SileroVad(), progress))


def gaps(speech: Sequence[Interval], duration: float) -> list[Interval]:
    """The stretches of ``0..duration`` that no speech interval covers, in order."""
    out: list[Interval] = []
    t = 0.0
    for a, b in sorted(speech):
        if a > t:
            out.append((t, min(a, duration)))
        t = max(t, b)
    if t < duration:
        out.append((t, duration))
    return [(a, b) for a, b in out if b > a]
