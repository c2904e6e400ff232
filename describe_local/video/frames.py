"""Decoding a video's pictures with PyAV: small grey frames for shot detection, upright RGB for describing.

In: a video file. Out: :class:`VideoInfo` (:func:`probe`) and a stream of :class:`SmallFrame`
(:func:`iter_frames`), each with its time from the frame's own pts (variable frame rate), its
small grey picture, and a way to get the full picture upright (rotation flag applied) at its
display aspect (sample aspect ratio applied). Frames are decoded one at a time; nothing holds
the whole video.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from describe_local.errors import VideoError

log = logging.getLogger(__name__)

SMALL_WIDTH = 160  # wide enough for cut statistics, small enough to be cheap
MAX_FRAME_SIDE = 1920  # a described frame's long side (the describer shrinks further as it needs)
_DECODE_ERRORS = (av.error.FFmpegError, ValueError)  # a damaged packet: InvalidDataError and kin


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds: its length, picture size (upright, display aspect) and audio."""

    duration: float  # seconds
    width: int  # upright display width
    height: int
    rotation: int  # degrees clockwise applied to come out upright (0, 90, 180, 270)
    has_audio: bool
    audio_language: str | None


@dataclass
class SmallFrame:
    """One decoded frame: its time, a small grey picture, and the full frame to make upright."""

    time: float
    grey: np.ndarray  # H x SMALL_WIDTH float32, 0..255, upright
    _frame: av.VideoFrame
    _rotation: int
    _sar: Fraction

    def picture(self) -> Image.Image:
        """The whole frame as upright RGB at its display aspect, long side at most :data:`MAX_FRAME_SIDE`."""
        image = self._frame.to_image()
        return _display(image, self._rotation, self._sar, MAX_FRAME_SIDE)


def open_video(path: Path) -> av.container.InputContainer:
    """``path`` opened for reading; :class:`VideoError` for a file that is not a video with pictures."""
    try:
        container = av.open(str(path), metadata_errors="replace")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoError(f"{path.name} is not a video PyAV can read ({_why(exc)})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path.name} has no video stream (audio only?); nothing to describe")
    return container


def probe(path: Path) -> VideoInfo:
    """The :class:`VideoInfo` of ``path``, from its headers and first frame (raises :class:`VideoError`)."""
    with open_video(path) as container:
        stream = container.streams.video[0]
        duration = _duration(container, stream)
        rotation = 0
        try:
            for frame in container.decode(stream):
                rotation = rotation_of(frame)
                break
        except _DECODE_ERRORS as exc:
            raise VideoError(f"{path.name}: cannot decode its first frame ({_why(exc)})") from None
        width, height = display_size(stream.codec_context.width, stream.codec_context.height,
                                     _sar_of(stream), rotation)
        audio = container.streams.audio[0] if container.streams.audio else None
        language = (audio.metadata.get("language") if audio is not None else None) or None
        return VideoInfo(duration, width, height, rotation, audio is not None,
                         None if language == "und" else language)


def iter_frames(path: Path, every_s: float = 0.0) -> Iterator[SmallFrame]:
    """Each frame of ``path`` (or one per ``every_s`` seconds) as a :class:`SmallFrame`, in order.

    A packet that fails to decode (a damaged frame) is skipped with a log line; a file that ends
    early (truncated) stops the stream there. Raises :class:`VideoError` only when no frame at all decodes.
    """
    with open_video(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame threads: the decoder is most of the cost
        sar = _sar_of(stream)
        time_base = stream.time_base or Fraction(1, 90000)
        next_time, count, damaged, t = -1e9, 0, 0, 0.0
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except _DECODE_ERRORS as exc:
                damaged += 1
                log.warning("skipping a damaged frame near %.2f s: %s", _packet_time(packet, time_base), _why(exc))
                continue
            for frame in frames:
                if frame.pts is None:
                    continue
                t = float(frame.pts * time_base)
                if t < next_time:
                    continue
                next_time = t + every_s
                rotation = rotation_of(frame)
                count += 1
                yield SmallFrame(t, small_grey(frame, rotation, sar), frame, rotation, sar)
        if count == 0:
            raise VideoError(f"{path.name}: no frame could be decoded (damaged or truncated video)")
        expected = _duration(container, stream)
        if expected and t < expected - max(1.0, 0.1 * expected):
            # The index promises more than the file holds: cut short (a partial download).
            raise VideoError(f"{path.name} is truncated: its pictures stop at {t:.1f} s of {expected:.1f} s")
        if damaged:
            log.warning("%s: %d damaged packet(s) skipped", path.name, damaged)


def small_grey(frame: av.VideoFrame, rotation: int, sar: Fraction) -> np.ndarray:
    """``frame`` shrunk to :data:`SMALL_WIDTH` wide (upright, display aspect) as float32 grey."""
    width, height = display_size(frame.width, frame.height, sar, rotation)
    # Shrink in the decoder's scaler before rotating: the sizes swap for 90/270.
    if rotation in (90, 270):
        out_h = SMALL_WIDTH
        out_w = max(8, round(SMALL_WIDTH * height / width))
    else:
        out_w = SMALL_WIDTH
        out_h = max(8, round(SMALL_WIDTH * height / width))
    grey = frame.reformat(width=out_w, height=out_h, format="gray").to_ndarray()
    return np.rot90(grey, k=-rotation // 90).astype(np.float32)


def rotation_of(frame: av.VideoFrame) -> int:
    """Degrees clockwise to turn ``frame`` upright, from its display matrix (0, 90, 180 or 270)."""
    try:
        counter_clockwise = float(frame.rotation or 0)  # how the stored picture is turned, counter-clockwise
    except (AttributeError, ValueError, TypeError):
        return 0
    return round(-counter_clockwise / 90) * 90 % 360


def display_size(width: int, height: int, sar: Fraction, rotation: int) -> tuple[int, int]:
    """The upright size a ``width`` x ``height`` picture is shown at: widened by its sample aspect
    ratio, then turned."""
    shown_w = max(1, round(width * float(sar))) if sar > 0 else width
    return (height, shown_w) if rotation in (90, 270) else (shown_w, height)


def _display(image: Image.Image, rotation: int, sar: Fraction, max_side: int) -> Image.Image:
    """``image`` at its display aspect, turned upright and shrunk to ``max_side``."""
    width, height = image.size
    shown_w = max(1, round(width * float(sar))) if sar > 0 else width
    scale = min(1.0, max_side / max(shown_w, height))
    size = (max(1, round(shown_w * scale)), max(1, round(height * scale)))
    if size != image.size:
        image = image.resize(size, Image.Resampling.BILINEAR)
    turn = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}
    return image.transpose(turn[rotation]) if rotation in turn else image


def _sar_of(stream: av.video.stream.VideoStream) -> Fraction:
    sar = stream.codec_context.sample_aspect_ratio or stream.sample_aspect_ratio
    return Fraction(sar) if sar else Fraction(1)


def _duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return 0.0


def _packet_time(packet: av.Packet, time_base: Fraction) -> float:
    return float(packet.pts * time_base) if packet.pts is not None else -1.0


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
