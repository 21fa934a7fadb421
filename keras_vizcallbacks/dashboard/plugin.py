"""The Viz dashboard as a TensorBoard plugin (a dynamic plugin: an ES module in an iframe).

Registered through the ``tensorboard_plugins`` entry point; TensorBoard imports this module
without a guard, so it imports only the standard library, ``tensorboard``, ``werkzeug`` and
the dashboard's reader (never Keras, a model framework, or the views).

Routes, under ``data/plugin/keras_viz/``:

- ``index.js``, ``style.css``: the frontend (plain JavaScript and CSS shipped in the package).
- ``runs``: ``{run: [tag, ...]}``, the runs that hold our images and their tags.
- ``tags?run=R[&since=G]``: ``{"run", "generation", "tags": {tag: {view, description, animated,
  steps, wall_times}}}``; with ``since`` equal to the current generation, only
  ``{"run", "generation", "unchanged": true}`` (what the page polls).
- ``steps?run=R&tag=T``: ``[{"step": s, "wall_time": w}, ...]``, every step, by step.
- ``image?run=R&tag=T&step=S``: the image bytes (``image/png`` or ``image/gif``, from the magic bytes).

An unknown run, tag or step answers 404; a missing or malformed parameter 400; an unexpected
error 500 with a one-line message (the traceback goes to TensorBoard's log, never to the page).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable

from tensorboard.backend import http_util
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from keras_vizcallbacks.dashboard.reader import LogdirReader, NotFound, image_type

logger = logging.getLogger(__name__)

PLUGIN_NAME = "keras_viz"
TAB_NAME = "Viz"
STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
STATIC_FILES = {"index.js": "text/javascript", "style.css": "text/css"}
MAX_PARAM = 1024  # characters of a run or tag name
_INT = re.compile(r"-?[0-9]{1,18}\Z")
_IMAGE_CACHE_S = 3600  # the page asks with the record's wall time in the URL: a rewritten step is a new URL


class BadRequest(ValueError):
    """A missing or malformed query parameter (answered with 400)."""


def _text(request, message: str, code: int):
    return http_util.Respond(request, message + "\n", "text/plain", code=code)


def _json(request, content, expires: int = 0):
    return http_util.Respond(request, content, "application/json", expires=expires)


def _param(request, name: str) -> str:
    value = request.args.get(name)
    if value is None or value == "":
        raise BadRequest(f"missing parameter {name!r}")
    if len(value) > MAX_PARAM or "\x00" in value:
        raise BadRequest(f"parameter {name!r} is malformed")
    return value


def _int_param(request, name: str, required: bool = True) -> int | None:
    value = request.args.get(name)
    if value is None and not required:
        return None
    value = _param(request, name)
    if not _INT.match(value):
        raise BadRequest(f"parameter {name!r} must be an integer, got {value[:40]!r}")
    return int(value)


def _route(handler: Callable) -> Callable:
    """A WSGI app from ``handler(self, request)``: 400/404 for bad or unknown input, 500 without a traceback."""

    def app(self, environ, start_response):
        request = wrappers.Request(environ)
        try:
            if request.method not in ("GET", "HEAD"):
                response = _text(request, "only GET", 405)
            else:
                response = handler(self, request)
        except BadRequest as e:
            response = _text(request, f"bad request: {e}", 400)
        except NotFound as e:
            response = _text(request, f"not found: {e}", 404)
        except Exception:
            logger.exception("Viz dashboard: %s failed", request.path)
            response = _text(request, "internal error (see TensorBoard's log)", 500)
        return response(environ, start_response)

    app.__name__ = handler.__name__
    return app


class VizPlugin(base_plugin.TBPlugin):
    """TensorBoard's "Viz" tab: every epoch of the keras_vizcallbacks views on one slider."""

    plugin_name = PLUGIN_NAME

    def __init__(self, context: base_plugin.TBContext) -> None:
        self.reader = LogdirReader(getattr(context, "logdir", None) or "")

    def get_plugin_apps(self) -> dict[str, Callable]:
        apps = {f"/{name}": self._static for name in STATIC_FILES}
        apps.update({"/runs": self._runs, "/tags": self._tags, "/steps": self._steps, "/image": self._image})
        return apps

    def is_active(self) -> bool:
        """Active where the logdir holds a run our writers marked (a manifest)."""
        return self.reader.has_runs()

    def data_plugin_names(self) -> tuple[str, ...]:
        return ()  # our images are found by the manifest, not by a summary plugin name

    def frontend_metadata(self) -> base_plugin.FrontendMetadata:
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name=TAB_NAME, disable_reload=True)

    # ----------------------------------------------------------------- routes

    @_route
    def _static(self, request):
        name = request.path.rsplit("/", 1)[-1]
        if name not in STATIC_FILES:
            raise NotFound(name)
        with open(os.path.join(STATIC_DIR, name), "rb") as f:
            return http_util.Respond(request, f.read(), STATIC_FILES[name])

    @_route
    def _runs(self, request):
        return _json(request, self.reader.runs())

    @_route
    def _tags(self, request):
        run = _param(request, "run")
        since = _int_param(request, "since", required=False)
        if since is not None:
            generation = self.reader.generation(run)
            if generation == since:
                return _json(request, {"run": run, "generation": generation, "unchanged": True})
        return _json(request, self.reader.run_info(run))

    @_route
    def _steps(self, request):
        steps = self.reader.steps(_param(request, "run"), _param(request, "tag"))
        return _json(request, [{"step": s, "wall_time": w} for s, w in steps])

    @_route
    def _image(self, request):
        run, tag, step = _param(request, "run"), _param(request, "tag"), _int_param(request, "step")
        data = self.reader.image(run, tag, step)
        return http_util.Respond(
            request, data, image_type(data[:8]) or "application/octet-stream", expires=_IMAGE_CACHE_S
        )
