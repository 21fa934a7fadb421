"""Screenshot of TensorBoard's images dashboard after a `make demo`-style run, and an evolution GIF.

Not run in CI. Needs Chromium (Debian: ``apt-get install chromium chromium-driver``).

    python scripts/screenshot_tensorboard.py                    # trains the demo into a temp dir first
    python scripts/screenshot_tensorboard.py --logdir logs/demo-20261128-051203

Writes ``docs/images/tensorboard.png`` (the dashboard) and ``docs/images/evolution_filters.gif``
(``filters/conv2d_1`` over all epochs). Everything stays on 127.0.0.1; Chromium runs headless with
a fresh profile and without background networking.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGES = os.path.join(ROOT, "docs", "images")
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_images(base: str, proc: subprocess.Popen, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"tensorboard exited with {proc.returncode}")
        try:
            with OPENER.open(base + "/data/plugin/images/tags", timeout=5) as r:
                tags = json.loads(r.read())
            if tags.get("viz"):
                return tags
        except OSError:
            pass
        time.sleep(1)
    sys.exit("TensorBoard did not show the viz run in time")


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("Chromium not found: apt-get install chromium chromium-driver")


def screenshot(url: str, out: str, width: int, height: int, wait_ms: int) -> None:
    with tempfile.TemporaryDirectory(prefix="kv-chromium-") as profile:
        argv = [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--virtual-time-budget={wait_ms}",
            f"--screenshot={out}",
            url,
        ]
        subprocess.run(argv, check=True, timeout=180, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--logdir", help="logs to show (default: run the demo into a temporary directory)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--tag", default="filters/conv2d_1", help="tag of the evolution GIF")
    p.add_argument("--width", type=int, default=1800)
    p.add_argument("--height", type=int, default=1300)
    p.add_argument("--wait-ms", type=int, default=20000, help="virtual time Chromium waits for the page")
    p.add_argument(
        "--tag-filter",
        default="^(?!.*/evolution$)(grad_cam|saliency|filters|confusion_matrix|decision_boundary)",
        help="regular expression for TensorBoard's tag filter (default: a few views, without the evolution GIFs)",
    )
    args = p.parse_args(argv)

    from keras_vizcallbacks import cli, export

    tmp = None
    logdir = args.logdir
    if logdir is None:
        tmp = tempfile.mkdtemp(prefix="kv-demo-")
        logdir = os.path.join(tmp, "demo")
        demo = [sys.executable, "-m", "keras_vizcallbacks.demo", "--out", logdir, "--epochs", str(args.epochs)]
        subprocess.run([*demo, "--verbose", "2"], check=True)
    os.makedirs(IMAGES, exist_ok=True)
    gif = os.path.join(IMAGES, "evolution_" + args.tag.split("/")[0] + ".gif")
    info = export.export_tag(logdir, args.tag, gif)
    print(f"wrote {gif}: {info['frames']} frames, {info['width']}x{info['height']}, {info['bytes'] / 1024:.0f} KiB")

    port = free_port()
    tb = subprocess.Popen(
        cli.tensorboard_command(logdir, port=port, samples="images=1000"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        tags = wait_for_images(base, tb)
        print(f"TensorBoard on {base}: {len(tags['viz'])} image tags in run viz")
        out = os.path.join(IMAGES, "tensorboard.png")
        url = f"{base}/#images&tagFilter={urllib.parse.quote(args.tag_filter, safe='')}"
        screenshot(url, out, args.width, args.height, args.wait_ms)
        print(f"wrote {out}")
    finally:
        tb.terminate()
        tb.wait(timeout=20)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
