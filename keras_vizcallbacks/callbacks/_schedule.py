"""When a view renders: every N epochs, and N raised to fit an overhead budget."""

from __future__ import annotations

import math
import statistics

from keras_vizcallbacks import _checks


class Schedule:
    """Render at epochs 0, n, 2n, ... and at the last epoch of the fit.

    With ``max_overhead`` (a fraction of epoch time), `adjust` raises ``every_n_epochs``
    to the smallest value whose steady cost per epoch fits the budget. The first
    render (it traces) and the first epoch (Keras traces ``train_step``) are not
    representative and are left out; the medians of the last five of each decide.
    """

    def __init__(self, every_n_epochs: int = 1, max_overhead: float | None = None) -> None:
        every_n_epochs = _checks.integer(every_n_epochs, "every_n_epochs")
        if max_overhead is not None and not (isinstance(max_overhead, (int, float)) and 0 < max_overhead < 1):
            raise ValueError(f"max_overhead must be a fraction in (0, 1) such as 0.02, got {max_overhead!r}.")
        self.every_n_epochs = every_n_epochs
        self.max_overhead = None if max_overhead is None else float(max_overhead)

    def due(self, epoch: int, epochs: int | None = None) -> bool:
        """Whether ``epoch`` renders; ``epochs``: the fit's number of epochs (its last always renders)."""
        return epoch % self.every_n_epochs == 0 or (epochs is not None and epoch == epochs - 1)

    def adjust(self, timings: list[float], epoch_times: list[float], epoch: int, epochs: int | None) -> str | None:
        """Raise ``every_n_epochs`` when the steady cost per render exceeds the budget.

        ``timings``: seconds per render; ``epoch_times``: seconds per epoch without the
        view's work; ``epoch``: the epoch just rendered. Returns the message that says
        which epochs render from now on, or None when nothing changed.
        """
        steady = timings[1:]
        epoch_list = epoch_times[1:] or epoch_times
        if self.max_overhead is None or not steady or not epoch_list:
            return None
        cost, epoch_time = statistics.median(steady[-5:]), statistics.median(epoch_list[-5:])
        if epoch_time <= 0:
            return None
        ratio = cost / (self.max_overhead * epoch_time)  # epochs one render needs to fit the budget
        if ratio <= self.every_n_epochs * (1 + 1e-6):
            return None
        n = max(self.every_n_epochs + 1, math.ceil(ratio * (1 - 1e-6)))
        self.every_n_epochs = n
        end = epochs if epochs else epoch + 4 * n + 1
        nxt = [e for e in range(epoch + 1, end) if e % n == 0]
        when = "epochs " + ", ".join(map(str, nxt[:3])) + (", …" if len(nxt) > 3 or not epochs else "")
        if epochs and epochs - 1 not in nxt[:3]:
            when = f"{when} and the last, {epochs - 1}" if nxt else f"only the last epoch, {epochs - 1}"
        return (
            f"costs {cost:.3g} s per render, {cost / epoch_time:.1%} of a {epoch_time:.3g} s epoch, over "
            f"max_overhead={self.max_overhead:g}: from now on it renders every {n} epochs ({when})."
        )
