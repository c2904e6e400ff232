"""``describe-local video`` on the real clips in ../shared/data/video: cuts, gaps, outputs, bad input."""

from __future__ import annotations

import csv
import itertools
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
        report = describe_video(videos / f"{name}.mp4", out, describer, allow_overlap=overlap, extended=not overlap)
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
    in_pauses = [c for c in report.cues if not c.held]  # the others are spoken with the video held still
    assert narration.overlap_s(in_pauses, report.speech) == 0
    assert len(report.cues) >= 1 and report.dropped == []  # every line is placed: in a pause or held
    vtt = (out / "issue-195-aspect-ratio.described.vtt").read_text(encoding="utf-8")
    assert [c[:2] for c in parse_vtt(vtt)] == [(round(c.start, 3), round(c.end, 3)) for c in in_pauses]
    # Speech here is continuous: with --allow-overlap the dropped lines are spoken over it, marked so.
    overlapping, _ = described["issue-195-aspect-ratio+overlap"]
    assert len(overlapping.cues) >= len(report.cues) + len(report.dropped) - 1
    assert all(c.overlaps for c in overlapping.cues if narration.overlap_s([c], overlapping.speech) > 0)


def _ffprobe_streams(path: Path) -> list[dict] | None:
    """ffprobe's view of the audio streams, where ffprobe is installed (a second, independent reader)."""
    import json
    import shutil
    import subprocess

    if shutil.which("ffprobe") is None:
        return None
    done = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a", "-show_streams", "-of", "json", str(path)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)["streams"]


def _audio_seconds(path: Path, index: int) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[index]
        return sum(frame.samples for frame in container.decode(stream)) / stream.rate


DESCRIBED_FLAGS = av.stream.Disposition.default | av.stream.Disposition.visual_impaired


@pytest.mark.parametrize("name", ["issue-195-aspect-ratio", "issue-134-rotate"])
def test_the_described_mp4_plays_the_description_first_flagged_and_keeps_the_original(described, name):
    report, out = described[name]
    path = out / f"{name}.described.mp4"
    with av.open(report.source) as source:
        original_language = source.streams.audio[0].metadata.get("language", "und")
    with av.open(str(path)) as container:
        assert len(container.streams.video) == 1 and len(container.streams.audio) == 2
        first, second = container.streams.audio
        assert first.disposition & DESCRIBED_FLAGS == DESCRIBED_FLAGS, first.disposition
        assert first.metadata.get("title", first.metadata.get("name")) == "English (audio description)"
        assert first.metadata.get("handler_name") == "English (audio description)"
        assert first.metadata.get("language") == "eng"
        assert not second.disposition & (av.stream.Disposition.default | av.stream.Disposition.visual_impaired)
        assert second.metadata.get("language") == original_language  # "eng" in the documentary stays "eng"
        counts = {"video": 0, "audio": 0}
        for frame in container.decode(container.streams.video[0], *container.streams.audio):
            counts["video" if isinstance(frame, av.VideoFrame) else "audio"] += 1
    assert counts["video"] >= 200 and counts["audio"] > 400
    probed = _ffprobe_streams(path)
    if probed is not None:
        assert probed[0]["disposition"]["visual_impaired"] == 1 and probed[0]["disposition"]["default"] == 1
        assert probed[1]["disposition"]["default"] == 0
    with av.open(str(path)) as container, av.open(report.source) as source:
        # Copied, not re-encoded: the video packets and the original sound are the same bytes.
        for mine, theirs in ((container.streams.video[0], source.streams.video[0]),
                             (container.streams.audio[1], source.streams.audio[0])):
            first_packet = next(p for p in container.demux(mine) if p.size)
            original = next(p for p in source.demux(theirs) if p.size)
            assert bytes(first_packet) == bytes(original)
    html = (out / f"{name}.html").read_text(encoding="utf-8")
    assert re.search(rf'<track kind="descriptions" src="{name}.described.vtt"', html)
    assert "its first audio track, the one players choose, is the audio description" in html
    assert (out / f"{name}.narration.m4a").stat().st_size > 0
    assert not list(out.glob(".*part*")), "no temporary files left"


def test_original_first_keeps_the_old_order_and_the_page_plays_it(videos: Path, describer, tmp_path: Path):
    from describe_local.video.describe import describe_video

    report = describe_video(videos / "issue-134-rotate.mp4", tmp_path, describer, original_first=True)
    with av.open(str(tmp_path / "issue-134-rotate.described.mp4")) as container:
        first, second = container.streams.audio
        assert first.disposition & av.stream.Disposition.default
        assert not first.disposition & av.stream.Disposition.visual_impaired
        assert second.disposition & av.stream.Disposition.visual_impaired
    names = sorted(Path(f).name for f in report.files)
    assert "issue-134-rotate.original.mp4" not in names  # the described MP4 already starts with the original
    html = (tmp_path / "issue-134-rotate.html").read_text(encoding="utf-8")
    assert 'src="issue-134-rotate.described.mp4"' in html and "its first audio track is the original sound" in html


def test_extended_mode_holds_the_picture_for_every_narration_that_finds_no_pause(described, videos: Path):
    """The documentary's dialogue never pauses long enough: every narration is spoken with the
    picture held still, the video and both audio tracks longer by exactly the holds."""
    report, out = described["issue-195-aspect-ratio"]
    whole = [c.fuller or c for c in report.cues]  # what extended description says
    held = [c for c in whole if c.held]
    assert held and report.dropped == []
    path = out / "issue-195-aspect-ratio.extended.mp4"
    frame = 1 / 25
    with av.open(report.source) as source:
        original = float(source.streams.video[0].duration * source.streams.video[0].time_base)
    added = sum(c.hold for c in held)
    assert report.extended_duration == pytest.approx(original + added, abs=frame)
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        times = [f.time for f in container.decode(video)]
        assert float(video.duration * video.time_base) == pytest.approx(original + added, abs=frame)
        assert [s.disposition & DESCRIBED_FLAGS for s in container.streams.audio] == [DESCRIBED_FLAGS, 0]
        assert container.streams.audio[1].metadata.get("language") == "eng"
    assert len(times) == 628  # every frame kept, none re-encoded away
    freezes = [(a, b) for a, b in itertools.pairwise(times) if b - a > 0.2]  # a frame held on screen
    assert [round(b - a - frame, 2) for a, b in freezes] == pytest.approx([c.hold for c in held], abs=frame)
    with av.open(str(path)) as container:  # the lengths players show, from the MP4's own tables
        for stream in container.streams.audio:
            assert float(stream.duration * stream.time_base) == pytest.approx(original + added, abs=frame)
    for index in (0, 1):
        # Decoded, sample by sample: PyAV also hands out the AAC encoder's priming (1024 samples), which
        # players skip.
        assert _audio_seconds(path, index) == pytest.approx(original + added, abs=frame + 1024 / 48000), index
    # The extended VTT follows the extended timeline: each held cue is heard inside its freeze.
    vtt = parse_vtt((out / "issue-195-aspect-ratio.extended.vtt").read_text(encoding="utf-8"))
    assert len(vtt) == len(whole)
    heard = [v for v, c in zip(vtt, whole, strict=True) if c.held]
    for (start, end, _text), (a, b) in zip(heard, freezes, strict=True):
        assert a <= start < end <= b + 1e-3


def test_rotated_frames_come_out_upright_and_the_screen_text_is_read(described, videos: Path):
    info = frames.probe(videos / "issue-134-rotate.mp4")
    assert info.rotation in (90, 270) and info.height > info.width
    report, _out = described["issue-134-rotate"]
    read = " ".join(text for _, text in report.read)
    assert "send spike" in " ".join(read.lower().split()), read
    assert report.cues, "something is narrated in the pauses"


def test_extended_description_reads_in_full_the_screen_text_a_pause_had_cut_short(described):
    report, out = described["issue-134-rotate"]
    cut = [c for c in report.cues if c.fuller is not None]
    assert cut, "the film's pauses are too short for all its screen text"
    plain = " ".join(t for *_, t in parse_vtt((out / "issue-134-rotate.described.vtt").read_text(encoding="utf-8")))
    extended = parse_vtt((out / "issue-134-rotate.extended.vtt").read_text(encoding="utf-8"))
    said = " ".join(t for *_, t in extended).lower()
    assert "send spike" in said and "send spike" not in plain.lower(), (plain, said)
    assert len(extended) == len(report.cues)  # each line once: cut short in the plain MP4, whole here
    with av.open(report.source) as source, av.open(str(out / "issue-134-rotate.extended.mp4")) as longer:
        added = sum(c.fuller.hold for c in cut)
        assert float(longer.duration / av.time_base) == pytest.approx(source.duration / av.time_base + added,
                                                                       abs=0.05)


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


# -- narration worth hearing -------------------------------------------------------------------------------

GALLERY = {"Barack Obama": ["knn_train__obama__obama.jpg", "knn_train__obama__obama2.jpg"],
           "Joe Biden": ["knn_train__biden__biden.jpg"]}
# Shots of the clip: photos the gallery does not hold (Obama, Biden, Obama again).
SHOTS = ["obama-720p.jpg", "knn_train__biden__biden2.jpg", "tests_obama3.jpg"]


def _photo_clip(photos: list[Path], path: Path, seconds: float = 2.5, fps: int = 10) -> None:
    """An H.264 MP4 with one shot per photo (letterboxed onto 640 x 480), no sound."""
    from PIL import Image

    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        for photo in photos:
            picture = Image.open(photo).convert("RGB")
            picture.thumbnail((640, 480))
            canvas = Image.new("RGB", (640, 480))
            canvas.paste(picture, ((640 - picture.width) // 2, (480 - picture.height) // 2))
            frame = av.VideoFrame.from_image(canvas)
            for _ in range(round(seconds * fps)):
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def test_a_known_person_is_named_from_the_gallery_each_time_they_come_back(videos: Path, tmp_path: Path):
    from describe_local.pipeline import Describer
    from describe_local.video.describe import describe_video
    from tests.conftest import isolated_settings

    photos = videos.parent / "faces" / "photos"
    settings = isolated_settings(tmp_path)
    for person, files in GALLERY.items():
        (settings.known_faces / person).mkdir(parents=True)
        for name in files:
            (settings.known_faces / person / name).write_bytes((photos / name).read_bytes())
    clip = tmp_path / "people.mp4"
    _photo_clip([photos / name for name in SHOTS], clip)
    (tmp_path / "out").mkdir()
    with Describer.load(settings) as describer:
        report = describe_video(clip, tmp_path / "out", describer)
    assert len(report.shots) == 3
    texts = [cue.text for cue in report.cues]
    assert [("Barack Obama" in t, "Joe Biden" in t) for t in texts] == [(True, False), (False, True), (True, False)], \
        texts
    assert all(a != b for a, b in itertools.pairwise(texts)), texts


def test_consecutive_cues_never_repeat_on_the_shared_clips(described):
    for name in ("issue-195-aspect-ratio", "issue-134-rotate"):
        texts = [cue.text for cue in described[name][0].cues]
        assert all(a != b for a, b in itertools.pairwise(texts)), (name, texts)


def test_a_video_without_sound_gets_one_default_described_track_in_any_order(videos: Path, describer, tmp_path: Path):
    from describe_local.video.describe import describe_video

    report = describe_video(videos / "testvideo.mp4", tmp_path, describer, extended=True, original_first=True)
    assert report.cues and not any(c.held for c in report.cues)  # no dialogue: every line finds a pause
    for name in ("testvideo.described.mp4", "testvideo.extended.mp4"):
        with av.open(str(tmp_path / name)) as container:
            (only,) = container.streams.audio
            assert only.disposition & DESCRIBED_FLAGS == DESCRIBED_FLAGS, (name, only.disposition)
    assert report.extended_duration == pytest.approx(report.duration, abs=1e-6)
    html = (tmp_path / "testvideo.html").read_text(encoding="utf-8")
    assert "its only audio track is the narration" in html and "second audio track" not in html


def test_a_video_named_like_a_url_scheme_is_read_and_linked_as_a_file(videos: Path, tmp_path: Path, capsys):
    """``javascript:alert(1).mp4`` is a file name: FFmpeg must not take it for a protocol, nor the page's
    links for a URL scheme."""
    from urllib.parse import unquote

    clip = tmp_path / "javascript:alert(1).mp4"
    clip.symlink_to(videos / "testvideo.mp4")
    out = tmp_path / "out"
    assert main(["video", str(clip), "-o", str(out)]) == 0, capsys.readouterr().err
    html = (out / "javascript:alert(1).html").read_text(encoding="utf-8")
    links = re.findall(r'(?:src|href)="([^"#][^"]*)"', html)
    assert links and all(link.startswith("javascript%3Aalert%281%29.") for link in links), links
    assert all((out / unquote(link)).is_file() for link in links), links


def _two_languages(path: Path) -> None:
    """A 2 s clip with two sound tracks, English then French (tones, no speech)."""
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        tracks = []
        for language, pitch in (("eng", 440), ("fra", 660)):
            stream = container.add_stream("aac", rate=48000)
            stream.layout = "mono"
            stream.metadata["language"] = language
            tracks.append((stream, pitch))
        for i in range(50):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 100 + i, np.uint8), format="rgb24")
            for packet in video.encode(frame):
                container.mux(packet)
        for stream, pitch in tracks:
            tone = (0.1 * np.sin(2 * np.pi * pitch * np.arange(96000) / 48000)).astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48000, 0
            for packet in [*stream.encode(frame), *stream.encode(None)]:
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)


def test_other_sound_tracks_are_kept_after_the_described_and_original_ones(describer, tmp_path: Path):
    from describe_local.video.describe import describe_video

    clip = tmp_path / "two.mp4"
    _two_languages(clip)
    describe_video(clip, tmp_path, describer)
    with av.open(str(tmp_path / "two.described.mp4")) as container:
        audio = container.streams.audio
        assert [s.metadata.get("language") for s in audio] == ["eng", "eng", "fra"]
        assert [bool(s.disposition & av.stream.Disposition.default) for s in audio] == [True, False, False]
        assert audio[0].disposition & av.stream.Disposition.visual_impaired
