"""The text stage's time on real photos with the real PP-OCR models: what it spends beside the
networks' own work (ONNX Runtime's arena, the language model's load) and that a read stays as good.

``scripts/bench_text.py`` measures the time and memory on the 30 shared phone photos; these tests
pin the mechanisms that make them so, each measured in a way the machine's load does not move
(page faults, resident memory).
"""

from __future__ import annotations

import resource
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from describe_local.images import load_photo
from describe_local.see.text import TextReader
from describe_local.see.text.scene import release_memory
from describe_local.settings import Settings


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


@pytest.fixture(scope="module")
def reader() -> TextReader:
    return TextReader.load(Settings.load(environ={}, ocr_engine="pp-ocr"))


def test_dbnet_runs_of_a_photo_reuse_the_arena_and_the_read_gives_it_back(reader, shared_data):
    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux's /proc to read the resident memory")
    photo = load_photo(shared_data / "ocr" / "signs" / "french.jpg", max_bytes=50_000_000, max_pixels=100_000_000)
    bgr = np.ascontiguousarray(photo.array[:, :, ::-1])
    scene = reader.scene
    assert scene is not None
    scene.probability_map(bgr, 0.5)  # ONNX Runtime's one-off set-up for this size
    scene.give_back()
    release_memory()
    before, faults = _rss_mb(), _faults()
    scene.probability_map(bgr, 0.9)  # 608 x 928: two pieces of 400 000 px
    first = _faults() - faults
    grown = _rss_mb() - before
    faults = _faults()
    scene.probability_map(bgr, 0.9)
    second = _faults() - faults
    # The second run finds its blocks in the arena: shrinking it after each run faulted every page
    # in afresh (as many faults as the first run, a third of DBNet's time).
    assert second < first / 4, (first, second)
    scene.give_back()
    release_memory()
    # Once the photo is done the arena goes back: what stays is a small part of what the runs took.
    kept = _rss_mb() - before
    assert grown > 20 and kept < grown / 3, (round(grown), round(kept))


# -- the language model's load ---------------------------------------------------------------------

LANGUAGES = ["de", "en", "es", "fr", "it", "pt"]


def _texts(shared_data: Path) -> list[str]:
    """Real text in the six languages: the pages' ground truth, whole and line by line, and sign words."""
    texts = ["Palais du LOUVRE", "Théâtre", "LES ARTS", "SPEED LIMIT", "MARKET", "Mairie du 1er", "TAXI", "du"]
    for truth in sorted((shared_data / "ocr" / "pages").glob("*.txt")):
        body = truth.read_text(encoding="utf-8")
        texts.append(body)
        texts += [line for line in body.splitlines() if line.strip()][:40]
    return texts


def test_the_language_guesser_from_its_copy_guesses_as_py3langid(shared_data, tmp_path):
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    from describe_local.see.text.language import LanguageGuesser, cache_folder

    own = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    own.set_languages(LANGUAGES)
    first = LanguageGuesser.load(LANGUAGES, 0.8, tmp_path)  # writes the copy
    assert cache_folder(tmp_path, LANGUAGES).is_dir()
    again = LanguageGuesser.load(list(reversed(LANGUAGES)), 0.8, tmp_path)  # maps it
    assert again.identifier.classes == first.identifier.classes == sorted(LANGUAGES)
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    unwritable = LanguageGuesser.load(LANGUAGES, 0.8, blocked)  # no copy: py3langid's file, cut down
    texts = _texts(shared_data)
    assert len(texts) > 50
    for text in texts:
        want = own.classify(text)
        for guesser in (first, again, unwritable):
            got = guesser.identifier.classify(text)
            assert got[0] == want[0] and got[1] == pytest.approx(want[1], abs=1e-6), (text[:60], got, want)


_LOAD_SCRIPT = """
import json, sys, time
from pathlib import Path
from describe_local.see.text.language import LanguageGuesser
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
import describe_local.see.text  # what every load imports, before the baseline
before, began = rss(), time.process_time()
guesser = LanguageGuesser.load(["de", "en", "es", "fr", "it", "pt"], 0.8, Path(sys.argv[1]))
language = guesser.identify("Le palais du Louvre et la rue de Rivoli")[0]
print(json.dumps({"mb": rss() - before, "cpu_s": time.process_time() - began, "language": language}))
"""


def test_the_language_guesser_loads_from_its_copy_in_little_memory(tmp_path):
    import json
    import subprocess
    import sys

    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux's /proc to read the resident memory")
    root = Path(__file__).resolve().parents[2]
    runs = []
    for _ in range(2):  # the first writes the copy, the second maps it
        done = subprocess.run([sys.executable, "-c", _LOAD_SCRIPT, str(tmp_path)], capture_output=True, text=True,
                              cwd=root, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert all(run["language"] == "fr" for run in runs), runs
    # Unpacked, py3langid's model took 75 MB and 0.46 s of CPU at every load.
    assert runs[1]["mb"] < 10 and runs[1]["cpu_s"] < 0.1, runs


def test_recognizer_batches_side_by_side_read_as_one_by_one(reader, shared_data):
    # A receipt's 49 lines make 9 batches: run two at a time (ocr_threads 2), they read the same.
    photo = load_photo(shared_data / "ocr" / "scenes" / "receipt_sideways.jpg", max_bytes=50_000_000,
                       max_pixels=100_000_000)
    scene = reader.scene
    assert scene is not None and scene.threads == 2
    side_by_side = reader.read(photo)
    try:
        scene.threads = 1
        one_by_one = reader.read(photo)
    finally:
        scene.threads = 2
    assert len(side_by_side.lines) > 30
    assert [(ln.text, ln.confidence) for ln in side_by_side.lines] == [(ln.text, ln.confidence)
                                                                        for ln in one_by_one.lines]


@pytest.mark.parametrize(("name", "cut"), [("faces/photos/knn_test__obama_and_biden.jpg", True),
                                           ("faces/photos/tests_obama3.jpg", True),
                                           ("ocr/scenes/receipt_safeway.jpg", False)])
def test_a_closer_look_over_a_few_hinted_words_runs_round_them_alone(reader, shared_data, name, cut):
    from describe_local.see.text import detect

    photo = load_photo(shared_data / name, max_bytes=50_000_000, max_pixels=100_000_000)
    bgr = np.ascontiguousarray(photo.array[:, :, ::-1])
    scene = reader.scene
    assert scene is not None
    first = detect.first_pass(bgr, scene.probability_map, reader.det_side)
    assert first.hints, "the photo has a word too small for the first pass"
    seen: list[tuple[int, int]] = []

    def counted(picture: np.ndarray, scale: float):
        seen.append(picture.shape[:2])
        return scene.probability_map(picture, scale)

    regions = detect.closer_look(bgr, counted, first, reader.det_side, reader.max_tiles)
    scene.give_back()
    assert len(seen) == 1 and regions
    square = (reader.det_side / min(2 * first.scale, 1.0)) ** 2  # the tile a closer look had
    if cut:  # a face photo's lone hinted word: DBNet over a small part of the square (170 ms saved)
        assert len(first.regions) < detect.MANY_LINES and seen[0][0] * seen[0][1] < square / 4, (seen, square)
    else:  # a receipt's 50 lines: the whole tile, which reads the lines round the hints better too
        assert len(first.regions) >= detect.MANY_LINES and seen[0][0] * seen[0][1] > square / 2, (seen, square)


# -- ONNX Runtime's optimised copies ---------------------------------------------------------------

_SESSIONS_SCRIPT = """
import json, sys, time
from pathlib import Path
import onnxruntime, cv2
from describe_local.see.text.models import model_set
from describe_local.see.text.scene import SceneEngine
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
before, began = rss(), time.process_time()
SceneEngine(2, model_set("ppocr-v4"), 400_000, cache_dir=Path(sys.argv[1]))
print(json.dumps({"mb": rss() - before, "cpu_s": time.process_time() - began}))
"""


def test_sessions_load_from_this_machines_optimised_copies_and_read_the_same(reader, shared_data, tmp_path):
    import json
    import subprocess
    import sys

    from describe_local.see.text.models import model_set
    from describe_local.see.text.scene import SceneEngine

    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux's /proc to read the resident memory")
    root = Path(__file__).resolve().parents[2]
    runs = []
    for _ in range(2):  # the first writes the copies, the second reads them
        done = subprocess.run([sys.executable, "-c", _SESSIONS_SCRIPT, str(tmp_path)], capture_output=True, text=True,
                              cwd=root, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert len(list(tmp_path.glob("onnx-*/model.onnx"))) == 3
    # From the originals the three sessions took 45 MB (the weights re-laid out, a private copy).
    assert runs[1]["mb"] < 30 and runs[1]["mb"] < runs[0]["mb"] - 10, runs
    copied = replace(reader, scene=SceneEngine(2, model_set("ppocr-v4"), 400_000, cache_dir=tmp_path))
    original = replace(reader, scene=SceneEngine(2, model_set("ppocr-v4"), 400_000))  # no copies
    photo = load_photo(shared_data / "ocr" / "signs" / "french.jpg", max_bytes=50_000_000, max_pixels=100_000_000)
    lines = copied.read(photo).lines
    assert len(lines) >= 4 and lines == original.read(photo).lines


def test_damaged_copies_are_written_again(reader, shared_data, tmp_path):
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    from describe_local.see.text.language import LanguageGuesser, cache_folder
    from describe_local.see.text.models import model_set
    from describe_local.see.text.scene import SceneEngine

    LanguageGuesser.load(LANGUAGES, 0.8, tmp_path)
    weights = cache_folder(tmp_path, LANGUAGES) / "ptc.npy"
    size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[: size // 2])  # cut short, as a full disk would leave it
    guesser = LanguageGuesser.load(LANGUAGES, 0.8, tmp_path)
    assert weights.stat().st_size == size
    own = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    own.set_languages(LANGUAGES)
    for text in _texts(shared_data)[:20]:
        assert guesser.identifier.classify(text)[0] == own.classify(text)[0], text[:60]

    SceneEngine(2, model_set("ppocr-v4"), 400_000, cache_dir=tmp_path)
    graphs = sorted(tmp_path.glob("onnx-*/model.onnx"))
    assert len(graphs) == 3
    graphs[0].write_bytes(b"not a graph")
    scene = SceneEngine(2, model_set("ppocr-v4"), 400_000, cache_dir=tmp_path)
    assert graphs[0].stat().st_size > 1000  # written again
    photo = load_photo(shared_data / "ocr" / "signs" / "example3.png", max_bytes=50_000_000, max_pixels=100_000_000)
    assert replace(reader, scene=scene).read(photo).lines == reader.read(photo).lines


def test_a_new_copy_replaces_the_older_copies_of_its_graph(tmp_path):
    import shutil

    from describe_local.see.text.models import model_set
    from describe_local.see.text.scene import SceneEngine

    SceneEngine(2, model_set("ppocr-v4"), 400_000, cache_dir=tmp_path)
    copies = sorted(tmp_path.glob("onnx-*"))
    assert len(copies) == 3 and all((c / "source").is_file() for c in copies)
    # As another ONNX Runtime would have left it: a copy of the same graph under another key.
    older = tmp_path / "onnx-0000000000000000"
    copies[0].rename(older)
    unnoted = tmp_path / "onnx-1111111111111111"  # a copy from before sources were noted: left alone
    shutil.copytree(older, unnoted)
    (unnoted / "source").unlink()
    SceneEngine(2, model_set("ppocr-v4"), 400_000, cache_dir=tmp_path)
    assert sorted(tmp_path.glob("onnx-*")) == sorted([*copies, unnoted])
