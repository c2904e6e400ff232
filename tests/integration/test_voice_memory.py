"""The bundled Piper voice with its weights mapped from a copy (say/voice_copy.py): the very same
samples as the voice read whole, weights handed back between descriptions, and a copy that
cannot be written or will not load leaves the voice read whole."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from describe_local.say import voice_copy
from describe_local.say.speech import Voice, bundled_voice_path

TEXTS = ["A dog sitting on a bench in a park.", "There is text: SALE, ALL YEAR ROUND, fifty percent off."]


def resident_kb(path: Path) -> int:
    """This process's resident pages of the file ``path`` (``/proc/self/smaps``)."""
    text = Path("/proc/self/smaps").read_text()
    total = 0
    for mapping in re.finditer(rf"^[0-9a-f]+-[0-9a-f]+ [^\n]* {re.escape(str(path))}$", text, re.MULTILINE):
        total += int(re.search(r"^Rss:\s+(\d+) kB", text[mapping.end():], re.MULTILINE).group(1))
    return total


def seeded(copies: Path) -> Voice:
    ort.set_seed(11)  # Piper's two noise nodes draw from ONNX Runtime's generator: the same draws for each voice
    return Voice.load(bundled_voice_path(), copies=copies)


def test_the_mapped_voice_speaks_the_same_samples_and_rests(tmp_path: Path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the copies would go")
    whole = seeded(blocked)  # the copy cannot be written: read whole, as before
    mapped = seeded(tmp_path / "copies")
    assert whole.mapped is None
    assert mapped.mapped is not None and mapped.mapped.is_relative_to(tmp_path / "copies")
    weights = mapped.mapped.with_name(voice_copy.WEIGHTS)
    assert weights.stat().st_size > 50e6  # the weights are in the file of their own, not the graph
    for text in TEXTS * 2:
        expected = whole.synthesize(text)
        said = mapped.synthesize(text)
        assert len(expected) > mapped.sample_rate and np.array_equal(said, expected), text
        assert resident_kb(weights) > 40_000  # speaking reads the weights from the file
        assert mapped.rest() > 40e6 and resident_kb(weights) < 1000  # and resting hands them back
        assert whole.rest() == 0


def test_a_damaged_copy_is_made_again(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    copies = tmp_path / "copies"
    first = Voice.load(bundled_voice_path(), copies=copies)
    assert first.mapped is not None
    first.mapped.write_bytes(b"not a graph")
    with caplog.at_level(logging.WARNING):
        again = Voice.load(bundled_voice_path(), copies=copies)
    assert again.mapped is None and "ignoring the copy" in caplog.text  # read whole this time
    assert not first.mapped.parent.exists()
    assert len(again.synthesize(TEXTS[0])) > again.sample_rate
    assert Voice.load(bundled_voice_path(), copies=copies).mapped is not None  # written anew


def test_a_description_leaves_the_voice_resting(settings, shared_data: Path):
    from describe_local.pipeline import DescribeOptions, Describer

    with Describer.load(settings, stages=("caption",)) as describer:  # no caption model: a sentence saying so
        result = describer.describe(shared_data / "faces" / "groups" / "dogs.jpg", DescribeOptions())
        assert result.mp3 is not None and result.voice == "en_US-joe-medium"
        # in the store's cache folder, never the home folder
        (weights,) = voice_copy.copies_folder(settings.models_dir).glob(f"*/{voice_copy.WEIGHTS}")
        assert resident_kb(weights) < 1000  # spoken, then handed back before the next photo


def test_stages_in_turn_hand_their_weights_back_before_the_voice_speaks(settings,
                                                                         shared_data: Path):
    from describe_local.pipeline import DescribeOptions, Describer

    sign = shared_data / "ocr" / "signs" / "english.png"
    with Describer.load(settings, stages=("text",)):
        pass  # the first load writes the text stage's optimised copies: later ones map their weights
    with Describer.load(settings, stages=("text",)) as describer:

        def resident_after(sequential: bool) -> int:
            result = describer.describe(sign, DescribeOptions(sequential=sequential))
            assert result.text_found and result.mp3 is not None
            weights = set(re.findall(r" (/\S+\.data)$", Path("/proc/self/maps").read_text(), re.MULTILINE))
            return sum(resident_kb(Path(path)) for path in weights if path.startswith(str(settings.models_dir)))

        assert resident_after(False) > 1000  # side by side: the text stage may still run as the caption is said
        assert resident_after(True) < 1000  # in turn: handed back before the first words (none read since)
