"""``mrilearn export``: write a deployable model package from a run (§8.2.3)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export", help="write a self-contained model package (safetensors, config, ONNX)"
    )
    p.add_argument("--run", required=True, type=Path, help="run directory (runs/<experiment>)")
    p.add_argument("--out", required=True, type=Path, help="package folder (replaced if present)")
    p.add_argument("--checkpoint", default="best", help="best, latest or a periodic name")
    p.add_argument("--onnx", action="store_true", help="also export model.onnx and check parity")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from mrilearn.deploy.package import export_package

    info = export_package(args.run, args.out, args.checkpoint, args.onnx)
    print(f"package: {args.out} ({info['version_stamp']})")
    if info["onnx"]:
        onnx = info["onnx"]
        print(
            f"onnx: dynamic axes {onnx['dynamic_axes']}, parity max |diff| "
            f"{onnx['parity_max_abs_diff']:.3g}"
        )
    return 0
