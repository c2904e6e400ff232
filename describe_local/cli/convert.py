"""``describe-local convert NAME``: export an OFA caption model to ONNX, so that it captions without torch."""

from __future__ import annotations

import argparse
from pathlib import Path

from describe_local.cli._common import json_text, load_settings, setting_default, shown


def register(subparsers: argparse._SubParsersAction) -> None:
    default_model = setting_default("caption_model")
    parser = subparsers.add_parser(
        "convert",
        help="export an OFA caption model to ONNX (faster on CPUs, no torch needed to caption)",
        description=("Writes onnx/ into the model's folder: the encoder and one decoder step as ONNX graphs, "
                     "the token embeddings and a manifest with their sha256. Needs torch and onnx "
                     "(pip install '.[onnx-export]'); the folder then captions with ONNX Runtime alone."),
    )
    parser.add_argument("name", nargs="?", default=default_model,
                        help=f"a caption model in the store, or a folder (default: {default_model})")
    parser.add_argument("--models-dir", type=Path, metavar="DIR", help="the model store (default: models/)")
    parser.add_argument("--int8", action="store_true",
                        help="also write int8 graphs (dynamic quantisation of the linear layers)")
    parser.add_argument("--precision", choices=("fp32", "int8"), default=None,
                        help="what the folder runs by default (int8 needs --int8; default fp32)")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from describe_local.errors import ConfigError
    from describe_local.see.caption import resolve_model_folder
    from describe_local.store.formats import is_ofa_folder

    settings = load_settings(args, models_dir="models_dir")
    folder = resolve_model_folder(args.name, settings.models_dir)
    if not is_ofa_folder(folder):
        raise ConfigError(f"{shown(folder)} is not an OFA model: only OFA models convert to ONNX")
    if args.precision == "int8" and not args.int8:
        raise ConfigError("--precision int8 needs --int8")
    try:
        from describe_local.see.caption.ofa_onnx.convert import convert
    except ModuleNotFoundError as exc:
        raise ConfigError(f"converting needs torch and onnx ({exc.name} is missing): "
                          "pip install 'describe-local[onnx-export]'") from exc
    manifest = convert(folder, int8=args.int8, precision=args.precision)
    if args.json:
        print(json_text(manifest))
    else:
        print(f"{shown(folder)}: ONNX graphs written ({', '.join(manifest['files'])}); "
              f"runs {manifest['precision']} by default")
    return 0
