"""ONNX Runtime sessions for the OFA graphs: providers, options, and this machine's optimised copies.

ONNX Runtime rewrites a graph when it loads it (fusions, and for convolutions
a blocked memory layout whose block size depends on the CPU's vector width).
That took most of the load time, and the re-laid-out convolution weights were
a second, private copy. So the first CPU load of a graph also saves the
rewritten graph, with its weights, in ``onnx/optimized/KEY/``, and later loads
read that instead, unchanged (0.04 s instead of 0.2 s for the encoder, its
weights memory-mapped from the file). KEY covers what the rewrite depends on:
ONNX Runtime's version, the CPU, and the graphs' own manifest
(so converting again, which replaces ``onnx/`` whole, can never leave a stale
copy in use). The copies are derived files: the store's checksums leave them
out, and a folder that cannot be written to simply goes without them.
The caption tokenizer keeps its prompt's ids and each token's bytes there too
(``tokens.bin``: see ``PromptTokenizer``), whatever the device.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from describe_local.errors import ConfigError
from describe_local.store import formats

if TYPE_CHECKING:
    import onnxruntime as ort

    from describe_local.see.caption.ofa.tokenizer import PromptTokenizer

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TOKENS_FILE = "tokens.bin"


def providers(device: str) -> list[str]:
    """ONNX Runtime execution providers for the ``device`` setting (auto, cpu, cuda, cuda:N)."""
    import onnxruntime as ort

    has_cuda = CUDA in ort.get_available_providers()
    if device == "cpu" or (device == "auto" and not has_cuda):
        return [CPU]
    if not device.startswith("cuda") and device != "auto":
        raise ConfigError(f"unknown device {device!r}: use auto, cpu or cuda")
    if not has_cuda:
        raise ConfigError(f"device {device!r} asked for, but this onnxruntime has no CUDA provider "
                          "(pip install onnxruntime-gpu), or the machine no usable GPU: use auto or cpu")
    return [CUDA, CPU]


def provider_options(chosen: list[str], device: str) -> list[dict]:
    """Per-provider options: the GPU index of ``cuda:N``."""
    if chosen[0] == CUDA and ":" in device:
        return [{"device_id": device.split(":", 1)[1]}, {}]
    return [{} for _ in chosen]


def session_options(threads: int) -> ort.SessionOptions:
    """Session options for both graphs: every graph optimisation, ``threads`` intra-op threads, no spinning.

    ONNX Runtime's threads spin for a while after each run waiting for more work. With two
    sessions (encoder, decoder step) and NumPy in between, the idle session's spinning threads
    took the cores from the busy one: spinning off made a caption a third faster on 2 cores.
    Without the memory arena, buffers go back to the system between runs: some 12 MB less at
    the peak, and no slower (measured A/B in one process). Without memory patterns (one block
    planned for all of a run's tensors, kept between runs) another 5 MB less, no slower
    (``scripts/bench_memory.py``).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    if threads > 0:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return options


def machine_key(folder: Path) -> str:
    """What the optimised copies of ``folder``'s graphs depend on, hashed."""
    import onnxruntime as ort

    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(("flags", "Features")):
                flags = line
                break
    except OSError:
        flags = platform.processor()
    digest = hashlib.sha256()
    for part in (ort.__version__, platform.machine(), flags, (folder / formats.OFA_ONNX_MANIFEST).read_bytes()):
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def open_session(folder: Path, name: str, precision: str, chosen: list[str], device: str,
                 threads: int) -> ort.InferenceSession:
    """A session for graph ``name`` of ``folder`` at ``precision``: on a CPU from this machine's
    optimised copy, written first when there is none yet."""
    import onnxruntime as ort

    source = folder / formats.ofa_onnx_graph(name, precision)
    options = session_options(threads)
    extra = {"provider_options": provider_options(chosen, device)}
    if chosen[0] != CPU:  # GPU providers optimise for their own device at each load
        return ort.InferenceSession(str(source), sess_options=options, providers=chosen, **extra)
    cache = folder / formats.OFA_ONNX_CACHE_DIR / machine_key(folder)
    optimised = cache / source.name
    if optimised.is_file() and (cache / formats.ofa_onnx_data_name(source.name)).is_file():
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # done already
        try:
            return ort.InferenceSession(str(optimised), sess_options=options, providers=chosen, **extra)
        except Exception as exc:  # an unreadable copy: drop it and start again from the graph
            log.warning("ignoring the optimised copy %s (%s)", optimised, exc)
            shutil.rmtree(cache, ignore_errors=True)
            options = session_options(threads)
    if not _writable(folder / formats.OFA_ONNX_CACHE_DIR, cache):
        return ort.InferenceSession(str(source), sess_options=options, providers=chosen, **extra)
    partial = cache.with_name(f"{cache.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    options.optimized_model_filepath = str(partial / source.name)
    options.add_session_config_entry("session.optimized_model_external_initializers_file_name",
                                      formats.ofa_onnx_data_name(source.name))
    options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    options.log_severity_level = 3  # not the warning that the copy suits this machine only: that is the point
    try:
        session = ort.InferenceSession(str(source), sess_options=options, providers=chosen, **extra)
        _publish(partial, cache)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return session


def derived_dir(folder: Path) -> Path | None:
    """This machine's folder of derived files for ``folder``'s graphs, made if need be; None if it cannot be."""
    cache = folder / formats.OFA_ONNX_CACHE_DIR / machine_key(folder)
    if cache.is_dir():
        return cache
    if not _writable(folder / formats.OFA_ONNX_CACHE_DIR, cache):
        return None
    try:
        cache.mkdir(exist_ok=True)
    except OSError as exc:
        log.debug("no derived files for %s: %s", folder, exc)
        return None
    return cache


def load_tokenizer(folder: Path, manifest: dict) -> PromptTokenizer:
    """The caption tokenizer of ``folder``, its prompt's ids and token bytes kept among the derived files."""
    from describe_local.see.caption.ofa.tokenizer import PromptTokenizer

    derived = derived_dir(folder)
    return PromptTokenizer.load(folder, [str(manifest["prompt"])], cache=derived / TOKENS_FILE if derived else None)


def _writable(base: Path, cache: Path) -> bool:
    """Whether the copies can be kept under ``base``; other machines' (or versions') copies are removed."""
    try:
        base.mkdir(parents=True, exist_ok=True)
        for old in base.iterdir():
            if old != cache and not old.name.endswith(".partial"):
                shutil.rmtree(old, ignore_errors=True)
        return os.access(base, os.W_OK)
    except OSError as exc:
        log.debug("no optimised copies of the graphs in %s: %s", base, exc)
        return False


def _publish(partial: Path, cache: Path) -> None:
    """Move the files written in ``partial`` into ``cache`` (another process may have done so meanwhile)."""
    try:
        cache.mkdir(exist_ok=True)
        # the weights first: a graph in the cache always finds its weights beside it
        for path in sorted(partial.iterdir(), key=lambda p: not p.name.endswith(formats.OFA_ONNX_DATA_SUFFIX)):
            os.replace(path, cache / path.name)
    except OSError as exc:
        log.debug("could not keep the optimised graph in %s: %s", cache, exc)


def prepare_copies(folder: Path) -> None:
    """Write this machine's optimised copies of ``folder``'s CPU graphs and the kept tokenizer now (after
    converting), so that the first caption does not pay for them; best effort, as loading would write them anyway."""
    manifest = formats.ofa_onnx_manifest(folder)
    try:
        if manifest:
            load_tokenizer(folder, manifest)
    except Exception as exc:
        log.warning("could not prepare the tokenizer of %s: %s", folder, exc)
    for precision in formats.ofa_onnx_precisions(folder):
        if precision == "fp16":  # for CUDA, which optimises at each load
            continue
        for name in (formats.OFA_ONNX_ENCODER, formats.OFA_ONNX_DECODER):
            try:
                open_session(folder, name, precision, [CPU], "cpu", 1)
            except Exception as exc:
                log.warning("could not prepare %s %s for this machine: %s", name, precision, exc)
