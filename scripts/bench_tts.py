#!/usr/bin/env python3
"""Benchmark: text-to-speech real-time factor of each installed voice on this CPU.

    .venv/bin/python scripts/bench_tts.py [--runs 3] [--models-dir models] [--length-scale 1.0 0.7]

Real-time factor = synthesis time / length of the audio produced (below 1 is
faster than real time; the bundled en_US joe voice measured about 0.08 here).
Every voice in the catalogue is measured: the bundled one and those in the
model store. The text is a typical 3-sentence description.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from describe_local.say.voices import VoiceCatalogue
from describe_local.settings import Settings

TEXT = (
    "A man riding a bike down a street next to a building. "
    "I recognize 3 people: Kanbo, Jack, and Ayman. "
    "There was text found in the image as well. It reads: Emergency exit."
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--models-dir", type=Path, help="the model store (default: the setting)")
    parser.add_argument("--length-scale", type=float, nargs="+", default=[1.0, 0.7])
    args = parser.parse_args()

    settings = Settings.load(models_dir=args.models_dir)
    catalogue = VoiceCatalogue.load(settings)
    print(f"{'voice':<28} {'length_scale':>12} {'audio s':>8} {'synth ms':>9} {'RTF':>6}")
    for info in catalogue.voices:
        t0 = time.perf_counter()
        voice = catalogue.voice_for(info.language, info.key)
        load_ms = 1000 * (time.perf_counter() - t0)
        voice.synthesize("Warm up.")
        for scale in args.length_scale:
            times, seconds = [], 0.0
            for _ in range(args.runs):
                t0 = time.perf_counter()
                pcm = voice.synthesize(TEXT, length_scale=scale)
                times.append(time.perf_counter() - t0)
                seconds = len(pcm) / voice.sample_rate
            synth = statistics.median(times)
            print(f"{info.key:<28} {scale:>12.2f} {seconds:>8.2f} {1000 * synth:>9.0f} {synth / seconds:>6.3f}")
        print(f"{'':<28} (loaded in {load_ms:.0f} ms)")


if __name__ == "__main__":
    main()
