"""``describe-local models``: list, pull, import and remove models in the store."""

from __future__ import annotations

import argparse
import functools
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from describe_local.cli._common import json_text, load_settings, setting_default, shown
from describe_local.errors import first_line

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list, pull, import or remove caption models, translations and voices",
        description="The model store (models/ in the project root, or --models-dir).",
    )
    parser.add_argument("--models-dir", type=Path, metavar="DIR", help="the model store (default: models/)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="installed models, and models that can be pulled")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=list_models)

    pull = actions.add_parser("pull", help="download a model (needs a network)")
    default_model = setting_default("caption_model")
    pull.add_argument("name", nargs="?", default=default_model,
                      help=f"{default_model} (default), another caption model, argos-en_es, or a Piper voice key")
    timeout = setting_default("download_timeout_s")
    pull.add_argument("--timeout", type=float, metavar="S",
                      help=f"give up after S seconds without an answer (default: {timeout:g})")
    pull.add_argument("--replace", action="store_true", help="replace an installed model of that name")
    pull.add_argument("--no-convert", action="store_true",
                      help="do not convert an OFA model to ONNX after installing it (no torch needed)")
    pull.set_defaults(func=pull_model)

    bring = actions.add_parser("import", help="install a model copied by hand (offline machines)")
    bring.add_argument("path", type=Path,
                       help="a model folder, a .zip/.tar.* archive of one, an .argosmodel file, "
                       "or a Piper voice .onnx (with its .onnx.json beside it)")
    bring.add_argument("--name", help="the name in the store (default: from the model)")
    bring.add_argument("--replace", action="store_true", help="replace an installed model of that name")
    bring.add_argument("--no-convert", action="store_true",
                       help="do not convert an OFA model to ONNX after installing it (no torch needed)")
    bring.set_defaults(func=import_model)

    from describe_local.cli import convert

    converting = actions.add_parser("convert", help=convert.HELP, description=convert.DESCRIPTION)
    convert.add_arguments(converting)

    verify = actions.add_parser("verify", help="check installed models against their manifests' checksums")
    verify.add_argument("names", nargs="*", help="models to check (default: all)")
    verify.add_argument("--clean", action="store_true",
                        help="remove what an interrupted step left half-written (an onnx.partial folder)")
    verify.set_defaults(func=verify_models)

    remove = actions.add_parser("remove", help="delete an installed model")
    remove.add_argument("name")
    remove.set_defaults(func=remove_model)


def _file_errors(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Report a full disk or a read-only store as one line, like every other error."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        from describe_local.store import StoreError

        try:
            return command(args)
        except BrokenPipeError:
            raise  # the reader of stdout left (`models list | head`): main() ends quietly
        except OSError as exc:
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            problem = f"{exc.strerror or exc}{where}"
            raise StoreError(f"{problem}: check the space and permissions of the model store") from None

    return run


def _store(args: argparse.Namespace):
    from describe_local.store import ModelStore

    settings = load_settings(args, models_dir="models_dir")
    return settings, ModelStore.open(settings.models_dir)


@_file_errors
def list_models(args: argparse.Namespace) -> int:
    from describe_local.store import known_models
    from describe_local.store.local import unfinished
    from describe_local.store.manifest import folder_size

    _settings, store = _store(args)
    installed = store.installed()
    names = {m.name for m in installed}
    available = [e for e in known_models() if e.name not in names]
    if args.json:
        print(json_text({
            "store": str(store.root),
            "installed": [
                {"name": m.name, "kind": m.kind, "path": str(m.path),
                 "source": m.manifest.source if m.manifest else None,
                 "licence": m.manifest.licence if m.manifest else None,
                 "details": m.manifest.details if m.manifest else {},
                 "bytes": folder_size(m.path),
                 "unfinished": [p.name for p in unfinished(m.path)]}
                for m in installed
            ],
            "available": [{"name": e.name, "kind": e.kind, "hub": e.hub, "repo": e.repo,
                           "licence": e.licence, "about": e.about} for e in available],
        }, indent=2))
        return 0
    print(f"Installed in {shown(store.root)}:")
    if not installed:
        print("  (nothing yet)")
    for m in installed:
        about = _describe_installed(m)
        left = unfinished(m.path)
        if left:
            about = f"UNFINISHED: {_unfinished_note(left)}; {about}"
        print(f"  {shown(m.name):<28} {m.kind or '?':<12} {folder_size(m.path) / 1e6:8.1f} MB  {shown(about)}")
    print("\nAvailable to pull (describe-local models pull NAME):")
    for e in available:
        print(f"  {e.name:<28} {e.kind:<12} {e.about}")
    print("  any Argos pair as argos-XX_YY, any Piper voice by its key (e.g. es_AR-daniela-high)")
    return 0


def _describe_installed(model) -> str:
    if model.manifest is None:
        return "no manifest (copied by hand; `models import` checks and records it)"
    details = model.manifest.details
    if model.kind == "translation":
        return f"{details.get('from')} → {details.get('to')}"
    if model.kind == "voice":
        return f"voice for {details.get('language')}"
    return model.manifest.source


@_file_errors
def pull_model(args: argparse.Namespace) -> int:
    from describe_local.store import pull_model as pull

    settings, store = _store(args)
    model = pull(store, args.name, settings, timeout=args.timeout, progress=_progress_bar(),
                 replace=args.replace)
    print(f"installed {model.name} ({model.kind}) in {shown(model.path)}")
    _convert_after_install(model.path, args.no_convert)
    return 0


@_file_errors
def import_model(args: argparse.Namespace) -> int:
    from describe_local.store import import_model as bring

    _settings, store = _store(args)
    model = bring(store, args.path, name=args.name, replace=args.replace)
    print(f"installed {model.name} ({model.kind}) in {shown(model.path)}")
    _convert_after_install(model.path, args.no_convert)
    return 0


def _convert_after_install(folder: Path, skip: bool) -> None:
    """Convert a just-installed OFA model to ONNX (when it has no current graphs), so that it
    captions on ONNX Runtime; the graphs are written from NumPy, without torch."""
    from describe_local.cli.convert import convert_florence, convert_installed, converter_missing, is_florence_folder
    from describe_local.store import formats

    if skip:
        return
    if is_florence_folder(folder):
        _convert_florence_after_install(folder, convert_florence)
        return
    if not formats.is_ofa_folder(folder) or formats.has_ofa_onnx(folder):
        return
    missing = converter_missing()
    if missing:
        print(f"note: {folder.name} has no ONNX graphs and {missing} is not installed, so it cannot caption "
              f"here yet: pip install {missing}, then `describe-local models convert {folder.name}` "
              "(or import a copy converted on another machine)", file=sys.stderr)
        return
    import onnxruntime as ort

    fp16 = "CUDAExecutionProvider" in ort.get_available_providers()  # the graphs CUDA runs
    print(f"converting {folder.name} to ONNX (captions then need no torch)...", file=sys.stderr, flush=True)
    try:
        manifest = convert_installed(folder, fp16=fp16)
    except Exception as exc:  # the model is installed all the same; torch can run it
        log.debug("converting %s failed", folder, exc_info=True)
        print(f"warning: {folder.name} is installed but could not be converted to ONNX ({first_line(exc)}); "
              f"it captions only where torch is installed. Try `describe-local models convert {folder.name}` "
              "(-vv shows why)",
              file=sys.stderr)
        return
    print(f"{folder.name}: ONNX graphs written ({len(manifest['files'])} files)")


def _convert_florence_after_install(folder: Path, convert: Callable[[Path], dict]) -> None:
    """Convert a just-installed Florence-2 model to ONNX where torch and transformers are installed;
    without them, say what captions it and how to convert later."""
    if (folder / "onnx-florence").is_dir():
        return
    print(f"converting {folder.name} to ONNX (captions then need no torch)...", file=sys.stderr, flush=True)
    try:
        manifest = convert(folder)
    except Exception as exc:  # the model is installed all the same
        log.debug("converting %s failed", folder, exc_info=True)
        print(f"note: {folder.name} is installed but was not converted to ONNX ({first_line(exc)}); "
              f"`describe-local models convert {folder.name}` converts it where torch and transformers are "
              "installed (once; captions then need neither)", file=sys.stderr)
        return
    print(f"{folder.name}: ONNX graphs written ({len(manifest.get('files', []))} files)")


def _unfinished_note(left: list[Path]) -> str:
    names = ", ".join(p.name for p in left)
    return (f"{names} left by an interrupted conversion (not used); "
            "`describe-local models verify --clean` removes it, `models convert` starts again")


@_file_errors
def verify_models(args: argparse.Namespace) -> int:
    from describe_local.store import ModelNotInstalled
    from describe_local.store.local import clean_unfinished, unfinished

    _settings, store = _store(args)
    models = store.installed()
    if args.names:
        missing = sorted(set(args.names) - {m.name for m in models})
        if missing:
            raise ModelNotInstalled(f"not installed: {', '.join(missing)} (see describe-local models list)")
        models = [m for m in models if m.name in args.names]
    bad = 0
    for model in models:
        left = unfinished(model.path)
        if left and args.clean:
            removed, left = clean_unfinished(model.path)
            for path in removed:
                print(f"{shown(model.name)}: removed {path.name}, left by an interrupted conversion")
            for path in left:
                print(f"{shown(model.name)}: {path.name} is being written by a conversion still running; left")
            left = []
        problems = [_unfinished_note(left)] if left else []
        if model.manifest is None:
            print(f"{shown(model.name)}: " + shown("; ".join([*problems, "no manifest, nothing to check against"])))
            bad += bool(problems)
            continue
        problems += model.manifest.verify(model.path)
        bad += bool(problems)
        print(f"{shown(model.name)}: "
              + shown("; ".join(problems) if problems else f"ok ({len(model.manifest.files)} files)"))
    return 1 if bad else 0


@_file_errors
def remove_model(args: argparse.Namespace) -> int:
    _settings, store = _store(args)
    model = store.remove(args.name)
    print(f"removed {model.name}")
    return 0


def _progress_bar() -> Callable[[str, int, int | None], None] | None:
    """Progress on stderr when it is a terminal, updated at most 10 times a second."""
    if not sys.stderr.isatty():
        return None
    last = {"t": 0.0, "file": ""}

    def show(file: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        finished = total is not None and done >= total
        if now - last["t"] < 0.1 and not finished and file == last["file"]:
            return
        last.update(t=now, file=file)
        if total:
            line = f"{file}: {_size(done)} / {_size(total)} ({100 * done / total:.0f}%)"
        else:
            line = f"{file}: {_size(done)}"
        end = "\n" if finished else ""
        print(f"\r\033[K{shown(line)}", end=end, file=sys.stderr, flush=True)

    return show


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"
