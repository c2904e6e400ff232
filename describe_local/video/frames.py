"""Decoding a video's pictures with PyAV: small grey frames for shot detection, upright RGB for describing.

In: a video file. Out: :class:`VideoInfo` (:func:`probe`) and a stream of :class:`SmallFrame`
(:func:`iter_frames`), each with its time from the frame's own pts (variable frame rate), its
small grey picture, and a way to get the full picture upright (rotation flag applied) at its
display aspect (sample aspect ratio applied). Frames are decoded one at a time; nothing holds
the whole video.

Decoding keeps to a budget, as photos do: the picture size and length are checked from the
stream's header before any frame is decoded (:func:`check_header`: at most 8K, at most
:data:`MAX_VIDEO_SECONDS`), the decoder runs fewer threads on large pictures (each thread holds
frames of its own), and a frame larger than :data:`WORKING_SIDE` is shrunk as soon as it is
decoded, so no full-size frame is kept or converted to RGB.
"""

from __future__ import annotations

import logging
import os
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
# The largest picture decoded (8K: 8192 x 4320) and the longest video (6 hours), from the header.
MAX_VIDEO_SIDE = 8192
MAX_VIDEO_PIXELS = 8192 * 4320
MAX_VIDEO_SECONDS = 6 * 3600
# Frames larger than this (long side) are shrunk as they are decoded: the photos' working size.
WORKING_SIDE = 4096
# Decoded pictures' worth of bytes the decoder's threads may hold between them.
_THREAD_BUDGET = 256 << 20
# Demuxers of single pictures (a JPEG renamed .mp4 opens as "jpeg_pipe"): refused as stills.
STILL_FORMATS = frozenset({"image2"})


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


def ffmpeg_name(path: Path) -> str:
    """``path`` as FFmpeg must be given it: absolute, so that a name such as ``javascript:x.mp4`` is a
    file, not a protocol FFmpeg does not know."""
    return os.path.abspath(path)


def open_video(path: Path) -> av.container.InputContainer:
    """``path`` opened for reading; :class:`VideoError` for a file that is not a video with pictures."""
    try:
        container = av.open(ffmpeg_name(path), metadata_errors="replace")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoError(f"{path.name} is not a video PyAV can read ({_why(exc)})") from None
    if picture_stream(container) is None:
        container.close()
        raise VideoError(f"{path.name} has no video stream (audio only?); nothing to describe")
    if container.format.name in STILL_FORMATS or container.format.name.endswith("_pipe"):
        kind = container.streams.video[0].codec_context.name.upper()  # e.g. MJPEG, PNG
        container.close()
        raise VideoError(f"{path.name} is a still image ({kind}), not a video; describe it with "
                         "'describe-local describe' instead")
    stream = picture_stream(container)
    try:
        check_header(path.name, stream.codec_context.width, stream.codec_context.height, _duration(container, stream))
    except VideoError:
        container.close()
        raise
    return container


def picture_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream | None:
    """The first video stream that is moving pictures (not an audio file's cover art)."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def check_header(name: str, width: int, height: int, duration: float) -> None:
    """Refuse a video whose picture (stored size) or length is over the limits, before decoding."""
    if max(width, height) > MAX_VIDEO_SIDE or width * height > MAX_VIDEO_PIXELS:
        raise VideoError(
            f"{name}: {width}x{height} pixels is over the limit for videos ({MAX_VIDEO_SIDE} pixels a side, "
            f"{MAX_VIDEO_PIXELS / 1e6:.1f} megapixels: 8K); scale it down first (e.g. ffmpeg -vf scale=3840:-2)")
    if duration > MAX_VIDEO_SECONDS:
        raise VideoError(f"{name}: {duration / 3600:.1f} hours is over the limit of {MAX_VIDEO_SECONDS // 3600} hours "
                         "for a video; cut it into parts first")


def probe(path: Path) -> VideoInfo:
    """The :class:`VideoInfo` of ``path``, from its headers and first frame (raises :class:`VideoError`)."""
    with open_video(path) as container:
        stream = picture_stream(container)
        _limit_threads(stream)
        duration = _duration(container, stream)
        rotation, seen = 0, 0
        try:
            for frame in container.decode(stream):  # two frames: a video, not a still
                if seen == 0:
                    rotation = rotation_of(frame)
                seen += 1
                if seen == 2:
                    break
        except _DECODE_ERRORS as exc:
            if seen == 0:
                raise VideoError(f"{path.name}: cannot decode its first frame ({_why(exc)})") from None
        if seen == 0:
            raise VideoError(f"{path.name} has no frames to describe (an empty or damaged video)")
        if seen == 1:
            raise VideoError(f"{path.name} holds a single picture, a still image rather than a video; describe it "
                             "with 'describe-local describe' instead")
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
        stream = picture_stream(container)
        stream.thread_type = "AUTO"  # frame threads: the decoder is most of the cost
        _limit_threads(stream)
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
            while frames:
                frame = frames.pop(0)  # the list holds no decoded picture once it is passed on
                if frame.pts is None:
                    continue
                t = float(frame.pts * time_base)
                if t < next_time:
                    continue
                if t > MAX_VIDEO_SECONDS or frame.width * frame.height > MAX_VIDEO_PIXELS:
                    check_header(path.name, frame.width, frame.height, t)  # a header that said less
                next_time = t + every_s
                rotation = rotation_of(frame)
                frame = working_frame(frame)
                count += 1
                yield SmallFrame(t, small_grey(frame, rotation, sar), frame, rotation, sar)
                del frame  # the decoder's own picture is not held while the next one decodes
        if count == 0:
            raise VideoError(f"{path.name}: no frame could be decoded (damaged or truncated video)")
        expected = _duration(container, stream)
        if expected and t < expected - max(1.0, 0.1 * expected):
            # The index promises more than the file holds: cut short (a partial download).
            raise VideoError(f"{path.name} is truncated: its pictures stop at {t:.1f} s of {expected:.1f} s")
        if damaged:
            log.warning("%s: %d damaged packet(s) skipped", path.name, damaged)


def working_frame(frame: av.VideoFrame, max_side: int = WORKING_SIDE) -> av.VideoFrame:
    """``frame`` shrunk (in its own pixel format, in the decoder's scaler) so that its stored
    long side is at most ``max_side``; itself when it is small enough."""
    scale = max_side / max(frame.width, frame.height, 1)
    if scale >= 1.0:
        return frame
    width = max(2, round(frame.width * scale / 2) * 2)  # even: 4:2:0 chroma
    height = max(2, round(frame.height * scale / 2) * 2)
    return frame.reformat(width=width, height=height, interpolation="AREA")


def _limit_threads(stream: av.video.stream.VideoStream) -> None:
    """Fewer decoder threads for large pictures: each frame thread holds pictures of its own."""
    context = stream.codec_context
    picture = max(1, context.width * context.height) * 3 // 2  # 4:2:0 bytes
    stream.thread_count = max(1, min(os.cpu_count() or 1, 16, _THREAD_BUDGET // (4 * picture)))


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
