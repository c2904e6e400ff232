"""Extended audio description's timeline: where the picture holds still, and for how long (pure logic
plus one cheap pass over the video's packets).

A :class:`Hold` stops the video at a moment of the source's timeline for some seconds while a
narration is spoken. The extended MP4 freezes the picture without re-encoding it: every video
packet from the hold on is shifted later, so the frame shown just before stays on screen. With
B-frames, a packet decoded before the hold can be shown after it, so a hold may only fall on a
*clean point* (:func:`clean_points`): a place in decoding order where every earlier packet is shown
before every later one. :func:`snap` moves each hold to the nearest such point.

The holds at one point play one after the other: hold ``k`` covers ``at + (the holds before it)``
for its ``seconds`` on the extended timeline.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av


@dataclass(frozen=True)
class Hold:
    """The picture holds still at ``at`` (seconds, source timeline) for ``seconds``."""

    at: float
    seconds: float
    packet: int = -1  # the first video packet (decoding order) shown after the hold, once snapped


@dataclass(frozen=True)
class CleanPoint:
    time: float  # seconds: the presentation time of the first frame shown after the point
    packet: int  # index (decoding order, packets with a timestamp) of the first packet after it


def clean_points(source: Path) -> list[CleanPoint]:
    """Every place in ``source``'s picture stream where a hold can go (read from packet headers; nothing
    is decoded)."""
    from describe_local.video.frames import ffmpeg_name, picture_stream

    with av.open(ffmpeg_name(source), metadata_errors="replace") as container:
        stream = picture_stream(container)
        if stream is None:
            return []
        time_base = stream.time_base
        pts = [p.pts if p.pts is not None else p.dts for p in container.demux(stream) if p.dts is not None]
    return points_of(pts, float(time_base))


def points_of(pts: Sequence[int], time_base: float) -> list[CleanPoint]:
    """The clean points of a picture stream whose packets, in decoding order, show at ``pts`` (ticks)."""
    points = []
    suffix_min = [0] * (len(pts) + 1)
    suffix_min[len(pts)] = 2**62
    for i in range(len(pts) - 1, -1, -1):
        suffix_min[i] = min(pts[i], suffix_min[i + 1])
    shown = -(2**62)
    for i in range(1, len(pts)):
        shown = max(shown, pts[i - 1])
        if shown < suffix_min[i]:
            points.append(CleanPoint(suffix_min[i] * time_base, i))
    return points


def snap(holds: Sequence[Hold], points: Sequence[CleanPoint]) -> list[Hold]:
    """Each hold moved to the nearest clean point, in order; holds that land on the same point stay
    apart, one after the other (each has its own narration)."""
    if not points:
        return []
    times = [p.time for p in points]
    out: list[Hold] = []
    for hold in sorted(holds, key=lambda h: h.at):
        i = bisect.bisect_left(times, hold.at)
        near = min((k for k in (i - 1, i) if 0 <= k < len(points)), key=lambda k: abs(times[k] - hold.at))
        point = points[near]
        out.append(Hold(point.time, hold.seconds, point.packet))
    return out


def extended_time(holds: Sequence[Hold], t: float) -> float:
    """Where the moment ``t`` of the source falls in the extended video (after every hold at or before it)."""
    return t + sum(h.seconds for h in holds if h.at <= t + 1e-9)


def packet_shift(holds: Sequence[Hold], packet: int) -> float:
    """Seconds the ``packet``-th video packet (decoding order) moves later in the extended video."""
    return sum(h.seconds for h in holds if h.packet <= packet)
