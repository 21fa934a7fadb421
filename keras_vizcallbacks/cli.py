"""The ``keras-vizcallbacks`` command.

::

    keras-vizcallbacks list LOGDIR                      # runs, image and scalar tags, their steps
    keras-vizcallbacks export LOGDIR --list             # the same
    keras-vizcallbacks export LOGDIR --tag filters/conv2d --out evolution.apng  # animated PNG (lossless)
    keras-vizcallbacks export LOGDIR --tag filters/conv2d --out evolution.gif   # animated GIF
    keras-vizcallbacks export LOGDIR --tag filters/conv2d --out sheet.png       # contact sheet
    keras-vizcallbacks tensorboard LOGDIR               # TensorBoard on 127.0.0.1, every step kept

``list`` and ``export`` read event files with the package's own reader: they load neither
TensorFlow nor Keras. ``tensorboard`` replaces this process with TensorBoard (``os.execv``:
same process id, so a signal reaches TensorBoard itself) after loading TensorFlow with its
start-up lines hidden (``--verbose`` shows them). Flags that ``tensorboard`` does not know are
passed on to TensorBoard (e.g. ``--reload_interval 5``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
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


def format_listing(
    listing: dict[str, dict[str, list[int]]], scalars: dict[str, dict[str, list[int]]] | None = None
) -> str:
    """One block per run: its image tags, then its scalar tags (``scalar <tag>``), each with its steps."""
    scalars = scalars or {}
    lines = []
    for run, tags in listing.items():
        numbers = scalars.get(run, {})
        head = f"run {run}: {len(tags)} image tag(s)" if tags else f"run {run}: no images"
        lines.append(head + (f", {len(numbers)} scalar tag(s)" if numbers else ""))
        rows = [(tag, steps) for tag, steps in tags.items()] + [(f"scalar {t}", s) for t, s in numbers.items()]
        width = max((len(t) for t, _ in rows), default=0)
        for tag, steps in rows:
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

    found = export.list_tags(args.logdir)
    if not found:
        print(f"No event files under {args.logdir}.")
        return 1
    images = {run: tags["images"] for run, tags in found.items()}
    print(format_listing(images, {run: tags["scalars"] for run, tags in found.items()}))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from keras_vizcallbacks import export

    if args.list:
        return _cmd_list(args)
    if not args.tag or not args.out:
        print(
            "export needs --tag TAG and --out FILE.apng|FILE.gif|FILE.png (or --list to see the tags).",
            file=sys.stderr,
        )
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
    kind = {"apng": "animated PNG", "gif": "animated GIF"}.get(info["format"], "contact sheet")
    print(
        f"Wrote {info['path']}: {kind}, {info['frames']} frame(s) (steps {_steps(info['steps'])}), "
        f"{info['width']}x{info['height']} px, {info['bytes'] / 1024:.1f} KiB."
    )
    return 0


#: What the replaced process runs: ``run_tensorboard(["quiet" | "verbose", *tensorboard args])``.
_TENSORBOARD_MAIN = (
    "import sys; from keras_vizcallbacks.cli import run_tensorboard; sys.exit(run_tensorboard(sys.argv[1:]))"
)


def run_tensorboard(argv: Sequence[str]) -> int:
    """TensorBoard's own main in this process, TensorFlow's start-up lines hidden unless ``argv[0] == "verbose"``.

    The process `_cmd_tensorboard` becomes (``os.execv``). TensorBoard loads TensorFlow when it is
    installed; loading it here first, with file descriptor 2 redirected, hides the lines it prints
    (TensorBoard's own messages still show).
    """
    from keras_vizcallbacks._quiet import import_tensorflow_quietly

    mode, *args = argv
    import_tensorflow_quietly(verbose=mode == "verbose")
    from tensorboard.main import run_main

    sys.argv = ["tensorboard", *args]
    return int(run_main() or 0)


def _cmd_tensorboard(args: argparse.Namespace) -> int:
    argv = tensorboard_command(args.logdir, args.port, f"images={args.samples}")
    if args.extra:
        argv += args.extra
    print("$ " + shlex.join(["tensorboard", *argv[1:]]), flush=True)
    if args.dry_run:
        return 0
    if not os.path.isdir(args.logdir):
        print(f"No log directory {args.logdir!r}; train first (e.g. make demo).", file=sys.stderr)
        return 2
    try:
        import tensorboard  # noqa: F401  (a clear message now rather than a traceback after exec)
    except ImportError:
        print("tensorboard is not installed in this environment: pip install tensorboard", file=sys.stderr)
        return 2
    sys.stdout.flush()
    sys.stderr.flush()
    mode = "verbose" if args.verbose else "quiet"
    # Become TensorBoard: a signal to this process (Ctrl+C, SIGTERM) reaches TensorBoard itself.
    os.execv(sys.executable, [sys.executable, "-c", _TENSORBOARD_MAIN, mode, *argv[1:]])
    return 0  # pragma: no cover (execv does not return)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keras-vizcallbacks",
        description="Work with the TensorBoard logs written by keras_vizcallbacks.",
    )
    verbose_help = "show TensorFlow's start-up lines (hidden by default)"
    parser.add_argument("-v", "--verbose", action="store_true", help=verbose_help)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="list runs, image and scalar tags and their steps")
    p.add_argument("logdir", help="a log directory (the one given to the callbacks)")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser(
        "export",
        help="one tag over all steps as an animated PNG or GIF, or a contact-sheet PNG",
        description="Export one image tag over all its steps: --out *.apng gives a lossless animated PNG and "
        "--out *.gif an animated GIF (256 colours a frame), each frame labelled with its epoch; --out *.png gives "
        "a contact sheet. --list shows runs, tags and steps.",
    )
    p.add_argument("logdir", help="a log directory (the one given to the callbacks)")
    p.add_argument("--tag", help="image tag, e.g. filters/conv2d (see --list)")
    p.add_argument("--run", default="viz", help="run (subdirectory of LOGDIR) holding the tag (default: viz)")
    p.add_argument("--out", help="output file: .apng or .gif (animation), or .png (contact sheet)")
    p.add_argument("--list", action="store_true", help="list runs, image tags and steps, then exit")
    p.add_argument("--duration", type=int, default=600, help="animation: milliseconds per frame (default 600)")
    p.add_argument("--columns", type=int, default=None, help="PNG: frames per row (default: near-square)")
    p.add_argument("--first", type=int, default=None, help="first step to include")
    p.add_argument("--last", type=int, default=None, help="last step to include")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser(
        "tensorboard",
        help="start TensorBoard on 127.0.0.1 keeping every image step",
        description="Start TensorBoard on 127.0.0.1 with --samples_per_plugin=images=N (a large N: by default "
        "TensorBoard keeps only 10 steps per image tag, and images=0 shows none). This process becomes "
        "TensorBoard (a signal to it stops TensorBoard). Other flags are passed on to TensorBoard.",
    )
    p.add_argument("logdir")
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose_help)
    p.add_argument("--port", type=int, default=None, help="port (default: TensorBoard's, 6006)")
    p.add_argument("--samples", type=int, default=100000, help="image steps kept per tag (default 100000)")
    p.add_argument("--dry-run", action="store_true", help="print the command without running it")
    p.set_defaults(func=_cmd_tensorboard, extra=[])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
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
