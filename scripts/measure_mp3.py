"""Measure the two ways of making the MP3: PyAV in-process vs the ffmpeg command.

Both use FFmpeg's libmp3lame. Prints the median time to encode the speech of a
typical description, and the MP3 sizes. The ffmpeg command is only measured
when it is installed (describe-local itself does not need it).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from describe_local.audio import MP3_BITRATE, encode_mp3
from describe_local.say.speech import load_bundled_voice

TEXT = (
    "A man in a suit standing in front of a flag. I recognize one person: Barack Obama. "
    "There was text found in the image as well. It reads: The White House"
)


def median_ms(fn, n: int = 15) -> float:
    fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    voice = load_bundled_voice()
    pcm = voice.synthesize(TEXT)
    seconds = len(pcm) / voice.sample_rate
    print(f"speech: {seconds:.1f} s at {voice.sample_rate} Hz")
    pyav = median_ms(lambda: encode_mp3(pcm, voice.sample_rate))
    print(f"PyAV in-process (libmp3lame): {pyav:6.1f} ms, {len(encode_mp3(pcm, voice.sample_rate))} bytes")
    ffmpeg = shutil.which("ffmpeg")
    if not ffmpeg:
        print("ffmpeg command: not installed (apt-get install ffmpeg to compare)")
        return
    cmd = [ffmpeg, "-v", "error", "-f", "s16le", "-ar", str(voice.sample_rate), "-ac", "1", "-i", "pipe:0",
           "-c:a", "libmp3lame", "-b:a", str(MP3_BITRATE), "-f", "mp3", "pipe:1"]
    raw = pcm.tobytes()
    out = subprocess.run(cmd, input=raw, capture_output=True, check=True).stdout
    cli = median_ms(lambda: subprocess.run(cmd, input=raw, capture_output=True, check=True))
    print(f"ffmpeg command (pipe, no temp file): {cli:6.1f} ms, {len(out)} bytes")


if __name__ == "__main__":
    main()
