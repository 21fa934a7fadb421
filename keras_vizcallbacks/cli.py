"""The ``keras-vizcallbacks`` command.

::

    keras-vizcallbacks list LOGDIR                      # runs, image tags and their steps
    keras-vizcallbacks export LOGDIR --list             # the same
    keras-vizcallbacks export LOGDIR --tag filters/conv2d --out evolution.gif   # animated GIF
    keras-vizcallbacks export LOGDIR --tag filters/conv2d --out sheet.png       # contact sheet
    keras-vizcallbacks tensorboard LOGDIR               # TensorBoard on 127.0.0.1, every step kept

Flags that ``tensorboard`` does not know are passed on to TensorBoard (e.g. ``--reload_interval 5``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence

#: TensorBoard keeps only 10 images per tag unless told otherwise; this keeps every epoch
#: of any realistic run (``images=0`` would mean "none" in TensorBoard 2.21, not "all").
SAMPLES_PER_PLUGIN = "images=100000"


def _steps(steps: list[int]) -> str:
    """Compact step list: 0-19, or 0, 5, 10 when spaced."""
    if not steps:
        return "-"
    if steps == list(range(steps[0], steps[-1] + 1)) and len(steps) > 2:
        return f"{steps[0]}-{steps[-1]}"
    return ", ".join(map(str, steps))


def format_listing(listing: dict[str, dict[str, list[int]]]) -> str:
    lines = []
    for run, tags in listing.items():
        lines.append(f"run {run}: {len(tags)} image tag(s)" if tags else f"run {run}: no images (scalars only)")
        width = max((len(t) for t in tags), default=0)
        for tag, steps in tags.items():
            lines.append(f"  {tag.ljust(width)}  {len(steps):4d} step(s): {_steps(steps)}")
    return "\n".join(lines)


def tensorboard_command(logdir: str, port: int | None = None, samples: str = SAMPLES_PER_PLUGIN) -> list[str]:
    """The argv that starts TensorBoard on ``logdir`` (loopback only, every image step kept)."""
    exe = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    argv = [exe] if os.path.exists(exe) else [shutil.which("tensorboard") or "tensorboard"]
    argv += ["--logdir", logdir, f"--samples_per_plugin={samples}", "--host", "127.0.0.1"]
    if port is not None:
        argv += ["--port", str(port)]
    return argv


def _cmd_list(args: argparse.Namespace) -> int:
    from keras_vizcallbacks import export

    listing = export.list_runs(args.logdir)
    if not listing:
        print(f"No event files under {args.logdir}.")
        return 1
    print(format_listing(listing))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from keras_vizcallbacks import export

    if args.list:
        return _cmd_list(args)
    if not args.tag or not args.out:
        print("export needs --tag TAG and --out FILE.gif|FILE.png (or --list to see the tags).", file=sys.stderr)
        return 2
    info = export.export_tag(
        args.logdir,
        args.tag,
        args.out,
        run=args.run,
        duration_ms=args.duration,
        columns=args.columns,
        steps=(args.first, args.last),
    )
    kind = "animated GIF" if info["format"] == "gif" else "contact sheet"
    print(
        f"Wrote {info['path']}: {kind}, {info['frames']} frame(s) (steps {_steps(info['steps'])}), "
        f"{info['width']}x{info['height']} px, {info['bytes'] / 1024:.1f} KiB."
    )
    return 0


def _cmd_tensorboard(args: argparse.Namespace) -> int:
    argv = tensorboard_command(args.logdir, args.port, f"images={args.samples}")
    if args.extra:
        argv += args.extra
    print("$ " + shlex.join(argv), flush=True)
    if args.dry_run:
        return 0
    if not os.path.isdir(args.logdir):
        print(f"No log directory {args.logdir!r}; train first (e.g. make demo).", file=sys.stderr)
        return 2
    try:
        return subprocess.call(argv)
    except KeyboardInterrupt:
        return 130
    except FileNotFoundError:
        print("tensorboard is not installed in this environment: pip install tensorboard", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keras-vizcallbacks",
        description="Work with the TensorBoard logs written by keras_vizcallbacks.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="list runs, image tags and their steps")
    p.add_argument("logdir", help="a log directory (the one given to the callbacks)")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser(
        "export",
        help="one tag over all steps as an animated GIF or a contact-sheet PNG",
        description="Export one image tag over all its steps: --out *.gif gives an animation with the epoch "
        "written on each frame, --out *.png a contact sheet. --list shows runs, tags and steps.",
    )
    p.add_argument("logdir", help="a log directory (the one given to the callbacks)")
    p.add_argument("--tag", help="image tag, e.g. filters/conv2d (see --list)")
    p.add_argument("--run", default="viz", help="run (subdirectory of LOGDIR) holding the tag (default: viz)")
    p.add_argument("--out", help="output file: .gif (animation) or .png (contact sheet)")
    p.add_argument("--list", action="store_true", help="list runs, image tags and steps, then exit")
    p.add_argument("--duration", type=int, default=600, help="GIF: milliseconds per frame (default 600)")
    p.add_argument("--columns", type=int, default=None, help="PNG: frames per row (default: near-square)")
    p.add_argument("--first", type=int, default=None, help="first step to include")
    p.add_argument("--last", type=int, default=None, help="last step to include")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser(
        "tensorboard",
        help="start TensorBoard on 127.0.0.1 keeping every image step",
        description="Start TensorBoard on 127.0.0.1 with --samples_per_plugin=images=N (a large N: by default "
        "TensorBoard keeps only 10 steps per image tag, and images=0 shows none).",
    )
    p.add_argument("logdir")
    p.add_argument("--port", type=int, default=None, help="port (default: TensorBoard's, 6006)")
    p.add_argument("--samples", type=int, default=100000, help="image steps kept per tag (default 100000)")
    p.add_argument("--dry-run", action="store_true", help="print the command without running it")
    p.set_defaults(func=_cmd_tensorboard, extra=[])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # The command line is a program, not the library: quiet TensorFlow's C++ start-up logs.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        if args.command != "tensorboard":
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.extra = [a for a in unknown if a != "--"]  # passed on to TensorBoard
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as e:
        print(f"keras-vizcallbacks: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
