"""Screenshot of the Viz dashboard (TensorBoard's "Viz" tab) after a `make demo`-style run.

Not run in CI. Needs Chromium, chromedriver (Debian: ``apt-get install chromium chromium-driver``)
and selenium.

    python scripts/screenshot_dashboard.py                      # trains the demo (14 epochs) first
    python scripts/screenshot_dashboard.py --logdir logs/demo-20261128-051203 --epoch 6

Writes ``docs/images/dashboard.png``. Everything stays on 127.0.0.1: TensorBoard is started with the
plugin passed in explicitly (so it works in a checkout that is not installed), Chromium runs headless
with a fresh profile and without background networking.
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
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "docs", "images", "dashboard.png")
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
LAUNCHER = """
import sys
from tensorboard import default, program
from keras_vizcallbacks.dashboard.plugin import VizPlugin
plugins = default.get_plugins()
if VizPlugin not in plugins:
    plugins.append(VizPlugin)
tb = program.TensorBoard(plugins=plugins)
tb.configure(argv=[None, "--logdir", sys.argv[1], "--port", sys.argv[2], "--host", "127.0.0.1"])
sys.exit(tb.main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_runs(base: str, proc: subprocess.Popen, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"tensorboard exited with {proc.returncode}")
        try:
            with OPENER.open(base + "/data/plugin/keras_viz/runs", timeout=5) as r:
                runs = json.loads(r.read())
            if runs:
                return runs
        except OSError:
            pass
        time.sleep(1)
    sys.exit("the Viz dashboard found no run in time")


def shoot(base: str, out: str, epoch: int | None, width: int, height: int, chromium: str, driver: str) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    with tempfile.TemporaryDirectory(prefix="kv-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for arg in (
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            "--disable-quic",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
        ):
            options.add_argument(arg)
        d = webdriver.Chrome(service=Service(driver), options=options)
        try:
            d.get(base + "/#keras_viz")
            deadline = time.monotonic() + 60
            while not d.find_elements(By.CSS_SELECTOR, "iframe[src*='name=keras_viz']"):
                if time.monotonic() > deadline:
                    sys.exit("the Viz dashboard did not load")
                time.sleep(0.2)
            d.switch_to.frame(d.find_element(By.CSS_SELECTOR, "iframe[src*='name=keras_viz']"))
            while not d.execute_script("return document.querySelectorAll('article.panel img[data-step]').length"):
                time.sleep(0.2)
            if epoch is not None:
                d.execute_script(
                    "const s = document.getElementById('epoch'); s.value = arguments[0];"
                    "s.dispatchEvent(new Event('input'));",
                    epoch,
                )
            loaded = (
                "return Array.from(document.querySelectorAll('section:not(.collapsed) figure.shot img'))"
                ".every(i => i.hidden || (i.complete && i.naturalWidth > 0 && i.src.includes('step=')))"
            )
            while not d.execute_script(loaded):
                time.sleep(0.2)
            time.sleep(0.5)
            d.switch_to.default_content()
            d.save_screenshot(out)
        finally:
            d.quit()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--logdir", help="a log directory the views wrote (default: train the demo into a temp dir)")
    p.add_argument("--epochs", type=int, default=14, help="epochs of the demo run (without --logdir)")
    p.add_argument("--epoch", type=int, default=None, help="slider position (index); default: the last epoch")
    p.add_argument("--out", default=OUT)
    p.add_argument("--size", default="1400x1000", help="window size, WxH")
    p.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    p.add_argument("--chromedriver", default=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    args = p.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    with tempfile.TemporaryDirectory(prefix="kv-dash-shot-") as tmp:
        logdir = args.logdir
        if logdir is None:
            logdir = os.path.join(tmp, "demo")
            demo = [sys.executable, "-m", "keras_vizcallbacks.demo", "--epochs", str(args.epochs), "--out", logdir]
            subprocess.run([*demo, "--n-train", "1000", "--n-val", "200", "--samples", "4", "--verbose", "0"],
                           check=True, env=env)  # fmt: skip
        port = free_port()
        with open(os.path.join(tmp, "tensorboard.log"), "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-c", LAUNCHER, logdir, str(port)], stdout=log, stderr=subprocess.STDOUT, env=env
            )
            try:
                base = f"http://127.0.0.1:{port}"
                print("runs:", wait_for_runs(base, proc))
                shoot(base, args.out, args.epoch, width, height, args.chromium, args.chromedriver)
            finally:
                proc.terminate()
                proc.wait(30)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
