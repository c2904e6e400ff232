"""``describe-local video`` on the real clips in ../shared/data/video: cuts, gaps, outputs, bad input."""

from __future__ import annotations

import csv
import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from describe_local.cli import main
from describe_local.video import frames, narration, shots, vad
from tests.unit.test_video_logic import parse_vtt

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def videos(shared_data: Path) -> Path:
    folder = shared_data / "video"
    if not (folder / "testvideo.mp4").is_file():
        pytest.skip(f"no test videos in {folder}")
    return folder


@pytest.fixture(scope="module")
def describer(tmp_path_factory: pytest.TempPathFactory, make_settings, videos):
    from describe_local.pipeline import Describer

    with Describer.load(make_settings(tmp_path_factory.mktemp("video"))) as d:
        yield d


@pytest.fixture(scope="module")
def described(videos: Path, describer, tmp_path_factory: pytest.TempPathFactory):
    """Each clip described once, with and without --allow-overlap: name -> (report, out folder)."""
    from describe_local.video.describe import describe_video

    done = {}
    for name, overlap in (("issue-195-aspect-ratio", False), ("issue-195-aspect-ratio", True),
                          ("issue-134-rotate", False)):
        out = tmp_path_factory.mktemp(name)
        report = describe_video(videos / f"{name}.mp4", out, describer, allow_overlap=overlap)
        done[name + ("+overlap" if overlap else "")] = (report, out)
    return done


def test_testvideo_cuts_are_found_within_two_frames_and_no_others(videos: Path):
    with (videos / "testvideo_scenes.csv").open() as f:
        rows = [row for row in csv.DictReader(f) if row.get("frame")]  # the file ends in a note
        truth = [float(row["frame"]) for row in rows if float(row["frame"]) > 0]
    fps = float(Fraction(30000, 1001))
    found = shots.cut_times((f.time, f.grey) for f in frames.iter_frames(videos / "testvideo.mp4"))
    assert len(found) == len(truth) == 2
    for cut, frame in zip(found, truth, strict=True):
        assert abs(cut * fps - frame) <= 2, (cut * fps, frame)


def test_narration_falls_only_where_the_vad_finds_no_speech(described):
    report, out = described["issue-195-aspect-ratio"]
    assert report.speech, "the VAD finds the dialogue"
    assert narration.overlap_s(report.cues, report.speech) == 0
    assert len(report.cues) + len(report.dropped) >= 1  # every line is either placed or reported
    vtt = (out / "issue-195-aspect-ratio.described.vtt").read_text(encoding="utf-8")
    assert [c[:2] for c in parse_vtt(vtt)] == [(round(c.start, 3), round(c.end, 3)) for c in report.cues]
    # Speech here is continuous: with --allow-overlap the dropped lines are spoken over it, marked so.
    overlapping, _ = described["issue-195-aspect-ratio+overlap"]
    assert len(overlapping.cues) >= len(report.cues) + len(report.dropped) - 1
    assert all(c.overlaps for c in overlapping.cues if narration.overlap_s([c], overlapping.speech) > 0)


def test_the_described_mp4_has_two_audio_tracks_and_plays(described):
    report, out = described["issue-195-aspect-ratio"]
    path = out / "issue-195-aspect-ratio.described.mp4"
    with av.open(str(path)) as container:
        assert len(container.streams.video) == 1 and len(container.streams.audio) == 2
        second = container.streams.audio[1]
        assert second.metadata.get("handler_name") == "Audio description"
        assert second.metadata.get("language") == "eng"
        counts = {"video": 0, "audio": 0}
        for frame in container.decode(container.streams.video[0], *container.streams.audio):
            counts["video" if isinstance(frame, av.VideoFrame) else "audio"] += 1
    assert counts["video"] >= 600 and counts["audio"] > 1000
    with av.open(str(path)) as container, av.open(report.source) as source:
        # Copied, not re-encoded: the video packets are the same bytes.
        first = next(p for p in container.demux(container.streams.video[0]) if p.size)
        original = next(p for p in source.demux(source.streams.video[0]) if p.size)
        assert bytes(first) == bytes(original)
    html = (out / "issue-195-aspect-ratio.html").read_text(encoding="utf-8")
    assert re.search(r'<track kind="descriptions" src="issue-195-aspect-ratio.described.vtt"', html)
    assert (out / "issue-195-aspect-ratio.narration.m4a").stat().st_size > 0
    assert not list(out.glob(".*part*")), "no temporary files left"


def test_rotated_frames_come_out_upright_and_the_screen_text_is_read(described, videos: Path):
    info = frames.probe(videos / "issue-134-rotate.mp4")
    assert info.rotation in (90, 270) and info.height > info.width
    report, _out = described["issue-134-rotate"]
    read = " ".join(text for _, text in report.read)
    assert "send spike" in " ".join(read.lower().split()), read
    assert report.cues, "something is narrated in the pauses"


def test_rotated_video_is_narrated_by_the_english_voice(described):
    report, _out = described["issue-134-rotate"]
    assert report.voices == ["en_US-joe-medium"] and report.notes == []


def test_a_narration_whose_translation_is_missing_is_spoken_by_the_english_voice(videos: Path, tmp_path: Path):
    """A Spanish voice is installed but no English→Spanish translation: the describer's plan falls
    back to English and says so, and the English narration must not be read by the Spanish voice."""
    from describe_local.pipeline import DescribeOptions, Describer
    from describe_local.video.describe import describe_video
    from tests.conftest import isolated_settings
    from tests.integration.test_voices import _add_voice

    settings = isolated_settings(tmp_path)
    _add_voice(settings.models_dir, "es_ES-joe-medium", "medium")
    (tmp_path / "out").mkdir()
    with Describer.load(settings, stages=("text",)) as describer:
        assert describer.speak("Hola.", "es").voice == "es_ES-joe-medium"  # Spanish text gets the Spanish voice
        report = describe_video(videos / "issue-134-rotate.mp4", tmp_path / "out", describer,
                                DescribeOptions(lang="es"))
    assert report.cues, "something is narrated"
    assert report.voices == ["en_US-joe-medium"], report.voices
    assert any("no translation model for spanish" in note.lower() and "in english" in note.lower()
               for note in report.notes), \
        report.notes
    assert report.to_json()["voices"] == ["en_US-joe-medium"]


def test_non_square_pixels_are_shown_at_their_display_aspect(videos: Path):
    first = next(iter(frames.iter_frames(videos / "issue-195-aspect-ratio.mp4")))
    assert first.picture().size == (1024, 576)


def test_the_vad_runs_without_torch(videos: Path):
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from describe_local.video.vad import speech_in; "
            f"speech_in(Path({str(videos / 'issue-134-rotate.mp4')!r})); print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
    assert vad.speech_in(videos / "testvideo.mp4") == []  # no audio stream: no speech


# -- bad input ---------------------------------------------------------------------------------------------


def _audio_only(path: Path) -> None:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)


def _truncated_faststart(source: Path, path: Path) -> None:
    """``source`` remuxed with its index first, then cut in half: it opens, but its pictures stop early."""
    whole = path.with_suffix(".whole.mp4")
    with av.open(str(source)) as src, av.open(str(whole), "w", options={"movflags": "faststart"}) as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    data = whole.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    whole.unlink()


def _frames_clip(path: Path, count: int) -> None:
    """An H.264 MP4 of ``count`` frames (0: a video stream with no pictures in it)."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(count):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


BAD_KINDS = ["not a video", "audio only", "truncated", "truncated index first", "a JPEG named .mp4",
             "a PNG", "one frame", "no frames"]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_input_is_one_line_a_nonzero_exit_and_nothing_written(kind, tmp_path: Path, videos: Path, capsys):
    bad = tmp_path / ("bad.png" if kind == "a PNG" else "bad.mp4")
    photos = videos.parent / "faces" / "photos"
    if kind == "not a video":
        bad.write_text("this is a text file, not a video\n")
    elif kind == "audio only":
        _audio_only(bad)
    elif kind == "a JPEG named .mp4":
        bad.write_bytes((photos / "obama_small.jpg").read_bytes())
    elif kind == "a PNG":
        bad.write_bytes((photos / "alex-lacamoire.png").read_bytes())
    elif kind in ("one frame", "no frames"):
        _frames_clip(bad, 1 if kind == "one frame" else 0)
    elif kind == "truncated":
        data = (videos / "issue-134-rotate.mp4").read_bytes()
        bad.write_bytes(data[: len(data) // 3])
    else:
        _truncated_faststart(videos / "issue-134-rotate.mp4", bad)
    out = tmp_path / "out"
    code = main(["video", str(bad), "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 3
    assert err.startswith("describe-local: error:") and len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    if kind in ("a JPEG named .mp4", "a PNG", "one frame"):
        assert "still image" in err, err
    assert not out.exists() or list(out.iterdir()) == []
