"""Who renders in a distributed fit (issue 13), in one process: the choice for every ``TF_CONFIG`` case,
``render_on`` callables, the process that does not render doing nothing at all, and the description line.

The multi-device and multi-process runs are in ``test_distributed_tf.py`` (MirroredStrategy) and
``test_distributed_jax.py`` (JAX, one and two processes), each in subprocesses.
"""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
import viewset
from util import compiled, random_data, read_run, small_functional

import keras_vizcallbacks as kv
from keras_vizcallbacks import writers
from keras_vizcallbacks.callbacks import _chief

CLUSTER = {"chief": ["host0:2222"], "worker": ["host1:2222", "host2:2222"]}
NO_CHIEF = {"worker": ["host1:2222", "host2:2222"]}


def tf_config(monkeypatch, cluster, task_type=None, index=0):
    config: dict = {"cluster": cluster}
    if task_type is not None:
        config["task"] = {"type": task_type, "index": index}
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))


@pytest.mark.parametrize(
    ("cluster", "task", "renders", "index", "count"),
    [
        (None, None, True, 0, 1),  # no TF_CONFIG: the only process
        (CLUSTER, ("chief", 0), True, 0, 3),
        (CLUSTER, ("worker", 0), False, 1, 3),  # worker 0 is not the chief when there is one
        (CLUSTER, ("worker", 1), False, 2, 3),
        (NO_CHIEF, ("worker", 0), True, 0, 2),  # no chief: worker 0
        (NO_CHIEF, ("worker", 1), False, 1, 2),
        ({"worker": ["host1:2222"]}, None, True, 0, 1),  # a cluster without a task: the only process
        (CLUSTER, ("evaluator", 0), False, 3, 4),  # a side-car evaluator never renders the fit's views
        ({**CLUSTER, "ps": ["host3:2222"]}, ("ps", 0), False, 3, 4),
    ],
)
def test_the_chief_of_tf_config_renders(monkeypatch, cluster, task, renders, index, count):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    if cluster is not None:
        tf_config(monkeypatch, cluster, *(task or (None,)))
    decision = _chief.decide("chief")
    assert (decision.renders, decision.index, decision.count) == (renders, index, count)


def test_unreadable_tf_config_is_a_value_error_before_the_first_batch(monkeypatch, log_dir):
    monkeypatch.setenv("TF_CONFIG", "{'cluster': not json")
    x, y = random_data(8)
    view = kv.FilterGrid(log_dir)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        compiled(small_functional()).fit(x, y, epochs=1, verbose=0, callbacks=[view])
    assert not os.path.exists(log_dir)


def test_render_on_must_be_chief_or_a_callable():
    with pytest.raises(ValueError, match=r"render_on must be 'chief'.*callable"):
        kv.FilterGrid("logs", render_on="all")
    with pytest.raises(ValueError, match="render_on"):
        kv.FilterGrid("logs", render_on=0)


def test_a_render_on_callable_is_evaluated_once_per_fit_and_must_return_a_bool(log_dir):
    calls = []

    def only_me() -> bool:
        calls.append(1)
        return True

    x, y = random_data(8)
    model = compiled(small_functional())
    view = kv.FilterGrid(log_dir, render_on=only_me)
    model.fit(x, y, epochs=3, verbose=0, callbacks=[view])
    assert len(calls) == 1
    model.fit(x, y, epochs=1, verbose=0, callbacks=[view])
    assert len(calls) == 2
    assert sorted({s for _, s in view.written}) == [0, 1, 2]  # the second fit rewrote step 0

    with pytest.raises(ValueError, match=r"must return True .* or False, got 'yes'"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[kv.FilterGrid(log_dir, render_on=lambda: "yes")])
    np_true = kv.FilterGrid(log_dir, run_name="np", render_on=lambda: np.bool_(True))
    model.fit(x, y, epochs=1, verbose=0, callbacks=[np_true])
    assert np_true.written


def _every_view(log_dir, x, y, **options):
    return viewset.build_all(log_dir, x, y, png_dir=os.path.join(log_dir, "png"), **options)


@pytest.mark.parametrize("how", ["callable", "tf_config_worker_1"])
def test_a_process_that_does_not_render_does_nothing(monkeypatch, tmp_path, how):
    """No log directory, no PNG directory, no writer, no prepare, no compiled function, no sample read."""
    log_dir = str(tmp_path / "shared" / "logs")
    x, y = random_data(16)
    options = {}
    if how == "callable":
        options["render_on"] = lambda: False
    else:
        tf_config(monkeypatch, CLUSTER, "worker", 1)

    prepared = []
    views = _every_view(log_dir, x, y, **options)
    for view in views:
        monkeypatch.setattr(view, "prepare", lambda model, _v=view: prepared.append(_v))
    # a sample source that fails when read: a non-rendering process must not touch it
    unread = kv.FeatureMaps(log_dir, samples=_Unreadable(), run_name="other", **options)
    history = compiled(small_functional()).fit(x, y, epochs=2, verbose=0, callbacks=[*views, unread])

    assert len(history.history["loss"]) == 2
    assert not os.path.exists(tmp_path / "shared"), os.listdir(tmp_path / "shared")
    assert prepared == []
    assert writers.open_writers() == []
    for view in [*views, unread]:
        assert view.rendering is not None and not view.rendering.renders
        assert view.written == [] and view.timings == [] and view.failures == []
        assert view.trace_counts() == {}


class _Unreadable:
    """Samples that raise when anything reads them."""

    def __getattr__(self, name):
        raise AssertionError(f"samples read on a process that does not render ({name})")

    def __len__(self):
        raise AssertionError("samples read on a process that does not render (len)")

    def __array__(self, *args, **kwargs):
        raise AssertionError("samples read on a process that does not render (array)")


def test_the_rendering_process_writes_every_view_and_says_so(monkeypatch, log_dir):
    tf_config(monkeypatch, CLUSTER, "chief", 0)
    x, y = random_data(16)
    views = viewset.build_all(log_dir, x, y)
    compiled(small_functional()).fit(x, y, epochs=2, verbose=0, callbacks=views)
    run = read_run(log_dir)
    descriptions = writers.read_descriptions(os.path.join(log_dir, "viz"))
    assert run and set(descriptions) == set(run)
    for view in views:
        assert view.rendering.renders and not view.failures, (view, view.failures)
    for tag, description in descriptions.items():
        assert [r.step for r in run[tag]] == [0, 1], tag
        host = views[0].rendering.host
        line = f"Rendered by process 0 of 3 (host `{host}`), the chief; the other processes render nothing"
        assert description.endswith(f"{line} (`render_on='chief'`)."), tag


def test_one_process_keeps_its_descriptions_and_a_callable_is_named(monkeypatch, log_dir):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    x, y = random_data(8)

    def rank_zero() -> bool:
        return True

    plain = kv.FilterGrid(log_dir)
    chosen = kv.FilterGrid(log_dir, run_name="chosen", render_on=rank_zero)
    compiled(small_functional()).fit(x, y, epochs=1, verbose=0, callbacks=[plain, chosen])
    plain_desc = writers.read_descriptions(os.path.join(log_dir, "viz"))
    chosen_desc = writers.read_descriptions(os.path.join(log_dir, "chosen"))
    assert plain_desc and all("Rendered by" not in d for d in plain_desc.values())
    for tag, description in chosen_desc.items():
        head, _, line = description.rpartition("\n\n")
        assert head == plain_desc[tag]
        assert line.startswith("Rendered by process 0 of 1 (host `")
        name = "test_one_process_keeps_its_descriptions_and_a_callable_is_named.<locals>.rank_zero"
        assert line.endswith(f"chosen by `render_on={name}`.")


def test_weights_split_across_processes_are_refused_on_every_process(monkeypatch):
    """Checked with stand-ins for a JAX array sharded over two processes (the real run is in
    test_distributed_jax.py): the message names the weight."""

    class Sharding:
        is_fully_replicated = False

        def __str__(self):
            return "NamedSharding(P('model'))"

    class Value:
        is_fully_addressable = False
        sharding = Sharding()

    class Weight:
        path = "dense/kernel"
        value = Value()

    class Model:
        weights = (Weight(),)

    with pytest.raises(ValueError, match="'dense/kernel' is split across the job's 2 processes"):
        _chief.check_weights_local(Model(), 2)
    Value.sharding.is_fully_replicated = True
    _chief.check_weights_local(Model(), 2)  # replicated: each process holds it whole
    assert keras.distribution.distribution() is None
