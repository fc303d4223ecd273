"""``mrilearn serve``: a DICOM node that runs a trained model on every series it receives."""

from __future__ import annotations

import argparse
from pathlib import Path

from mrilearn.node.settings import NodeSettings


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    d = NodeSettings.__dataclass_fields__
    p = subparsers.add_parser(
        "serve", help="a DICOM node: receive series, run the model, send the derived series on"
    )
    p.add_argument("--run", required=True, type=Path, help="run directory or exported package")
    p.add_argument("--checkpoint", default="best", help="best, latest or a periodic name")
    p.add_argument("--runtime", choices=["auto", "eager", "compile", "onnx", "torch"],
                   default="auto", help="as for infer")  # fmt: skip
    p.add_argument("--ae-title", default=d["ae_title"].default, help="this node's AE title")
    p.add_argument("--port", type=int, default=d["port"].default, help="port to listen on")
    p.add_argument("--host", default=d["host"].default, help="address to listen on")
    p.add_argument(
        "--forward",
        metavar="AET@HOST:PORT",
        help="send derived series there by C-STORE (e.g. PACS@10.0.0.5:104)",
    )
    p.add_argument(
        "--out",
        type=Path,
        metavar="FOLDER",
        help="or write them into this folder, one entry per source series",
    )
    p.add_argument(
        "--spool",
        type=Path,
        default=Path("spool"),
        help="folder (created 0700) where instances wait for their job (default: spool)",
    )
    p.add_argument(
        "--series-timeout",
        type=float,
        default=d["series_timeout"].default,
        metavar="S",
        help="a series is complete after this many seconds without an "
        f"instance (default {d['series_timeout'].default:g})",
    )
    p.add_argument(
        "--allow",
        nargs="+",
        default=[],
        metavar="AET",
        help="accept associations only from these calling AE titles",
    )
    p.add_argument(
        "--max-series-mb",
        type=float,
        default=d["max_series_mb"].default,
        help="refuse instances past this size per series (status 0xA700)",
    )
    p.add_argument(
        "--min-slices",
        type=int,
        default=d["min_slices"].default,
        help="series with fewer instances are not processed",
    )
    p.add_argument(
        "--modality",
        nargs="+",
        default=list(d["modalities"].default),
        help="modalities the model takes (default MR)",
    )
    p.add_argument("--audit-log", type=Path, help="audit lines (default: <spool>/audit.jsonl)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from mrilearn.errors import optional_module
    from mrilearn.node.settings import Destination
    from mrilearn.runs import load_run

    optional_module("pynetdicom", "mrilearn serve", "hospital")
    settings = NodeSettings(
        spool=args.spool,
        forward=Destination.parse(args.forward) if args.forward else None,
        out=args.out, ae_title=args.ae_title, host=args.host, port=args.port,
        allow=tuple(args.allow), series_timeout=args.series_timeout,
        max_series_mb=args.max_series_mb, min_slices=args.min_slices,
        modalities=tuple(args.modality), audit_log=args.audit_log,
    )  # fmt: skip
    predictor = load_run(args.run, args.checkpoint, args.runtime)
    from mrilearn.node.server import serve

    serve(predictor, settings)
    print("mrilearn serve: stopped")
    return 0
