"""The Viz dashboard in a real browser: TensorBoard on 127.0.0.1 with the plugin, headless Chromium.

Two runs: ``a/viz`` from a short fit (three views, one rendering every 4 epochs) and ``b/viz``
written every other epoch. The test opens TensorBoard's Viz tab, switches into the plugin's
iframe, moves the epoch slider and checks that every panel shows the image of that epoch (or
its view's latest before it), byte for byte against the event file; keys, play, reload, two
runs side by side, the large view, and epochs written while the page is open.

Needs Debian's ``chromium`` and ``chromium-driver`` (and selenium): skipped without them, except
under ``CI=true``, where a missing browser fails the test.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
import time

import pytest
from dashboard_util import CUSTOM_TAG, EPOCHS, SPARSE_STEPS, fit_logs, tensorboard, write_run

from keras_vizcallbacks import writers

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT_S = 30  # bound on any one thing the page has to do
B_TAGS = ["feature_maps/c1", "filters/c1"]
B_STEPS = list(range(0, 11, 2))


def _require_browser():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if missing:
        message = f"browser test needs {', '.join(missing)} (Debian: apt-get install chromium chromium-driver)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``(base URL, logdir)``: TensorBoard starts on the logdir while the fit writes it."""
    _require_browser()
    root = tmp_path_factory.mktemp("dash_browser") / "logs"
    root.mkdir()

    def write_logs():
        fit_logs(str(root / "a"))
        write_run(str(root / "b"), B_STEPS, B_TAGS, size=40)

    with tensorboard(
        str(root), str(tmp_path_factory.mktemp("tb") / "tensorboard.log"), while_starting=write_logs
    ) as url:
        yield url, str(root)


@pytest.fixture(scope="module")
def base(served) -> str:
    return served[0]


@pytest.fixture(scope="module")
def logs(served) -> str:
    return served[1]


@pytest.fixture(scope="module")
def written(logs) -> dict[str, dict[str, dict[int, bytes]]]:
    """``{run: {tag: {step: encoded bytes}}}`` as TensorBoard's event reader sees the files."""
    out = {}
    for run in ("a/viz", "b/viz"):
        recs = writers.read_images(os.path.join(logs, run))
        out[run] = {tag: {r.step: r.encoded for r in rs} for tag, rs in recs.items()}
    return out


@pytest.fixture(scope="module")
def driver():
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="kv-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--disable-quic",
        f"--user-data-dir={profile}",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    d.set_script_timeout(WAIT_S)
    try:
        yield d
    finally:
        d.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait(d, condition, what: str):
    """Poll ``condition(d)`` until it is truthy (returns it) or WAIT_S passes (fails, naming ``what``)."""
    deadline = time.monotonic() + WAIT_S
    last = None
    while time.monotonic() < deadline:
        try:
            last = condition(d)
        except Exception as e:  # the page is still being built
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what} (last: {last!r})")


def open_dashboard(d, base: str, fresh: bool = True) -> None:
    """Load TensorBoard's Viz tab and switch into the plugin's iframe (``fresh``: forget saved state)."""
    from selenium.webdriver.common.by import By

    d.switch_to.default_content()
    if fresh:
        d.get(base + "/data/plugin/keras_viz/runs")  # same origin: clear what an earlier test saved
        d.execute_script("localStorage.clear()")
    d.get(base + "/#keras_viz")
    tab = wait(
        d,
        lambda d: [e for e in d.find_elements(By.CSS_SELECTOR, ".plugin-name") if e.text.strip().lower() == "viz"],
        "the Viz tab",
    )
    assert tab
    frame = wait(
        d, lambda d: d.find_elements(By.CSS_SELECTOR, "iframe[src*='plugin_entry.html?name=keras_viz']"), "the iframe"
    )
    d.switch_to.frame(frame[0])
    wait(
        d,
        lambda d: d.execute_script("return document.querySelectorAll('article.panel img[data-step]').length"),
        "panels",
    )


def js(d, script: str, *args):
    return d.execute_script(script, *args)


def epoch(d) -> int | None:
    value = js(d, "return document.getElementById('epoch-label').dataset.step")
    return None if value is None else int(value)


def set_slider(d, index: int) -> None:
    js(
        d,
        "const s = document.getElementById('epoch'); s.value = arguments[0]; s.dispatchEvent(new Event('input'));",
        index,
    )


def panels(d) -> list[dict]:
    """What every visible figure shows: run, tag, the step of its image, its caption, and whether it is loaded."""
    return js(
        d,
        """return Array.from(document.querySelectorAll('section:not(.collapsed) article.panel figure.shot')).map(f => {
             const img = f.querySelector('img');
             return {run: f.dataset.run, tag: f.closest('article').dataset.tag, step: img.dataset.step,
                     src: img.getAttribute('src'), loaded: img.complete && img.naturalWidth > 0 && !img.hidden,
                     stamp: f.querySelector('.stamp').textContent, stale: f.classList.contains('stale'),
                     placeholder: img.hidden ? f.querySelector('.placeholder').textContent : null};
           });""",
    )


def fetch_bytes(d, url: str) -> bytes:
    """The bytes the page's own URL serves (fetched inside the iframe, as the <img> did)."""
    b64 = d.execute_async_script(
        """const done = arguments[arguments.length - 1];
           fetch(arguments[0]).then(r => r.arrayBuffer()).then(b => {
             let s = ''; const a = new Uint8Array(b);
             for (let i = 0; i < a.length; i++) s += String.fromCharCode(a[i]);
             done(btoa(s));
           }).catch(e => done('ERROR ' + e));""",
        url,
    )
    assert not b64.startswith("ERROR"), b64
    return base64.b64decode(b64)


def expected_step(steps, at: int) -> int | None:
    before = [s for s in steps if s <= at]
    return before[-1] if before else None


def check_every_panel_shows(d, written, at: int, runs=("a/viz",)) -> list[dict]:
    """Wait until every figure shows the latest image at or before epoch ``at`` of its tag, then compare the
    bytes the page loaded with the event file's."""

    def settled(d):
        shown = panels(d)
        for p in shown:
            want = expected_step(sorted(written[p["run"]].get(p["tag"], {})), at)
            if want is None:
                if p["step"] is not None or not p["placeholder"]:
                    return None
            elif p["step"] != str(want) or not p["loaded"]:
                return None
        return shown

    shown = wait(d, settled, f"every panel at epoch {at}")
    assert {p["run"] for p in shown} == set(runs)
    for p in shown:
        if p["step"] is None:
            continue
        step = int(p["step"])
        assert fetch_bytes(d, p["src"]) == written[p["run"]][p["tag"]][step], (p, at)
        assert p["stamp"].startswith(f"epoch {step}"), p
        assert p["stale"] == (step != at), p
    return shown


# ------------------------------------------------------------------ tests


def test_slider_and_keys_drive_every_panel(driver, base, written):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    d = driver
    open_dashboard(d, base)
    assert js(d, "return document.getElementById('run').value") == "a/viz"
    tags = sorted(js(d, "return Array.from(document.querySelectorAll('article.panel')).map(a => a.dataset.tag)"))
    assert tags == sorted(["feature_maps/c1", "filters/c1", "filters/c2", CUSTOM_TAG])
    # every epoch is on the slider, though TensorBoard itself keeps 10 per tag here (--samples_per_plugin images=10)
    assert int(js(d, "return document.getElementById('epoch').max")) == EPOCHS - 1
    assert epoch(d) == EPOCHS - 1  # opens at the latest epoch
    check_every_panel_shows(d, written, EPOCHS - 1)

    for index in (5, 0, 9):
        set_slider(d, index)
        assert epoch(d) == index
        shown = check_every_panel_shows(d, written, index)
        custom = next(p for p in shown if p["tag"] == CUSTOM_TAG)
        assert custom["step"] == str(expected_step(SPARSE_STEPS, index))  # its latest at or before the epoch

    # keys pressed while TensorBoard's page has the focus (the tab was just opened) ...
    ActionChains(d).send_keys(Keys.ARROW_LEFT).perform()
    wait(d, lambda d: epoch(d) == 8, "epoch 8 after the left key")
    check_every_panel_shows(d, written, 8)
    # ... and once a click moved the focus into the dashboard
    d.find_element("id", "epoch-range").click()
    ActionChains(d).send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT).perform()
    wait(d, lambda d: epoch(d) == 10, "epoch 10 after two right keys")
    check_every_panel_shows(d, written, 10)


def test_play_advances_the_epoch_and_pause_stops_it(driver, base, written):
    d = driver
    open_dashboard(d, base)
    js(d, "const s = document.getElementById('speed'); s.value = '16'; s.dispatchEvent(new Event('change'));")
    set_slider(d, 0)
    check_every_panel_shows(d, written, 0)
    d.find_element("id", "play").click()
    assert js(d, "return document.getElementById('play').getAttribute('aria-pressed')") == "true"
    seen = set()

    def advanced(d):
        seen.add(epoch(d))
        return len(seen - {0}) >= 3

    wait(d, advanced, "the epoch to advance while playing")
    d.find_element("id", "play").click()
    assert js(d, "return document.getElementById('play').getAttribute('aria-pressed')") == "false"
    check_every_panel_shows(d, written, epoch(d))


def test_epoch_and_layout_survive_a_reload(driver, base, written):
    d = driver
    open_dashboard(d, base)
    set_slider(d, 7)
    js(d, "const s = document.getElementById('size'); s.value = 'L'; s.dispatchEvent(new Event('change'));")
    js(d, "document.querySelector('h2.group-title[data-view=\"feature_maps\"]').click()")
    d.refresh()
    open_dashboard(d, base, fresh=False)
    assert epoch(d) == 7
    assert js(d, "return document.getElementById('size').value") == "L"
    assert js(d, "return document.querySelector('section[data-view=\"feature_maps\"]').classList.contains('collapsed')")
    shown = check_every_panel_shows(d, written, 7)
    assert "feature_maps/c1" not in {p["tag"] for p in shown}


def test_two_runs_side_by_side_at_the_same_epoch(driver, base, written):
    d = driver
    open_dashboard(d, base)
    js(d, "const s = document.getElementById('compare'); s.value = 'b/viz'; s.dispatchEvent(new Event('change'));")
    wait(d, lambda d: js(d, "return document.querySelectorAll('figure.shot[data-run=\"b/viz\"]').length") == 4, "run b")
    set_slider(d, 5)
    shown = check_every_panel_shows(d, written, 5, runs=("a/viz", "b/viz"))
    b = {p["tag"]: p for p in shown if p["run"] == "b/viz"}
    assert b["filters/c1"]["step"] == "4" and b["filters/c1"]["stale"]  # b renders every other epoch
    assert b[CUSTOM_TAG]["step"] is None and "not in run b/viz" in b[CUSTOM_TAG]["placeholder"]


def test_a_panel_opens_large_with_its_description(driver, base, written):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    d = driver
    open_dashboard(d, base)
    set_slider(d, 6)
    check_every_panel_shows(d, written, 6)
    js(d, "document.querySelector('article.panel[data-tag=\"my_pictures\"] .frame').click()")
    wait(d, lambda d: js(d, "return !document.getElementById('modal').hidden"), "the large view")
    text = js(d, "return document.getElementById('modal').textContent")
    assert "green bar" in text and CUSTOM_TAG in text
    src = wait(
        d, lambda d: js(d, "const i = document.querySelector('#modal img'); return i.complete && i.src"), "image"
    )
    assert fetch_bytes(d, src) == written["a/viz"][CUSTOM_TAG][4]
    ActionChains(d).send_keys(Keys.ESCAPE).perform()
    wait(d, lambda d: js(d, "return document.getElementById('modal').hidden"), "the large view to close")


def test_new_epochs_appear_while_the_page_is_open(driver, base, logs):
    d = driver
    open_dashboard(d, base)
    js(d, "const s = document.getElementById('run'); s.value = 'b/viz'; s.dispatchEvent(new Event('change'));")
    wait(d, lambda d: epoch(d) == B_STEPS[-1], "run b at its last epoch")
    write_run(os.path.join(logs, "b"), range(12, 16), B_TAGS, size=40)  # training goes on
    wait(d, lambda d: epoch(d) == 15, "the new epochs (the page follows the latest)")
    assert int(js(d, "return document.getElementById('epoch').max")) == len(B_STEPS) + 4 - 1
    recs = writers.read_images(os.path.join(logs, "b", "viz"))
    written = {"b/viz": {tag: {r.step: r.encoded for r in rs} for tag, rs in recs.items()}}
    check_every_panel_shows(d, written, 15, runs=("b/viz",))
