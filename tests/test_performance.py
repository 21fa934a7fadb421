"""max_overhead (with a fake clock: no timed assertions) and no retracing across epochs."""

from __future__ import annotations

import types
import warnings

import numpy as np
import pytest
import viewset
from util import compiled, random_data, small_functional

import keras_vizcallbacks as kv
from keras_vizcallbacks.callbacks import base


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


class Costly(kv.VizCallback):
    """A view whose render costs ``costs[i]`` seconds of the fake clock at its i-th call."""

    view = "costly"

    def __init__(self, log_dir, clock, costs, **options):
        super().__init__(log_dir, **options)
        self.clock = clock
        self.costs = list(costs)
        self.rendered: list[int] = []

    def render(self, epoch):
        self.clock.now += self.costs[min(len(self.rendered), len(self.costs) - 1)]
        self.rendered.append(epoch)
        return [kv.Frame("costly/img", np.zeros((2, 2, 3), np.uint8))]


def drive(cb, clock, epochs: int, epoch_time: float = 1.0) -> list[warnings.WarningMessage]:
    """Run the callback's lifecycle as fit would, each epoch taking ``epoch_time`` fake seconds."""
    model = compiled(small_functional())
    cb.set_model(model)
    cb.set_params({"epochs": epochs, "verbose": 0})
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        cb.on_train_begin()
        for epoch in range(epochs):
            cb.on_epoch_begin(epoch)
            clock.now += epoch_time
            cb.on_epoch_end(epoch)
        cb.on_train_end()
    return [w for w in record if issubclass(w.category, kv.VizWarning)]


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(base, "time", types.SimpleNamespace(perf_counter=c.perf_counter))
    return c


def test_over_budget_lowers_frequency_and_says_so_once(log_dir, clock):
    # first call 3 s (tracing: ignored), then 0.5 s per render against 1 s epochs, budget 10%
    cb = Costly(log_dir, clock, [3.0, 0.5], max_overhead=0.1)
    warned = drive(cb, clock, epochs=20)
    assert cb.every_n_epochs == 5  # the smallest n with 0.5 / n <= 0.1 * 1.0
    assert cb.rendered == [0, 1, 5, 10, 15, 19]
    assert len(warned) == 1
    message = str(warned[0].message)
    assert "every 5 epochs" in message and "(epochs 5, 10, 15 and the last, 19)" in message


def test_under_budget_keeps_every_epoch(log_dir, clock):
    cb = Costly(log_dir, clock, [3.0, 0.05], max_overhead=0.1)
    assert drive(cb, clock, epochs=8) == []
    assert cb.every_n_epochs == 1 and cb.rendered == list(range(8))


def test_tracing_call_alone_does_not_lower_frequency(log_dir, clock):
    cb = Costly(log_dir, clock, [30.0, 0.01], max_overhead=0.02)
    drive(cb, clock, epochs=5)
    assert cb.rendered == [0, 1, 2, 3, 4]


def test_budget_only_raises_from_the_users_every_n(log_dir, clock):
    cb = Costly(log_dir, clock, [1.0, 0.3], max_overhead=0.1, every_n_epochs=2)
    drive(cb, clock, epochs=13)
    # renders at 0 (tracing) and 2 (0.3 s per 2 epochs = 15% > 10%), then from epoch 3 on every 3 epochs
    assert cb.every_n_epochs == 3
    assert cb.rendered == [0, 2, 3, 6, 9, 12]


def test_no_budget_no_change(log_dir, clock):
    cb = Costly(log_dir, clock, [1.0, 5.0])
    assert drive(cb, clock, epochs=4) == []
    assert cb.rendered == [0, 1, 2, 3] and cb.every_n_epochs == 1


def test_every_view_traces_once_across_20_epochs(log_dir):
    x, y = random_data(16)
    model = compiled(small_functional())
    cbs = viewset.build_all(log_dir, x[:4], y[:4], ["a", "b", "c"])
    model.fit(x, y, epochs=20, batch_size=16, verbose=0, callbacks=cbs)
    counts = {type(cb).__name__: list(cb.trace_counts().values()) for cb in cbs}
    assert counts["FeatureMaps"] == [1]
    assert counts["FilterGrid"] == []  # it reads the kernels: nothing compiled
    for name, traces in counts.items():
        # one trace per compiled function that is used (a view may hold one it never calls: 0)
        assert all(t <= 1 for t in traces), f"{name} retraced: {traces}"
        if name != "FilterGrid":
            assert max(traces, default=0) == 1, f"{name}: no compiled function traced: {traces}"
    assert all(len(cb.timings) == 20 for cb in cbs)


def test_later_adjustments_are_logged_not_warned_again(log_dir, clock, caplog):
    # the cost grows after the first adjustment: the schedule is lowered again, the warning is not repeated
    cb = Costly(log_dir, clock, [3.0, 0.15, 0.4], max_overhead=0.1)
    with caplog.at_level("INFO", logger="keras_vizcallbacks"):
        warned = drive(cb, clock, epochs=30)
    assert len(warned) == 1 and "every 2 epochs" in str(warned[0].message)
    assert cb.every_n_epochs >= 4
    infos = [r for r in caplog.records if r.levelname == "INFO" and "renders every" in r.getMessage()]
    assert infos, "later adjustments should still be logged"
    assert cb.rendered[:3] == [0, 1, 2]


class BlasProbe(kv.VizCallback):
    """Records how many threads numpy's BLAS had while the view computed and drew."""

    view = "blas"

    def __init__(self, log_dir, **options):
        super().__init__(log_dir, **options)
        self.seen: list[tuple[str, int | None]] = []

    def compute(self, epoch):
        from keras_vizcallbacks._threads import blas_threads

        self.seen.append(("compute", blas_threads()))
        return epoch

    def draw(self, epoch, _):
        from keras_vizcallbacks._threads import blas_threads

        self.seen.append(("draw", blas_threads()))
        return [base.Frame("blas/x", np.zeros((4, 4, 3), np.uint8))]


@pytest.mark.parametrize("async_write", [False, True])
def test_views_run_numpy_blas_on_one_thread_and_restore_it(log_dir, async_write):
    from keras_vizcallbacks._threads import blas_threads, quiet_blas

    before = blas_threads()
    if before is None:
        pytest.skip("threadpoolctl sees no BLAS library in this process")
    model = compiled(small_functional())
    x, y = random_data(8)
    cb = BlasProbe(log_dir, async_write=async_write)
    model.fit(x, y, epochs=2, batch_size=4, verbose=0, callbacks=[cb])
    # On the training thread (where the PCA and projections run) BLAS has one thread; OpenBLAS reports
    # a limit set from another thread unreliably, so the async worker's draws are not asserted.
    checked = [n for where, n in cb.seen if where == "compute" or not async_write]
    assert checked == [1] * len(checked) and len(checked) == (2 if async_write else 4), cb.seen
    assert blas_threads() == before  # the user's numpy gets its threads back
    with quiet_blas(), quiet_blas():  # re-entrant: the inner exit keeps the limit
        pass
    assert blas_threads() == before
