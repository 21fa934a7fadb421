"""The Viz dashboard: a TensorBoard plugin that shows every epoch of the views, on one slider.

TensorBoard finds it through the ``tensorboard_plugins`` entry point
(``keras_vizcallbacks.dashboard.plugin:VizPlugin``) and imports it unguarded, so nothing here
imports Keras, a model framework, or the views: only the standard library, ``tensorboard``,
``werkzeug`` and ``keras_vizcallbacks.writers`` (event-file framing and the manifest).

- `reader`: an incremental index of our image summaries in a logdir, ``(run, tag, step) ->
  (file, offset)``, image bytes read on demand.
- `plugin`: the TensorBoard plugin (routes and the served ES module under ``static/``).
"""
