"""Pure logic of ``describe-local video``: cuts, speech intervals, wording, placement, ducking, files."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from describe_local.video import extend, mux, narration, outputs, shots, vad
from describe_local.video.frames import display_size
from describe_local.video.narration import Cue, Findings, Line, Placer, Writer


def parse_vtt(text: str) -> list[tuple[float, float, str]]:
    """A strict little WebVTT reader: the header, then cues with increasing, well-formed timings."""
    blocks = text.strip().split("\n\n")
    assert blocks[0].splitlines()[0] == "WEBVTT"
    cues = []

    def seconds(stamp: str) -> float:
        h, m, s = stamp.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)

    for block in blocks[1:]:
        lines = block.splitlines()
        timing = next(i for i, line in enumerate(lines) if "-->" in line)
        start, end = (seconds(part.strip()) for part in lines[timing].split("-->"))
        assert end > start
        assert not cues or start >= cues[-1][1], "cues must not overlap or go back in time"
        cues.append((start, end, " ".join(lines[timing + 1 :])))
    return cues


# -- shots -----------------------------------------------------------------------------------------


def _frames(pattern: list[float], fps: float = 25.0, shape: tuple[int, int] = (18, 32)):
    """(time, grey) pairs: each value in ``pattern`` is a flat frame's level, with a little texture."""
    rng = np.random.default_rng(0)
    texture = rng.normal(0, 3, shape).astype(np.float32)
    return [(i / fps, np.clip(level + (texture if level > 0 else 0), 0, 255)) for i, level in enumerate(pattern)]


def test_a_hard_cut_is_found_where_the_picture_changes():
    frames = _frames([60.0] * 50 + [200.0] * 50)
    assert shots.cut_times(frames) == [pytest.approx(2.0)]


def test_a_fade_through_black_is_one_cut_inside_the_black_and_fading_from_black_at_the_start_is_none():
    fade_out = list(np.linspace(100, 0, 10))
    fade_in = list(np.linspace(0, 100, 10))
    pattern = [0.0] * 20 + fade_in + [100.0] * 40 + fade_out + [0.0] * 20 + fade_in + [100.0] * 40
    cuts = shots.cut_times(_frames(pattern))
    assert len(cuts) == 1
    dark_start, dark_end = (20 + 10 + 40 + 9) / 25, (20 + 10 + 40 + 10 + 20 + 1) / 25
    assert dark_start < cuts[0] < dark_end


def test_slow_change_and_motion_are_not_cuts():
    assert shots.cut_times(_frames(list(np.linspace(50, 200, 100)))) == []


def test_cuts_closer_than_the_shortest_shot_are_one():
    assert len(shots.cut_times(_frames([60.0] * 30 + [200.0] * 3 + [60.0] * 30))) == 1


def test_sharpness_prefers_detail():
    rng = np.random.default_rng(1)
    sharp = rng.uniform(0, 255, (40, 40)).astype(np.float32)
    assert shots.sharpness(sharp) > shots.sharpness(np.full((40, 40), 128, np.float32))


def test_display_size_applies_the_sample_aspect_ratio_then_the_rotation():
    assert display_size(704, 576, Fraction(16, 11), 0) == (1024, 576)
    assert display_size(1280, 544, Fraction(1), 90) == (544, 1280)


# -- speech --------------------------------------------------------------------------------------------


def test_speech_segments_bridge_short_pauses_drop_short_bursts_and_pad():
    w = vad.WINDOW_S
    probs = [0.9] * 20 + [0.1] * 5 + [0.9] * 20 + [0.1] * 40 + [0.9] * 3 + [0.1] * 40
    segments = vad.speech_segments(probs)
    assert len(segments) == 1  # the 0.16 s pause is bridged, the 0.1 s burst dropped
    assert segments[0][0] == 0.0 and segments[0][1] == pytest.approx(45 * w + vad.PAD_S)


def test_gaps_are_the_complement_of_speech():
    assert vad.gaps([(1.0, 2.0), (1.5, 3.0), (5.0, 6.0)], 8.0) == [(0.0, 1.0), (3.0, 5.0), (6.0, 8.0)]
    assert vad.gaps([], 4.0) == [(0.0, 4.0)]


# -- wording -------------------------------------------------------------------------------------------


def test_repeats_are_merged_and_people_introduced_once():
    writer = Writer()
    first = writer.line(0, 3, Findings(caption="a woman at a desk", people=("Ada",)))
    assert first is not None and first.full == "A woman at a desk. Ada."
    assert writer.line(3, 5, Findings(caption="a woman at a desk", people=("Ada",))) is None
    later = writer.line(5, 8, Findings(caption="a woman by a window", people=("Ada", "Bo")))
    assert later is not None and later.full == "A woman by a window. Bo."
    assert writer.line(8, 9, Findings()) is None  # nothing found: nothing said
    writer.line(9, 10, Findings(text_found="Copyright @ 2013 Brandon Castellano"))
    assert writer.line(10, 12, Findings(text_found="Copyright 0 2013 Brandon Castellano")) is None  # OCR noise


def test_the_same_unknown_person_is_not_announced_again_and_again():
    """Three shots of one unknown face, the OCR reading noise differently each time: "A person." once."""
    writer = Writer()
    lines = [writer.line(i, i + 1, Findings(unknown_faces=1, text_found=noise))
             for i, noise in enumerate(["", "l", "|!"])]
    said = [line.full for line in lines if line is not None]
    assert said[0] == "A person." and not any("person" in text for text in said[1:]), said


def test_known_people_are_named_when_they_come_back_and_always_by_the_same_name():
    writer = Writer()
    said = [writer.line(i, i + 1, found) for i, found in enumerate([
        Findings(people=("Barack Obama",)),
        Findings(people=("Barack Obama",), unknown_faces=1),
        Findings(people=("Joe Biden",)),
        Findings(people=("Barack Obama", "Joe Biden")),
    ])]
    assert [line.full if line else None for line in said] == [
        "Barack Obama.", "Another person.", "Joe Biden.", "Barack Obama."]


def test_text_on_screen_is_read_once_when_it_first_appears():
    writer = Writer()
    said = [writer.line(i, i + 1, Findings(caption=caption, text_found=text)) for i, (caption, text) in enumerate([
        ("a computer screen", "SEND SPIKE"), ("a man at a desk", ""), ("a computer screen", "SEND SPlKE"),
        ("a computer screen", "Spike Sent")])]
    assert [line.full if line else None for line in said] == [
        "A computer screen. On screen: SEND SPIKE.", "A man at a desk.", "A computer screen.",
        "On screen: Spike Sent."]


def test_consecutive_lines_never_repeat_and_later_lines_are_shorter_than_the_first():
    writer = Writer()
    first = writer.line(0, 2, Findings(caption="a picture of a kitchen", people=("Ada",), unknown_faces=2,
                                       text_found="OPEN"))
    assert first.full == "A kitchen. Ada and 2 other people. On screen: OPEN."
    later = writer.line(2, 4, Findings(caption="a street", people=("Bo",), unknown_faces=1, text_found="BUS"))
    assert later.full == "A street. Bo and another person."  # at most two sentences after the first line
    lines = [writer.line(4 + i, 5 + i, Findings(caption=c)) for i, c in enumerate(["a bus", "A bus.", "a bus"])]
    texts = [line.full for line in lines if line]
    assert texts == ["A bus."]


def test_text_on_screen_has_a_short_form_of_its_first_line():
    line = Writer().line(0, 3, Findings(text_found="SEND SPIKE\nSpike sent\nOffline"))
    assert line is not None
    assert line.full == "On screen: SEND SPIKE Spike sent Offline."
    assert line.short == "On screen: SEND SPIKE."


def test_a_translated_description_is_used_as_it_is():
    line = Writer().line(0, 3, Findings(caption="x", spoken="Una mujer. Texto: SALIDA.", language="es"))
    assert line is not None and line.full == "Una mujer. Texto: SALIDA." and line.short == "Una mujer."


# -- placement -----------------------------------------------------------------------------------------


def _line(start, end, full, full_s, short="", short_s=0.0):
    line = Line(start, end, full, short or full)
    line.durations = {full: full_s, short or full: short_s or full_s}
    return line


def test_a_line_goes_in_the_first_gap_near_its_shot_and_never_on_speech():
    placer = Placer([(0.0, 1.0), (4.0, 9.0)])
    cue = placer.place(_line(3.0, 6.0, "A room.", 2.0))
    assert cue == Cue(4.0, 6.0, "A room.", 1.0)
    assert narration.overlap_s([cue], [(1.0, 4.0), (9.0, 12.0)]) == 0


def test_too_long_text_is_shortened_then_sped_up_then_dropped():
    placer = Placer([(0.0, 2.0), (10.0, 11.2), (20.0, 20.5)], max_speed=1.5)
    assert placer.place(_line(0, 3, "Long.", 3.0, "Short.", 1.5)).text == "Short."
    sped = placer.place(_line(10, 12, "Long.", 3.0, "Short.", 1.6))
    assert sped.text == "Short." and sped.speed == 1.5
    assert placer.place(_line(20, 21, "Long.", 3.0, "Short.", 2.0)) is None


def test_allow_overlap_places_what_does_not_fit_at_its_shot():
    cue = Placer([], allow_overlap=True).place(_line(5, 8, "Long.", 3.0))
    assert cue.start == 5 and cue.overlaps


def test_cues_do_not_overlap_each_other():
    placer = Placer([(0.0, 20.0)])
    a = placer.place(_line(0, 1, "One.", 2.0))
    b = placer.place(_line(1, 2, "Two.", 2.0))
    assert b.start >= a.end + narration.BREATH_S


# -- sound and files -------------------------------------------------------------------------------------


def test_ducking_lowers_the_original_under_narration_with_ramps():
    times = np.array([0.0, 0.9, 1.5, 2.1, 5.0])
    gain = mux.duck_gain(times, [(1.0, 2.0)])
    assert gain[0] == 1 and gain[-1] == 1 and gain[2] == pytest.approx(mux.DUCK_GAIN)
    assert mux.DUCK_GAIN < gain[1] < 1 and mux.DUCK_GAIN < gain[3] < 1


def test_webvtt_round_trips_through_a_parser():
    cues = [Cue(1.0, 2.5, "A room.", 1.0), Cue(3661.25, 3663.0, "Text --> arrow\nand more.", 1.0)]
    text = outputs.webvtt(cues)
    assert outputs.timestamp(3661.25) == "01:01:01.250"
    assert parse_vtt(text) == [(1.0, 2.5, "A room."), (3661.25, 3663.0, "Text -> arrow and more.")]


def _page(**changes) -> str:
    page = outputs.Page(title="x", video="x.original.mp4", vtt="x.described.vtt", narration="x.description.mp3",
                        language="en", cues=[Cue(1, 2, "<b>EXIT</b>", 1.0), Cue(65, 67, "A room.", 1.0, hold=2.5)],
                        spans=[(0.3, 1.3), (1.6, 3.6)], dropped=[(4.0, "Missed.")], described_mp4="x.described.mp4")
    for key, value in changes.items():
        setattr(page, key, value)
    return outputs.html_page(page)


def test_html_page_has_the_descriptions_track_and_an_escaped_transcript():
    page = _page()
    assert '<track kind="descriptions" src="x.described.vtt"' in page
    assert "&lt;b&gt;EXIT&lt;/b&gt;" in page and "Missed." in page
    assert "<b>" not in page.split('id="cues">')[1].split("</script>")[0]  # the cue table cannot close its script


def test_transcript_links_name_the_moment_and_the_text():
    page = _page()
    assert '<a href="#t=65.0" data-cue="1"><span class="at">1 min 5 s</span> A room.</a>' in page
    assert "(the video pauses for it)" in page


def test_file_names_are_url_encoded_in_the_page():
    page = _page(title="javascript:alert(1)", video="javascript:alert(1).original.mp4",
                 described_mp4="javascript:alert(1).described.mp4")
    assert 'src="javascript%3Aalert%281%29.original.mp4"' in page
    assert 'href="javascript%3Aalert%281%29.described.mp4"' in page
    assert 'src="javascript:' not in page and 'href="javascript:' not in page


def test_the_page_says_how_many_audio_tracks_the_described_mp4_has():
    assert "its first audio track, the one players choose, is the audio description" in _page()
    assert "its only audio track is the narration" in _page(has_audio=False)
    assert "second audio track" not in _page(has_audio=False)


# -- extended description ------------------------------------------------------------------------------


def test_clean_points_skip_places_where_a_b_frame_is_shown_after_a_later_decoded_frame():
    # Decoding order I0 P3 B1 B2 P6 B4 B5: a hold may go before P3 (shows 1..) or before P6 (shows 4..).
    points = extend.points_of([0, 3, 1, 2, 6, 4, 5], 1.0)
    assert [(p.time, p.packet) for p in points] == [(1.0, 1), (4.0, 4)]
    assert [(p.time, p.packet) for p in extend.points_of([0, 1, 2], 0.5)] == [(0.5, 1), (1.0, 2)]


def test_holds_snap_to_the_nearest_clean_point_and_shift_what_follows():
    points = extend.points_of([0, 3, 1, 2, 6, 4, 5], 1.0)
    holds = extend.snap([extend.Hold(3.4, 2.0), extend.Hold(3.6, 1.0)], points)
    assert holds == [extend.Hold(4.0, 2.0, 4), extend.Hold(4.0, 1.0, 4)]  # both at 4, one after the other
    assert extend.extended_time(holds, 3.9) == 3.9 and extend.extended_time(holds, 5.0) == 8.0
    assert [extend.packet_shift(holds, i) for i in range(7)] == [0, 0, 0, 0, 3.0, 3.0, 3.0]


def test_a_line_cut_to_fit_its_pause_carries_its_whole_text_held_for_extended_description():
    placer = Placer([(0.0, 2.0)], hold=True)
    cue = placer.place(_line(0, 3, "Long.", 3.0, "Short.", 1.5))
    assert cue.text == "Short." and not cue.held
    assert cue.fuller == Cue(0.0, 3.0, "Long.", 1.0, hold=3.0 + 2 * narration.HOLD_PAD_S)
    assert Placer([(0.0, 2.0)]).place(_line(0, 3, "Long.", 3.0, "Short.", 1.5)).fuller is None  # hold off
    assert Placer([(0.0, 5.0)], hold=True).place(_line(0, 3, "Long.", 3.0)).fuller is None  # it fits whole


def test_the_page_plays_a_cut_line_or_its_whole_text_and_lists_it_once():
    short = Cue(1, 2, "Short.", 1.0, fuller=Cue(1, 4, "Short, and the rest.", 1.0, hold=3.5))
    page = outputs.html_page(outputs.Page(title="x", video="x.mp4", vtt="x.vtt", narration="x.mp3", language="en",
                                          cues=[short, short.fuller], spans=[(0.3, 1.3), (1.6, 4.6)]))
    table = page.split('id="cues">')[1].split("</script>")[0]
    assert '"short": true' in table and '"hold": true' in table
    assert "Short, and the rest." in page.split('class="transcript"')[1] and ">Short.<" not in page


def test_a_line_with_no_pause_is_held_at_the_end_of_speech_inside_its_shot_in_full():
    placer = Placer([(0.0, 0.5), (4.2, 4.4), (9.0, 9.2)], hold=True)
    cue = placer.place(_line(3.0, 6.0, "A long line.", 2.0, "Short.", 0.8))
    assert cue is not None and cue.held and cue.text == "A long line."
    assert cue.start == 4.2 and cue.hold == pytest.approx(2.0 + 2 * narration.HOLD_PAD_S)
    cut = placer.place(_line(6.0, 8.0, "Another.", 1.0))  # no end of speech in its shot: held at its cut
    assert cut.start == 6.0 and cut.held


def test_output_set_renames_all_at_the_end_or_leaves_nothing(tmp_path: Path):
    with outputs.OutputSet(tmp_path) as files:
        files.temp("a.vtt").write_text("x")
        files.temp("b.html").write_text("y")
        assert list(tmp_path.glob("[ab].*")) == []
        files.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.vtt", "b.html"]
    with pytest.raises(RuntimeError), outputs.OutputSet(tmp_path) as files:
        files.temp("c.vtt").write_text("x")
        raise RuntimeError("failed half way")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.vtt", "b.html"]


def test_output_set_refuses_to_commit_when_a_file_was_never_written(tmp_path: Path):
    from describe_local.errors import OutputError

    files = outputs.OutputSet(tmp_path)
    files.temp("a.vtt").write_text("x")
    files.temp("b.m4a")  # a muxer that never opened its file
    with pytest.raises(OutputError, match="could not write b.m4a"):
        files.commit()
    assert list(tmp_path.iterdir()) == []


def test_clip_store_mixes_only_the_part_of_a_clip_in_the_chunk():
    store = mux.ClipStore(1000)
    store.add(1.0, np.full(500, 16384, np.int16))
    chunk = np.zeros((1000, 1), np.float32)
    store.mix_into(chunk, 1.2, 1000)
    assert chunk[:300].min() == pytest.approx(0.5) and chunk[301:].max() == 0
    store.close()
