"""Video pictures and lengths past the limits are refused from the header, before decoding,
and large frames are shrunk as they decode: real clips made here with PyAV, peak memory
measured in a child process."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from describe_local.errors import VideoError
from describe_local.video import frames

ROOT = Path(__file__).resolve().parents[2]
PEAK_MB = 600


def _clip(path: Path, width: int, height: int, count: int = 2, codec: str = "mjpeg", step: int = 1) -> Path:
    """A real clip of ``count`` flat frames, ``step`` ticks of 1/2 s apart (made one plane at a time)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=2, options={"threads": "1"})
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        stream.time_base = Fraction(1, 2)
        for i in range(count):
            frame = av.VideoFrame(width, height, stream.pix_fmt)
            for k, plane in enumerate(frame.planes):
                plane.update(bytes([(70 * i + 40 * k) % 256]) * plane.buffer_size)
            frame.pts, frame.time_base = i * step, Fraction(1, 2)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _peak(code: str) -> tuple[int, str, float]:
    """Run ``code`` in a fresh Python; its exit status, stderr and peak RSS in MB.

    The child's own high-water mark (VmHWM), not ``ru_maxrss``: on Linux that survives exec, so a
    child of a large pytest process would report the parent's peak."""
    hwm = "[l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0]"
    wrapped = (f"import sys\ntry:\n{''.join('    ' + line + chr(10) for line in code.splitlines())}"
               f"finally:\n    print('PEAK', {hwm}, file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", wrapped], capture_output=True, text=True, cwd=ROOT, timeout=300)
    peak = next(int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("PEAK"))
    return done.returncode, done.stderr, peak / 1024


def test_video_on_an_8000x8000_clip_is_refused_in_one_line_under_600_mb(tmp_path: Path):
    clip = _clip(tmp_path / "square.mkv", 8000, 8000)
    out = str(tmp_path / "out")
    status, stderr, peak = _peak(
        f"from describe_local.cli import main\nsys.exit(main(['video', {str(clip)!r}, '-o', {out!r}]))")
    assert status == 3, stderr[-2000:]
    errors = [line for line in stderr.splitlines() if line.startswith("describe-local: error")]
    assert len(errors) == 1 and "8000x8000 pixels is over the limit for videos" in errors[0], stderr[-2000:]
    assert "Traceback" not in stderr
    assert peak < PEAK_MB, f"peak {peak:.0f} MB"
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_an_8k_clip_is_shrunk_as_it_decodes_under_600_mb(tmp_path: Path):
    clip = _clip(tmp_path / "wide.mkv", 8192, 4320, count=6)
    status, stderr, peak = _peak(
        "from pathlib import Path\nfrom describe_local.video import frames\n"
        f"for f in frames.iter_frames(Path({str(clip)!r})):\n"
        f"    assert max(f._frame.width, f._frame.height) <= frames.WORKING_SIDE\n"
        "    picture = f.picture()\nprint(picture.size)")
    assert status == 0, stderr[-2000:]
    assert peak < PEAK_MB, f"peak {peak:.0f} MB"


def test_a_clip_longer_than_the_limit_is_refused_from_its_header(tmp_path: Path):
    hours = frames.MAX_VIDEO_SECONDS // 3600 + 1
    clip = _clip(tmp_path / "long.mkv", 64, 64, count=2, codec="mpeg4", step=hours * 3600 * 2)
    with pytest.raises(VideoError, match=f"hours is over the limit of {hours - 1} hours"):
        frames.probe(clip)


def test_a_frame_over_the_working_size_keeps_its_shape_and_pixels():
    frame = av.VideoFrame.from_ndarray(np.full((4320, 8192, 3), 200, np.uint8), format="rgb24")
    small = frames.working_frame(frame.reformat(format="yuv420p"))
    assert (small.width, small.height) == (4096, 2160)
    assert abs(int(small.to_ndarray(format="rgb24")[1000, 2000, 0]) - 200) <= 3
