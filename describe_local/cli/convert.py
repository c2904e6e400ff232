"""``describe-local models convert NAME`` (also ``describe-local convert NAME``): export an OFA caption
model to ONNX, so that it captions faster and without torch. Converting needs no torch either (the graphs are
written from the weights read as NumPy arrays); ``models pull`` and ``models import`` call :func:`convert_installed`
too."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from describe_local.cli._common import json_text, load_settings, setting_default, shown

log = logging.getLogger(__name__)

HELP = "export an OFA or Florence-2 caption model to ONNX (faster on CPUs, no torch needed to caption)"
DESCRIPTION = ("Writes onnx/ into an OFA model's folder: the encoder and one decoder step as ONNX graphs with "
               "their weights, the token embeddings, and a manifest with their sha256 (the store's manifest "
               "is updated too). Needs the onnx package, not torch; the folder then captions with ONNX Runtime "
               "alone. A Florence-2 model gets onnx-florence/ (vision, encoder, decoder step); converting it "
               "needs torch and transformers once, its captions neither. `models pull` and `models import` "
               "do this by themselves.")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("convert", help=HELP + " (same as `models convert`)", description=DESCRIPTION)
    parser.add_argument("--models-dir", type=Path, metavar="DIR", help="the model store (default: models/)")
    add_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``convert`` (shared by ``describe-local convert`` and ``models convert``)."""
    default_model = setting_default("caption_model")
    parser.add_argument("name", nargs="?", default=default_model,
                        help=f"a caption model in the store, or a folder (default: {default_model})")
    parser.add_argument("--int8", action="store_true",
                        help="also write int8 graphs (dynamic quantisation of the linear layers)")
    parser.add_argument("--fp16", action="store_true", help="also write fp16 graphs (used on CUDA)")
    parser.add_argument("--precision", choices=("fp32", "int8"), default=None,
                        help="what the folder runs on a CPU by default (int8 needs --int8; default fp32)")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from describe_local.errors import ConfigError
    from describe_local.store.formats import is_ofa_folder
    from describe_local.store.local import resolve_model_folder

    settings = load_settings(args, models_dir="models_dir")
    folder = resolve_model_folder(args.name, settings.models_dir)
    florence = is_florence_folder(folder)
    if not (florence or is_ofa_folder(folder)):
        raise ConfigError(f"{shown(folder)} is not an OFA or Florence-2 model: only those convert to ONNX")
    if args.precision == "int8" and not args.int8:
        raise ConfigError("--precision int8 needs --int8")
    if florence and args.fp16:
        raise ConfigError("--fp16 is for OFA models; a Florence-2 model converts to fp32 (and int8 with --int8)")
    if florence:
        manifest = convert_florence(folder, int8=args.int8, precision=args.precision)
    else:
        manifest = convert_installed(folder, int8=args.int8, fp16=args.fp16, precision=args.precision)
    if args.json:
        print(json_text(manifest))
    else:
        print(f"{shown(folder)}: ONNX graphs written ({', '.join(manifest['files'])}); "
              f"runs {manifest['precision']} by default")
    return 0


def converter_missing() -> str | None:
    """The module that converting needs and that is not installed (onnx), or ``None``. No torch: the graphs
    are written from NumPy."""
    import importlib.util

    return None if importlib.util.find_spec("onnx") is not None else "onnx"



def convert_installed(folder: Path, *, int8: bool = False, fp16: bool = False, precision: str | None = None) -> dict:
    """Convert the OFA model in ``folder`` and bring the store's manifest (when it has one) up to date."""
    from describe_local.errors import ModelNotInstalled
    from describe_local.store.formats import OFA_ONNX_DIR
    from describe_local.store.manifest import refresh_checksums

    if converter_missing():
        raise ModelNotInstalled(f"converting {folder.name} to ONNX needs the onnx package, which is not installed: "
                                "install it with `pip install 'onnx>=1.16'`")
    from describe_local.see.caption.ofa_onnx.convert import convert

    manifest = convert(folder, int8=int8, fp16=fp16, precision=precision)
    refresh_checksums(folder, OFA_ONNX_DIR)
    return manifest


def is_florence_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a Florence-2 checkpoint (its config.json's ``model_type``)."""
    from describe_local.store.formats import config_model_type

    return config_model_type(folder) == "florence2"


def convert_florence(folder: Path, *, int8: bool = False, precision: str | None = None) -> dict:
    """Convert the Florence-2 model in ``folder`` (needs torch and transformers, once: its vision
    tower is traced; captions then need neither)."""
    from describe_local.see.caption.florence_onnx.convert import convert_installed as convert

    return convert(folder, int8=int8, precision=precision)
