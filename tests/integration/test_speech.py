"""Speech with the real bundled Piper voice, encoded to a real MP3."""

from __future__ import annotations

import numpy as np
import pytest

from describe_local.audio import decode_audio, encode_mp3, resample
from describe_local.say.speech import load_bundled_voice


@pytest.fixture(scope="module")
def joe():
    return load_bundled_voice()


def test_bundled_voice_speaks_english(joe):
    assert joe.key == "en_US-joe-medium" and joe.language == "en_US"
    pcm = joe.synthesize("I recognize one person: Kanbo.")
    assert pcm.dtype == np.int16
    seconds = len(pcm) / joe.sample_rate
    assert 1.0 < seconds < 5.0
    assert np.abs(pcm).max() > 3000  # not silence


def test_mp3_decodes_and_its_duration_fits_the_text(joe):
    short = joe.synthesize("Hello.")
    long = joe.synthesize(
        "A tabby cat curled up in a fluffy white bed. There was text found in the image as well. "
        "It reads: AWS re: Invent"
    )
    for pcm in (short, long):
        mp3 = encode_mp3(pcm, joe.sample_rate)
        assert mp3[:3] == b"ID3" or mp3[0] == 0xFF
        samples, rate = decode_audio(mp3)
        assert rate == joe.sample_rate
        # The encoder adds at most a couple of frames of padding.
        assert abs(len(samples) / rate - len(pcm) / joe.sample_rate) < 0.2
    # About 2-4 words a second for speech, so the longer text is much longer.
    assert len(long) > 4 * len(short)


def test_speed_changes_duration(joe):
    normal = joe.synthesize("Reading this sentence at two different speeds.")
    fast = joe.synthesize("Reading this sentence at two different speeds.", length_scale=0.6)
    assert 0.45 < len(fast) / len(normal) < 0.75


def test_encode_rejects_unsupported_rate():
    with pytest.raises(ValueError, match="resample"):
        encode_mp3(np.zeros(100, np.int16), 12345)


def test_resample_keeps_duration():
    pcm = (np.sin(np.linspace(0, 100, 16000)) * 10000).astype(np.int16)
    out = resample(pcm, 16000, 22050)
    assert len(out) == 22050 and out.dtype == np.int16


def test_long_text_is_spoken_in_pieces_cut_at_natural_breaks():
    from describe_local.say.speech import split_for_speech

    assert split_for_speech("A cat on a bed. I recognize one person: Kanbo.") == [
        "A cat on a bed.",
        "I recognize one person: Kanbo.",
    ]
    sign = " ".join(["SPEED LIMIT 50"] * 40)  # sign text: no punctuation at all
    pieces = split_for_speech(sign, max_chars=100)
    assert all(len(p) <= 100 for p in pieces) and len(pieces) > 5
    assert " ".join(pieces) == sign  # nothing lost, cut only at spaces


# -- speed: --speed X makes speech last 1/X as long ------------------------------------------------

SPEED_TEXT = (
    "A tabby cat curled up in a fluffy white bed. I recognize 2 people: Joe Biden and Barack Obama. "
    "There was text found in the image as well. It reads: EXIT, Speed limit 50."
)


def _seconds(voice, length_scale: float, runs: int = 2) -> float:
    """Mean duration over ``runs``: Piper's durations are drawn with noise (a few per cent)."""
    samples = sum(len(voice.synthesize(SPEED_TEXT, length_scale=length_scale)) for _ in range(runs))
    return samples / runs / voice.sample_rate


def test_speed_is_proportional_to_the_duration_of_speech(joe):
    from describe_local.say.speech import length_scale_for

    assert length_scale_for(1) == pytest.approx(1.0)
    normal = _seconds(joe, length_scale_for(1))
    for speed, tolerance in ((1.5, 0.05), (2, 0.05), (3, 0.05), (0.5, 0.15)):
        ratio = _seconds(joe, length_scale_for(speed)) / normal
        assert abs(ratio - 1 / speed) <= tolerance, (speed, ratio)


def test_length_scale_for_is_monotonic_and_refuses_nonsense():
    from describe_local.say.speech import length_scale_for

    scales = [length_scale_for(s) for s in (0.25, 0.5, 1, 1.5, 2, 3, 4)]
    assert scales == sorted(scales, reverse=True) and all(s > 0 for s in scales)
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            length_scale_for(bad)


def test_time_stretch_keeps_the_pitch_and_gives_the_length_asked():
    from describe_local.audio import time_stretch

    rate = 22050
    tone = (np.sin(2 * np.pi * 220 * np.arange(rate) / rate) * 10000).astype(np.int16)
    for factor in (0.5, 0.7):
        out = time_stretch(tone, factor, rate)
        assert out.dtype == np.int16 and len(out) == round(rate * factor)
        spectrum = np.abs(np.fft.rfft(out.astype(np.float64)))
        assert np.argmax(spectrum) * rate / len(out) == pytest.approx(220, abs=3)
        # WSOLA lines each frame up with the last: the tone keeps its level, without holes.
        middle = out[len(out) // 4 : 3 * len(out) // 4].astype(np.float64)
        assert np.sqrt((middle ** 2).mean()) == pytest.approx(10000 / np.sqrt(2), rel=0.1)
    assert time_stretch(tone, 1.0, rate) is tone
