"""The ONNX OFA runtime's pixels: exactly the engine's normalisation, without copying a large photo whole."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image

from describe_local.see.caption.ofa_onnx.runtime import image_array

ROOT = Path(__file__).resolve().parents[2]


def _engine_pixels(images: list[Image.Image], size: int) -> np.ndarray:
    """The torch engine's ``preprocess.image_tensor`` arithmetic, in NumPy (that module imports torch)."""
    arrays = []
    for image in images:
        resized = image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        pixels = np.asarray(resized, dtype=np.float32) / np.float32(255.0)
        arrays.append((pixels - np.float32(0.5)) / np.float32(0.5))
    return np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2))


def test_pixels_are_the_engines_bit_for_bit_in_every_mode():
    rng = np.random.default_rng(5)
    photo = Image.fromarray(rng.integers(0, 256, (301, 457, 3), dtype=np.uint8))
    original = np.asarray(photo).copy()
    images = [photo, photo.convert("L"), photo.convert("RGBA"), photo.convert("P"), photo.convert("CMYK"),
              photo.resize((64, 40))]
    for image in images:
        got = image_array([image], 256)
        assert got.dtype == np.float32 and got.flags["C_CONTIGUOUS"] and got.shape == (1, 3, 256, 256)
        assert np.array_equal(got, _engine_pixels([image], 256)), image.mode
    assert np.array_equal(image_array(images, 96), _engine_pixels(images, 96))
    assert np.array_equal(np.asarray(photo), original)  # the photo itself is left as it was


def test_a_large_photo_is_not_copied_whole():
    """12 megapixels (36 MB as RGB): the pixels for the model take a few MB at their peak, not a copy of the photo."""
    code = textwrap.dedent("""
        import numpy as np
        from PIL import Image
        from describe_local.memory import release_free_memory, settle_allocator
        from describe_local.see.caption.ofa_onnx.runtime import image_array
        def status(field):
            for line in open("/proc/self/status"):
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        settle_allocator()
        photo = Image.fromarray(np.random.default_rng(1).integers(0, 256, (3000, 4000, 3), dtype=np.uint8))
        image_array([photo.resize((64, 64))], 256)
        release_free_memory()
        before = status("VmRSS")
        open("/proc/self/clear_refs", "w").write("5")
        image_array([photo], 256)
        print(status("VmHWM") - before)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert float(done.stdout) < 12, done.stdout
