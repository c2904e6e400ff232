"""PP-OCR on ONNX Runtime: detection (DBNet), recognition and the v2 direction classifier.

The three ONNX files of a model set (``models.py``: PP-OCRv4 from the
``rapidocr-onnxruntime`` wheel by default) ship inside a wheel; this
module runs them itself rather than through the wheel's own code, because the stage
needs what that class hides: a detection resolution chosen per photo and
tiles (``detect.py``), curved lines, the recognizer's per-character positions
(for word boxes and for the spaces the model leaves out), one direction for
all the lines of a photo, and sessions with few threads.

In: the photo as a BGR array. Out: :class:`RawLine` objects, each a line
read, with its corners in the photo's pixels in the text's own frame.
"""

from __future__ import annotations

import ctypes
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from describe_local.see.text.detect import Region, pieces
from describe_local.see.text.models import MODEL_SETS, ModelSet, TextModel
from describe_local.see.text.sessions import open_session
from describe_local.see.text.spaces import insert_spaces

if TYPE_CHECKING:
    import onnxruntime as ort

log = logging.getLogger(__name__)

REC_HEIGHT = 48
REC_MAX_RATIO = 40.0  # longer lines are squeezed: bounds the work a single crop can cost
REC_BATCH = 6
# Columns per batch at most: 6 lines 480 wide took 123 MB, 3 lines 960 wide 135 MB (SVTR attends across the width).
REC_BATCH_WIDTH = 6 * 240
SQUARISH = 1.5  # a crop less than this many times as wide as high may be a short word running down
OTHER_MARGIN = 0.05  # the reading standing the other way must be this much surer to replace the first
CLS_SIZE = (192, 48)  # width, height
# The classifier alone turns a line over only when this sure; else the photo's
# lines of one direction vote together (it errs on short words and digits).
CLS_SURE = 0.97


@dataclass
class RawLine:
    """One line PP-OCR read.

    ``quad``: its corners in the photo's pixels, in the text's own frame (top
    left, top right, bottom right, bottom left as the letters stand), so that
    ``quad[1] - quad[0]`` is the reading direction. ``char_x``: each
    character's centre, 0..1 along the line. ``crop``: the upright picture
    the recognizer read (BGR), for a second reading by Tesseract.
    """

    quad: np.ndarray
    text: str
    confidence: float  # mean of the characters' probabilities, 0..1
    score: float = 0.0  # DBNet's mean probability over the region
    char_x: list[float] = field(default_factory=list)
    turned: int = 0  # degrees the crop was turned counter-clockwise to read it
    curved: bool = False
    crop: np.ndarray | None = field(default=None, repr=False)
    other: tuple[np.ndarray, int, np.ndarray] | None = field(default=None, repr=False)  # crop, turned, quad


class SceneEngine:
    """A model set's three PP-OCR sessions, loaded once; safe to use from several threads.

    ``det_pixels``: DBNet runs on pieces of at most this many pixels (0: the
    whole picture at once), its maps stitched (:func:`detect.pieces`): its
    activations grow with the picture (270 MB on 960 x 960), the stitched
    map is 4 bytes a pixel. ``rec_columns``: the recognizer's batches hold at
    most this many columns in all (its attention spans a line's width).
    """

    def __init__(self, threads: int = 1, models: ModelSet | None = None, det_pixels: int = 0,
                 rec_columns: int = REC_BATCH_WIDTH, arena: bool = True, cache_dir: Path | None = None) -> None:
        """``cache_dir``: where this machine's optimised copies of the graphs are kept (``sessions.py``)."""
        import onnxruntime as ort

        self.models = models or MODEL_SETS[TextModel.V4]
        self.threads = max(1, threads)
        self.det_pixels = det_pixels
        self.rec_columns = max(rec_columns, REC_HEIGHT)
        folder = self.models.folder()
        self.run_options = ort.RunOptions()  # every run of a photo: the arena keeps its blocks
        self._shrink: ort.RunOptions | None = None  # give_back's run: the arena's free blocks go back
        if arena:
            self._shrink = ort.RunOptions()
            self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self._ran: set[str] = set()  # sessions run since the last give_back
        providers = [("CPUExecutionProvider", {"arena_extend_strategy": "kSameAsRequested"})]

        def options() -> ort.SessionOptions:
            return _session_options(threads, arena)

        self.det = open_session(folder / self.models.det, options, providers, cache_dir)
        self.rec = open_session(folder / self.models.rec, options, providers, cache_dir)
        self.cls = open_session(folder / self.models.cls, options, providers, cache_dir)
        characters = self.models.alphabet(self.rec.get_modelmeta().custom_metadata_map)
        self.alphabet = ["", *characters, " "]  # CTC blank first and a space last, as PaddleOCR decodes
        self.spellable = frozenset(characters) | {" "}
        mean, deviation = (np.array(v, dtype=np.float32) for v in self.models.det_norm)
        self._det_scale, self._det_shift = 1.0 / (255.0 * deviation), mean / deviation

    def probability_map(self, bgr: np.ndarray, scale: float) -> tuple[np.ndarray, float, float]:
        """DBNet's text probability for ``bgr`` resized by ``scale`` (sides rounded to multiples of 32);
        and the x and y factors from map pixels back to ``bgr``'s."""
        h, w = bgr.shape[:2]
        out_w = max(32, round(w * scale / 32) * 32)
        out_h = max(32, round(h * scale / 32) * 32)
        resized = cv2.resize(bgr, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
        pred = np.zeros((out_h, out_w), dtype=np.float32)
        for (x0, y0, x1, y1), (kx0, ky0, kx1, ky1) in pieces(out_w, out_h, self.det_pixels):
            tensor = (resized[y0:y1, x0:x1].astype(np.float32) * self._det_scale - self._det_shift)
            piece = self._run("det", tensor.transpose(2, 0, 1)[np.newaxis])[0, 0]
            counted = pred[ky0:ky1, kx0:kx1]  # overlaps keep the higher probability (detect.PIECE_OVERLAP)
            np.maximum(counted, piece[ky0 - y0:ky1 - y0, kx0 - x0:kx1 - x0], out=counted)
            del tensor, piece
            if self.det_pixels and self._shrink is None:
                # Without the arena, each piece's activations go back before the next: glibc would keep
                # them (its mmap threshold rises with each large free) and the next piece's land beside them.
                release_memory()
        return pred, w / out_w, h / out_h

    def crop(self, bgr: np.ndarray, regions: list[Region]) -> list[RawLine]:
        """Each region cut out of ``bgr`` and laid flat (not read yet: ``text`` is '')."""
        lines = []
        for region in regions:
            if region.centre is not None:
                crop, corners = straighten(bgr, region.centre, region.height), _curve_corners(region)
            else:
                crop, corners = warp_quad(bgr, region.quad), region.quad
            turned = 0
            if crop.shape[0] >= 1.5 * crop.shape[1]:
                crop, turned = np.ascontiguousarray(np.rot90(crop)), 90  # text running down now runs right
            lines.append(RawLine(quad=np.roll(corners, -turned // 90, axis=0), text="", confidence=0.0,
                                 score=region.score, turned=turned, curved=region.centre is not None, crop=crop))
        return lines

    def read(self, lines: list[RawLine]) -> None:
        """Read each cropped line (upright, see :meth:`stand_upright`), in place.

        A squarish line with a second reading standing the other way (see
        :meth:`stand_upright`) keeps whichever reading is surer.
        """
        if not lines:
            return
        self.give_back("det", "cls")  # detection's activations, before the recognizer's
        if self.det_pixels:
            release_memory()  # detection's maps and leftovers too
        crops = [ln.crop for ln in lines] + [ln.other[0] for ln in lines if ln.other is not None]
        results = self.recognize(crops)
        others = iter(results[len(lines):])
        for line, (text, confidence, xs) in zip(lines, results, strict=False):
            if line.other is not None:
                crop, turned, quad = line.other
                other_text, other_confidence, other_xs = next(others)
                if len(other_text) >= 2 and other_confidence > confidence + OTHER_MARGIN:
                    line.crop, line.turned, line.quad = crop, turned, quad
                    text, confidence, xs = other_text, other_confidence, other_xs
                line.other = None
            line.text, line.char_x = insert_spaces(text, xs, line.crop)
            line.confidence = confidence

    def stand_upright(self, lines: list[RawLine]) -> None:
        """Turn over the lines that are upside down; give squarish lines a reading standing the other way.

        Lines lying the same way (across, or along the photo's height) vote
        together: a whole photo turned over, or a receipt's line printed up its
        edge, turns all its lines; a lone unsure vote does not. A short word in
        a line running down the photo ('ON', 'PC') has a box about as tall as
        wide: where two lines or more run along the height, such a box is read
        standing their way too, and :meth:`read` keeps the surer reading.
        """
        if not lines:
            return
        upside = self.upside_down_probability([ln.crop for ln in lines])
        for turned in (0, 90):
            group = [i for i, ln in enumerate(lines) if ln.turned == turned]
            if not group:
                continue
            together = float(np.median([upside[i] for i in group])) > 0.5
            for i in group:
                if upside[i] > CLS_SURE or (together and upside[i] > 0.5):
                    line = lines[i]
                    line.crop = cv2.rotate(line.crop, cv2.ROTATE_180)
                    line.turned += 180
                    line.quad = np.roll(line.quad, -2, axis=0)
        along = [ln.turned for ln in lines if ln.turned in (90, 270)]
        if len(along) < 2:
            return
        way = max((90, 270), key=along.count)
        for line in lines:
            h, w = line.crop.shape[:2]
            if line.turned in (0, 180) and not line.curved and h > w / SQUARISH:
                upright = line.crop if line.turned == 0 else cv2.rotate(line.crop, cv2.ROTATE_180)
                base = line.quad if line.turned == 0 else np.roll(line.quad, 2, axis=0)
                crop = np.ascontiguousarray(np.rot90(upright, 1 if way == 90 else -1))
                line.other = (crop, way, np.roll(base, -way // 90, axis=0))

    def upside_down_probability(self, crops: list[np.ndarray]) -> list[float]:
        """The direction classifier's probability that each crop is upside down."""
        width, height = CLS_SIZE
        found: list[float] = []
        for start in range(0, len(crops), REC_BATCH):
            batch = np.stack([_normalise(c, height, width, width) for c in crops[start:start + REC_BATCH]])
            probs = self._run("cls", batch)
            found.extend(float(p[1]) for p in probs)
        return found

    def recognize(self, crops: list[np.ndarray]) -> list[tuple[str, float, list[float]]]:
        """Text, mean character probability and character centres (0..1 along the crop) of each crop."""
        results: list[tuple[str, float, list[float]]] = [("", 0.0, [])] * len(crops)
        ratios = [min(REC_MAX_RATIO, c.shape[1] / max(1, c.shape[0])) for c in crops]
        # Similar widths in a batch (less padding); the widest batch runs first: the arena's blocks
        # from it then hold every later one's, where narrow first grew it with each batch.
        order = [int(i) for i in np.argsort(ratios, kind="stable")]
        least = self.models.rec_min_width / REC_HEIGHT
        chunks: list[tuple[list[int], int]] = []
        while order:
            # As many lines as fit ``rec_columns`` columns in all: long lines go a few at a time,
            # which bounds the activations' memory (6 lines 1280 wide take 250 MB).
            chunk = [order.pop(0)]
            while order and len(chunk) < REC_BATCH:
                if (len(chunk) + 1) * max(least, ratios[order[0]]) * REC_HEIGHT > self.rec_columns:
                    break
                chunk.append(order.pop(0))
            chunks.insert(0, (chunk, math.ceil(REC_HEIGHT * max(least, *(ratios[i] for i in chunk)))))

        def read_batch(chunk: list[int], width: int) -> None:
            batch = np.stack([_normalise(crops[i], REC_HEIGHT, width, width) for i in chunk])
            probs = self._run("rec", batch)
            for row, i in enumerate(chunk):
                used = min(width, math.ceil(REC_HEIGHT * ratios[i])) / width
                results[i] = self.decode(probs[row], used)

        if self.threads < 2 or len(chunks) < 2:
            for chunk, width in chunks:
                read_batch(chunk, width)
            return results
        # The recognizer's convolutions are too small for ONNX Runtime to share one run among
        # threads (a run took as much CPU as wall time): batches run side by side instead.
        with ThreadPoolExecutor(min(self.threads, len(chunks)), thread_name_prefix="pp-ocr-rec") as pool:
            for done in [pool.submit(read_batch, chunk, width) for chunk, width in chunks]:
                done.result()
        return results

    def _run(self, name: str, tensor: np.ndarray) -> np.ndarray:
        """Session ``name`` (det, rec or cls) on ``tensor``: its first output. The arena keeps its blocks."""
        session = getattr(self, name)
        self._ran.add(name)
        return session.run(None, {session.get_inputs()[0].name: tensor}, self.run_options)[0]

    def give_back(self, *names: str) -> None:
        """Hand the arenas' free blocks of the sessions ``names`` (all, when none named) back to the
        system: a run on a small input asking the arena to shrink at its end (a millisecond or two)."""
        for name in names or tuple(self._ran):
            if name not in self._ran or self._shrink is None:
                continue
            self._ran.discard(name)
            session = getattr(self, name)
            small = np.zeros((1, 3, 64 if name == "det" else REC_HEIGHT, 64), dtype=np.float32)
            session.run(None, {session.get_inputs()[0].name: small}, self._shrink)

    def decode(self, probs: np.ndarray, used: float) -> tuple[str, float, list[float]]:
        """Greedy CTC decoding of one line; ``used`` is the share of the columns the crop filled."""
        best = probs.argmax(axis=1)
        keep = np.ones(len(best), dtype=bool)
        keep[1:] = best[1:] != best[:-1]
        keep &= best != 0
        columns = np.flatnonzero(keep)
        if not len(columns):
            return "", 0.0, []
        confidence = float(probs[columns, best[columns]].mean())
        chars = [self.alphabet[k] if k < len(self.alphabet) else "" for k in best[columns]]
        span = max(1.0, len(best) * used)
        positions = [min(1.0, (c + 0.5) / span) for c in columns]
        return "".join(chars), confidence, positions


def _session_options(threads: int, arena: bool) -> ort.SessionOptions:
    """The sessions' options: ``threads`` intra-op threads that sleep when idle, every graph optimisation,
    ONNX Runtime's arena (or, ``arena`` False, plain malloc, as before, for scripts/bench_text.py)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # ONNX Runtime's arena, grown by what each tensor asks: it reuses freed blocks within a run,
    # where plain malloc took a first run at a new size to 1.5-2x the peak (DBNet on 704 x 544:
    # +56 MB against +99 MB), and across the runs of one photo (DBNet's pieces and tiles, the
    # recognizer's batches, widest first): shrinking after each run cost DBNet a third of its
    # time in fresh pages faulted in (58 against 90 ms CPU on a 416 x 960 piece). It is
    # shrunk once per photo (SceneEngine.give_back); kept, it would hold the largest photo's
    # peak for the life of the process.
    options.enable_cpu_mem_arena = arena
    options.enable_mem_pattern = not arena
    options.log_severity_level = 3
    # Idle threads sleep rather than spin: the stage runs beside the caption and face
    # stages on few cores, where spinning cost a third more CPU for the same photos.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def release_memory() -> None:
    """Hand the freed activations back to the system.

    DBNet's activations on a 960 px photo take 170 MB for a moment; glibc keeps
    such freed blocks in the process (RSS stayed 500 MB above its start over
    the shared data) unless asked to trim. Once per photo, and after each DBNet
    piece where DBNet runs in pieces (:class:`SceneEngine`).
    """
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        return None


_LIBC = _glibc()


def warp_quad(bgr: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """The quad (clockwise from its top left) warped to an upright rectangle."""
    width = round(float(max(np.linalg.norm(quad[0] - quad[1]), np.linalg.norm(quad[2] - quad[3]))))
    height = round(float(max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2]))))
    width, height = max(width, 2), max(height, 2)
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(quad.astype(np.float32), target)
    return cv2.warpPerspective(bgr, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def straighten(bgr: np.ndarray, centre: np.ndarray, height: float) -> np.ndarray:
    """The strip ``height`` pixels high along the curve ``centre`` (left to right), sampled flat."""
    steps = np.linalg.norm(np.diff(centre, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    width, rows = max(2, round(float(arc[-1]))), max(2, round(height))
    s = np.arange(width, dtype=np.float32) + 0.5
    px, py = np.interp(s, arc, centre[:, 0]), np.interp(s, arc, centre[:, 1])
    tx, ty = np.gradient(px), np.gradient(py)
    norm = np.hypot(tx, ty) + 1e-6
    nx, ny = -ty / norm, tx / norm  # the normal, pointing down the letters
    offsets = np.arange(rows, dtype=np.float32) + 0.5 - rows / 2
    map_x = (px[np.newaxis, :] + offsets[:, np.newaxis] * nx[np.newaxis, :]).astype(np.float32)
    map_y = (py[np.newaxis, :] + offsets[:, np.newaxis] * ny[np.newaxis, :]).astype(np.float32)
    return cv2.remap(bgr, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _curve_corners(region: Region) -> np.ndarray:
    """Corners for a curved line in its own frame: its ends' tops and bottoms."""
    c = region.centre
    assert c is not None
    def normal_at(i: int, j: int) -> np.ndarray:
        t = c[j] - c[i]
        t = t / (np.linalg.norm(t) + 1e-6)
        return np.array([-t[1], t[0]], dtype=np.float32) * region.height / 2
    n0, n1 = normal_at(0, 1), normal_at(-2, -1)
    return np.array([c[0] - n0, c[-1] - n1, c[-1] + n1, c[0] + n0], dtype=np.float32)


def _normalise(crop: np.ndarray, height: int, max_width: int, pad_width: int) -> np.ndarray:
    """``crop`` resized to ``height`` (width by its ratio, at most ``max_width``), scaled to -1..1, padded."""
    ratio = crop.shape[1] / max(1, crop.shape[0])
    width = max(1, min(max_width, math.ceil(height * ratio)))
    resized = cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR)
    out = np.zeros((3, height, pad_width), dtype=np.float32)
    out[:, :, :width] = resized.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0
    return out
